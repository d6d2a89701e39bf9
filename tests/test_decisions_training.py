"""Training on records exported from an application's decisions: the columns each method reads, and
offline GRPO over stored groups (the better completion of a group becomes more likely)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from recursa.cli import app
from recursa.core.config import ConfigError, parse_config
from recursa.llm.config import TrainLLMConfig
from recursa.llm.datasets import group_samples
from recursa.llm.train import prepare_llm_run, train_llm
from test_decisions_data import conventional_table

LORA = {"r": 16, "alpha": 32, "dropout": 0.0}


def run_config(tmp_path, tiny_llm, method: str, records) -> TrainLLMConfig:
    return parse_config({"name": method, "runs_dir": str(tmp_path / "runs"), "method": method,
                         "model": {"path": str(tiny_llm), "lora": LORA},
                         "data": {"env": None, "records_path": str(records)},
                         "training": {"epochs": 2, "batch_size": 4, "lr": 3e-3, "max_length": 128}}, TrainLLMConfig)


def test_group_samples_are_normalised_within_each_group():
    prompts, completions, advantages = group_samples([
        {"prompt": "p", "completions": ["a", "b", "c"], "rewards": [0.0, 0.5, 1.0]},
        {"prompt": "q", "completions": ["x", "y"], "rewards": [0.7, 0.7]}])  # equal rewards teach nothing
    assert prompts == ["p", "p"] and completions == ["a", "c"]
    assert advantages == pytest.approx([-1.2247, 1.2247], abs=1e-4)


def test_the_offline_objective_makes_the_better_completion_more_likely(tiny_llm):
    from recursa.llm.batches import encode_pairs, token_logprobs
    from recursa.llm.grpo import grpo_update
    from recursa.llm.models import load_causal_lm

    config = parse_config({"method": "offline_grpo", "model": {"path": str(tiny_llm), "lora": LORA},
                           "training": {"batch_size": 2, "lr": 1e-2}, "grpo": {"update_epochs": 4}}, TrainLLMConfig)
    model, tokenizer = load_causal_lm(config.model)
    prompt = "Choose the folder for the file.\nFile: song_2.mp3\nDecision:"
    prompts, completions, advantages = group_samples([{"prompt": prompt, "rewards": [0.2, 1.0],
                                                       "completions": [' {"folder": "Finance"}', ' {"folder": "Music"}']}])
    batch = encode_pairs(tokenizer, prompts, completions, 128)

    def preference() -> float:  # log p(better) - log p(worse)
        with torch.no_grad():
            model.eval()
            logprobs, mask = token_logprobs(model, batch)
        totals = (logprobs * mask).sum(-1)
        return float(totals[1] - totals[0])

    before = preference()
    for _ in range(3):
        metrics = grpo_update(model, model, batch, torch.tensor(advantages), torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=1e-2), config, torch.Generator().manual_seed(0))
    assert preference() > before + 1.0 and metrics["kl"] >= 0


def test_exported_records_train_each_method(ray_session, app_db, tiny_llm, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["rewards", "calculate", "--agent-type", "FILER", "--db", app_db]).exit_code == 0
    files = {}
    for fmt in ("sft", "kto", "grpo"):
        files[fmt] = tmp_path / f"{fmt}.jsonl"
        result = runner.invoke(app, ["traces", "export", "--agent-type", "FILER", "--format", fmt, "--db", app_db,
                                     "--out", str(files[fmt])])
        assert result.exit_code == 0, result.output
    assert prepare_llm_run(run_config(tmp_path, tiny_llm, "kto", files["kto"]), resume=False).is_dir()
    with pytest.raises(ConfigError, match="offline_grpo records need the columns prompt, completions, rewards; "
                                          "missing completions, rewards"):
        prepare_llm_run(run_config(tmp_path / "bad", tiny_llm, "offline_grpo", files["sft"]), resume=False)
    with pytest.raises(ConfigError, match=r"data\.env: grpo needs an environment"):
        prepare_llm_run(run_config(tmp_path / "online", tiny_llm, "grpo", files["grpo"]), resume=False)
    adapter = train_llm(run_config(tmp_path, tiny_llm, "offline_grpo", files["grpo"]))
    assert (adapter / "adapter_model.safetensors").is_file()
    metrics = pd.read_parquet(adapter.parent / "metrics.parquet")
    assert list(metrics["epoch"]) == [1, 2] and set(metrics["samples"]) == {2}


@pytest.fixture
def app_db(tmp_path):
    url = str(tmp_path / "app.db")
    conventional_table(url)
    return url
