"""`recursa train llm` on Ray Train with the tiny model: SFT, KTO (TRL), GRPO with Ray actors, resume,
the CLI around them, and the demo end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

from recursa.core.config import ConfigError, parse_config
from recursa.llm.config import TrainLLMConfig
from recursa.llm.train import prepare_llm_run, train_llm
from recursa.traces.store import TraceStore

LORA = {"r": 16, "alpha": 32, "dropout": 0.0}


def config(tmp_path: Path, tiny_llm: Path, **overrides) -> TrainLLMConfig:
    base = {"name": "run", "runs_dir": str(tmp_path), "model": {"path": str(tiny_llm), "lora": LORA},
            "data": {"expert_episodes": 24, "eval_episodes": 12},
            "training": {"epochs": 2, "batch_size": 16, "lr": 3e-3}}
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return parse_config(base, TrainLLMConfig)


def report(adapter: Path) -> dict:
    return json.loads((adapter.parent / "report.json").read_text())


def test_sft_trains_an_adapter_and_resume_needs_a_checkpoint(ray_session, tmp_path, tiny_llm):
    settings = config(tmp_path, tiny_llm)
    adapter = train_llm(settings)
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "tokenizer.json").is_file()
    run = adapter.parent
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert list(metrics["epoch"]) == [1, 2] and metrics["loss"].iloc[-1] < metrics["loss"].iloc[0]
    assert (run / "learning_curve.png").stat().st_size > 0
    evaluation = report(adapter)["eval"]
    assert evaluation["episodes"] == 12 and 0 <= evaluation["success_rate"] <= 1
    assert datasets.load_dataset("parquet", data_files=str(run / "records.parquet"), split="train").column_names \
        == ["prompt", "completion", "weight"]
    with pytest.raises(ConfigError, match="exists"):
        prepare_llm_run(settings, resume=False)
    # Two more epochs from the checkpoint of the second: the log goes on, it does not restart.
    longer = settings.model_copy(update={"training": settings.training.model_copy(update={"epochs": 4})})
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 2", "epochs: 4"))
    train_llm(longer, resume=True)
    assert list(pd.read_parquet(run / "metrics.parquet")["epoch"]) == [1, 2, 3, 4]


def test_kto_trains_through_trl_on_step_labels(ray_session, tmp_path, tiny_llm):
    settings = config(tmp_path, tiny_llm, method="kto", data={"expert_noise": 0.4}, training={"epochs": 1})
    adapter = train_llm(settings)
    records = datasets.load_dataset("parquet", data_files=str(adapter.parent / "records.parquet"), split="train")
    assert set(records["label"]) == {True, False}
    metrics = pd.read_parquet(adapter.parent / "metrics.parquet")
    assert len(metrics) == 1 and "loss" in metrics and (adapter / "adapter_model.safetensors").is_file()


def test_grpo_after_sft_uses_the_sft_policy_as_reference_and_resumes(ray_session, tmp_path, tiny_llm):
    sft = train_llm(config(tmp_path, tiny_llm, name="sft"))
    settings = config(tmp_path, tiny_llm, name="grpo", method="grpo", init_adapter=str(sft),
                      grpo={"iterations": 2, "problems_per_iteration": 4, "group_size": 4, "rollout_actors": 2,
                            "cpus_per_actor": 0.25, "eval_every": 2, "temperature": 0.7,
                            "rewards": {"format_compliance": 0.5}})
    adapter = train_llm(settings)
    run = adapter.parent
    resolved = TrainLLMConfig(**__import__("yaml").safe_load((run / "config.yaml").read_text()))
    assert resolved.model.path == str(run / "reference") and resolved.init_adapter is None
    assert (run / "reference" / "model.safetensors").is_file()
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert list(metrics["iteration"]) == [1, 2]
    assert {"train_reward_mean", "samples", "eval_success_rate", "rollout_seconds"} <= set(metrics.columns)
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        run / "reference")
    # One more iteration from the checkpoint of the second: the iterations go on, not start over.
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("iterations: 2", "iterations: 3"))
    train_llm(settings, resume=True)
    assert list(pd.read_parquet(run / "metrics.parquet")["iteration"]) == [1, 2, 3]


def test_cli_bad_llm_configs_exit_2_naming_the_field(tmp_path, tiny_llm, recursa_cli):
    bad = tmp_path / "bad.yaml"
    for text, field in [("method: ppo\n", "method"), ("grpo: {group_size: 1}\n", "grpo.group_size"),
                        (f"model: {{path: {tiny_llm}}}\ndata: {{env: nowhere}}\n", "data.env"),
                        ("model: {path: ./missing-model}\n", "model.path"),
                        (f"model: {{path: {tiny_llm}}}\ninit_adapter: {tmp_path}\n", "init_adapter")]:
        bad.write_text(f"runs_dir: {tmp_path}\n" + text)
        code, err = recursa_cli(["train", "llm", "--config", bad])
        assert code == 2 and field in err


def test_eval_llm_reports_and_stores_episodes_as_traces(tmp_path, tiny_llm, recursa_cli):
    db = tmp_path / "traces.db"
    out = tmp_path / "eval.json"
    assert recursa_cli(["eval", "llm", "--base", str(tiny_llm), "--episodes", "4", "--out", str(out), "--traces", str(db)])[0] == 0
    evaluation = json.loads(out.read_text())
    assert {"accuracy", "mean_reward", "format_error_rate", "sample_errors"} <= set(evaluation)
    with TraceStore(str(db)) as store:
        stored = store.query(agent_type="llm-math")
    assert len(stored) == 4 and all(t.reward is not None for t in stored)
    dataset = tmp_path / "kto.jsonl"
    assert recursa_cli(["traces", "dataset", "--db", str(db), "--out", str(dataset)])[0] == 0
    records = datasets.load_dataset("json", data_files=str(dataset), split="train")
    assert len(records) == 4 and records.column_names == ["prompt", "completion", "label"]


@pytest.mark.slow
def test_llm_demo_sft_then_grpo_end_to_end(ray_session, tmp_path, recursa_cli):
    """`make llm-demo` on small settings: the report has its shape, and SFT learned the environment."""
    sft = tmp_path / "sft.yaml"
    sft.write_text("method: sft\nmodel: {lora: {r: 32, alpha: 64, dropout: 0.0}}\n"
                   "data: {expert_episodes: 128, eval_episodes: 40}\ntraining: {epochs: 5, batch_size: 16, lr: 3.0e-3}\n")
    grpo = tmp_path / "grpo.yaml"
    grpo.write_text("method: grpo\nmodel: {lora: {r: 32, alpha: 64, dropout: 0.0}}\ndata: {eval_episodes: 40}\n"
                    "training: {batch_size: 32, lr: 2.0e-4}\n"
                    "grpo: {iterations: 2, problems_per_iteration: 8, group_size: 4, temperature: 0.7,"
                    " kl_coeff: 0.02, eval_every: 2, cpus_per_actor: 0.25}\n")
    out = tmp_path / "llm-demo"
    assert recursa_cli(["llm", "demo", "--out", out, "--sft-config", sft, "--grpo-config", grpo])[0] == 0
    result = json.loads((out / "report.json").read_text())
    assert set(result) >= {"before", "after_sft", "after_grpo", "wall_seconds"}
    for stage in ("before", "after_sft", "after_grpo"):
        assert set(result[stage]) == {"success_rate", "mean_reward", "format_error_rate"}
    assert result["before"]["success_rate"] == 0.0
    assert result["after_sft"]["success_rate"] >= 0.3
    assert result["after_sft"]["mean_reward"] > result["before"]["mean_reward"] + 3
    # Two small GRPO iterations must not undo what SFT taught (the learning margin is `make llm-demo`'s).
    assert result["after_grpo"]["success_rate"] >= result["after_sft"]["success_rate"] - 0.15
