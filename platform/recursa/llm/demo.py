"""The LLM demo end to end: an LM learns the math environment by SFT on expert episodes, then GRPO.

The LM is a tiny one made here, or any `model.path` (`--model smollm2-135m-instruct`). Every stage
is scored on the same held-out problems: the bare base model (before), the SFT adapter, and the
GRPO adapter trained on top of it. report.json holds the three, the model and the wall time; each
training stage is an ordinary `recursa train llm` run in the demo directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from recursa.core.config import load_config
from recursa.llm.actions import resolve_action_env
from recursa.llm.config import LLMModelSettings, TrainLLMConfig
from recursa.llm.evaluate import evaluate_adapter
from recursa.llm.train import train_llm

SUMMARY_KEYS = ("success_rate", "mean_reward", "format_error_rate")


def demo_configs(sft_path: str | Path, grpo_path: str | Path, out_dir: Path, model_path: str | Path) -> tuple:
    """The SFT and GRPO configs, pointed at the demo directory and its model."""
    sft = load_config(sft_path, TrainLLMConfig)
    grpo = load_config(grpo_path, TrainLLMConfig)
    for config, name in ((sft, "sft"), (grpo, "grpo")):
        config.runs_dir, config.name = str(out_dir), name
        config.model.path = str(model_path)
    grpo.init_adapter = str(out_dir / "sft" / "adapter")
    return sft, grpo


def run_llm_demo(out_dir: str | Path, sft_config: str | Path, grpo_config: str | Path,
                 model: str | None = None) -> dict:
    """Evaluate `model` (default: a tiny model, created if needed), train SFT then GRPO, evaluate
    each; write report.json."""
    from recursa.llm.tiny import create_tiny_llm, default_corpus

    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    model_path: str | Path = model or out_dir / "tiny-llm"
    if model is None and not (out_dir / "tiny-llm" / "config.json").is_file():
        create_tiny_llm(out_dir / "tiny-llm", default_corpus(), seed=0)
    sft, grpo = demo_configs(sft_config, grpo_config, out_dir, model_path)
    env_class = resolve_action_env(sft.data.env)
    before = evaluate_adapter(LLMModelSettings(path=str(model_path)), None, env_class,
                              sft.data.eval_episodes, sft.data.eval_seed)
    stages = {"before": before}
    for name, config in (("after_sft", sft), ("after_grpo", grpo)):
        adapter = train_llm(config)
        stages[name] = json.loads((adapter.parent / "report.json").read_text())["eval"]
    report: dict[str, Any] = {name: {key: stage[key] for key in SUMMARY_KEYS} for name, stage in stages.items()}
    report["model"] = str(model_path)
    report["wall_seconds"] = time.perf_counter() - started
    report["eval_episodes"] = sft.data.eval_episodes
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report
