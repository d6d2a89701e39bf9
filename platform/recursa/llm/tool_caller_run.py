"""`make llm-bfcl`: a pretrained LLM becomes a tool caller, scored on BFCL at every stage.

Zero-shot, then LoRA SFT on generated function-calling examples, then GRPO by executing its calls
(the SFT adapter merged into the base is the KL reference, a new adapter trains on top): each
stage is scored on the same BFCL sample, and runs/llm-bfcl/report.json holds the three with the
held-out reward on generated examples before and after GRPO. Each training stage is an ordinary
`recursa train llm` run in the output directory; a stage whose result exists is kept, so an
interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recursa.core.config import load_config
from recursa.llm.bfcl import evaluate_llm_bfcl
from recursa.llm.config import LLMModelSettings, TrainLLMConfig
from recursa.llm.evaluate import evaluate_adapter
from recursa.llm.train import REFERENCE_DIR, action_env, train_llm

SUMMARY_KEYS = ("non_live_ast", "irrelevance", "live_ast", "categories", "predictions")


def stage_configs(sft_path: str | Path, grpo_path: str | Path, out_dir: Path, model: str | None) -> tuple:
    """The SFT and GRPO configs, pointed at the output directory (and `model`, if given)."""
    sft = load_config(sft_path, TrainLLMConfig)
    grpo = load_config(grpo_path, TrainLLMConfig)
    for config, name in ((sft, "sft"), (grpo, "grpo")):
        config.runs_dir, config.name = str(out_dir), name
        if model is not None:
            config.model.path = model
    grpo.init_adapter = str(out_dir / "sft" / "adapter")
    return sft, grpo


def run_llm_bfcl(out_dir: str | Path, sft_config: str | Path, grpo_config: str | Path, *,
                 model: str | None = None, categories: Sequence[str], limit: int | None,
                 batch_size: int = 8) -> dict:
    """Score zero-shot, train SFT and score, train GRPO and score; write report.json and return it."""
    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    sft, grpo = stage_configs(sft_config, grpo_config, out_dir, model)

    def scored(stage: str, settings: LLMModelSettings, adapter: Path | None) -> dict:
        out = out_dir / stage / "bfcl.json"
        if not out.is_file():
            print(f"== {stage}: BFCL ({limit or 'all'} per category)", flush=True)
            evaluate_llm_bfcl(settings, adapter, categories, limit, out, batch_size)
        return json.loads(out.read_text())

    def trained(config: TrainLLMConfig) -> Path:
        adapter = out_dir / config.name / "adapter"
        if not (out_dir / config.name / "report.json").is_file():
            print(f"== {config.name}: train ({config.method})", flush=True)
            train_llm(config, resume=(out_dir / config.name / "config.yaml").is_file())
        return adapter

    base = LLMModelSettings(path=sft.model.path, dtype=sft.model.dtype)
    zero_shot = scored("zero_shot", base, None)
    sft_adapter = trained(sft)
    after_sft = scored("after_sft", base, sft_adapter)
    grpo_adapter = trained(grpo)
    merged_sft = LLMModelSettings(path=str(out_dir / "grpo" / REFERENCE_DIR), dtype=sft.model.dtype)
    after_grpo = scored("after_grpo", merged_sft, grpo_adapter)
    held_out = {"heldout_reward_before": _sft_held_out_reward(grpo, base, sft_adapter, out_dir / "after_sft"),
                "heldout_reward_after": _held_out_reward(out_dir / "grpo")}
    report: dict[str, Any] = {
        "model": sft.model.path,
        "params": zero_shot["params"],
        "zero_shot": _summary(zero_shot),
        "after_sft": _summary(after_sft),
        "after_grpo": _summary(after_grpo) | held_out,
        "wall_seconds": time.perf_counter() - started,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _summary(bfcl: dict) -> dict:
    return {key: bfcl[key] for key in SUMMARY_KEYS}


def _held_out_reward(run_dir: Path) -> float:
    """Mean reward of a training run's adapter on its generated held-out examples."""
    return json.loads((run_dir / "report.json").read_text())["eval"]["mean_reward"]


def _sft_held_out_reward(grpo: TrainLLMConfig, base: LLMModelSettings, adapter: Path, stage_dir: Path) -> float:
    """The SFT policy's mean reward on the GRPO run's held-out examples, scored by the GRPO environment."""
    out = stage_dir / "heldout.json"
    if not out.is_file():
        summary = evaluate_adapter(base, adapter, action_env(grpo), grpo.data.eval_episodes, grpo.data.eval_seed)
        out.write_text(json.dumps(summary, indent=2))
    return json.loads(out.read_text())["mean_reward"]

