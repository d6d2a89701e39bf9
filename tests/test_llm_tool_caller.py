"""An LLM becomes a tool caller: SFT then GRPO on the function-calling environment, scored on BFCL
at each stage (`recursa llm bfcl`, `make llm-bfcl`): on the tiny model, and on SmolLM2 (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from recursa.fc.bfcl import NON_LIVE_AST
from recursa.llm.tool_caller_run import run_llm_bfcl

STAGE_KEYS = {"non_live_ast", "irrelevance", "live_ast", "categories", "predictions"}
CATEGORIES = ("simple_python", "parallel", "irrelevance", "live_simple")


def stage_configs(tmp_path: Path, model: str, sft: dict | None = None, grpo: dict | None = None) -> tuple[Path, Path]:
    """Small SFT and GRPO configs on the function-calling environment."""
    lora = {"r": 8, "alpha": 16, "dropout": 0.0}
    sft_config = {"method": "sft", "model": {"path": model, "lora": lora},
                  "data": {"env": "function_calling", "expert_episodes": 8, "eval_episodes": 4},
                  "training": {"epochs": 1, "batch_size": 4, "lr": 3e-4, "max_length": 1024}, **(sft or {})}
    grpo_config = {"method": "grpo", "model": {"path": model, "lora": lora},
                   "data": {"env": "function_calling", "eval_episodes": 4},
                   "training": {"batch_size": 4, "lr": 1e-4, "max_length": 1024},
                   "grpo": {"iterations": 1, "problems_per_iteration": 2, "group_size": 2, "max_new_tokens": 48,
                            "rollout_actors": 1, "cpus_per_actor": 0.5, "eval_every": 1}, **(grpo or {})}
    paths = tmp_path / "sft.yaml", tmp_path / "grpo.yaml"
    for path, config in zip(paths, (sft_config, grpo_config)):
        path.write_text(yaml.safe_dump(config))
    return paths


def check_report(out: Path, report: dict, model: str) -> None:
    assert set(report) == {"model", "params", "zero_shot", "after_sft", "after_grpo", "wall_seconds"}
    assert report["model"] == model and report["params"] > 0 and report["wall_seconds"] > 0
    for stage in ("zero_shot", "after_sft", "after_grpo"):
        assert set(report[stage]) >= STAGE_KEYS, stage
        assert set(report[stage]["categories"]) == set(CATEGORIES)
        lines = Path(report[stage]["predictions"]).read_text().splitlines()
        assert len(lines) == 2 * len(CATEGORIES)
        assert all({"id", "calls"} <= set(json.loads(line)) for line in lines)
    assert {"heldout_reward_before", "heldout_reward_after"} <= set(report["after_grpo"])
    assert json.loads((out / "report.json").read_text()) == report
    assert (out / "sft" / "learning_curve.png").is_file() and (out / "grpo" / "learning_curve.png").is_file()


def test_tiny_model_goes_through_every_stage_and_a_rerun_keeps_them(ray_session, tmp_path, tiny_llm):
    sft, grpo = stage_configs(tmp_path, str(tiny_llm))
    out = tmp_path / "llm-bfcl"
    report = run_llm_bfcl(out, sft, grpo, categories=CATEGORIES, limit=2)
    check_report(out, report, str(tiny_llm))
    assert report["zero_shot"]["non_live_ast"] == sum(
        report["zero_shot"]["categories"][c]["accuracy"] for c in NON_LIVE_AST if c in CATEGORIES) / 2
    adapter_mtime = (out / "grpo" / "adapter" / "adapter_model.safetensors").stat().st_mtime
    again = run_llm_bfcl(out, sft, grpo, categories=CATEGORIES, limit=2)
    assert again["after_grpo"] == report["after_grpo"]
    assert (out / "grpo" / "adapter" / "adapter_model.safetensors").stat().st_mtime == adapter_mtime


@pytest.mark.slow
def test_smollm2_from_its_wheel_learns_to_call_tools(ray_session, tmp_path):
    """The real pretrained model: a few SFT steps already turn its prose into parseable tool calls."""
    sft, grpo = stage_configs(tmp_path, "smollm2-135m-instruct",
                              sft={"data": {"env": "function_calling", "expert_episodes": 32, "eval_episodes": 4},
                                   "training": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "max_length": 1024},
                                   "workers": {"num_workers": 1, "cpus_per_worker": 1}})
    out = tmp_path / "llm-bfcl"
    report = run_llm_bfcl(out, sft, grpo, categories=CATEGORIES, limit=2)
    check_report(out, report, "smollm2-135m-instruct")
    assert report["params"] > 130_000_000
    zero_shot_calls = _calls(report["zero_shot"]["predictions"])
    after_sft_calls = _calls(report["after_sft"]["predictions"])
    assert zero_shot_calls == 0, "zero-shot, SmolLM2 answers in prose"
    assert after_sft_calls > 0, "after SFT it writes calls that parse"
    adapter_config = json.loads((out / "sft" / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "smollm2-135m-instruct"


def _calls(predictions: str) -> int:
    return sum(len(json.loads(line)["calls"]) for line in Path(predictions).read_text().splitlines())
