"""Tool-calling TRM end to end on tiny settings: Ray Train, checkpoints, resume, BFCL eval, infer."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from recursa.core.config import ConfigError
from recursa.fc.config import TrainFCConfig
from recursa.fc.train import length_buckets


def tiny_config(tmp_path, epochs: int = 1) -> TrainFCConfig:
    return TrainFCConfig.model_validate({
        "name": "tiny", "runs_dir": str(tmp_path),
        "data": {"train_examples": 400, "dev_examples": 40},
        "tokenizer": {"kind": "sentencepiece", "vocab_size": 600},
        "model": {"hidden_size": 32, "num_heads": 4, "T": 1, "n": 1},
        "training": {"epochs": epochs, "batch_size": 32, "warmup_steps": 5, "n_sup": 2},
        "workers": {"num_workers": 1, "cpus_per_worker": 1},
    })


def test_length_buckets_cover_every_example_once():
    class Item:
        def __init__(self, n):
            self.role = [0] * n

    items = [Item(random.Random(i).randint(1, 90)) for i in range(1000)]
    batches = length_buckets(items, 16, random.Random(0), window=10)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    spread = [max(len(items[i].role) for i in b) - min(len(items[i].role) for i in b) for b in batches]
    assert sum(spread) / len(spread) < 20, "batches hold examples of similar length"


@pytest.mark.slow
def test_train_resume_evaluate_and_infer(ray_session, tmp_path, capsys):
    from recursa.cli import main
    from recursa.fc.artifact import load_fc_model
    from recursa.fc.bfcl import evaluate_bfcl
    from recursa.fc.train import train_fc

    model_dir = train_fc(tiny_config(tmp_path))
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer").is_dir()
    report = json.loads((tmp_path / "tiny" / "train_report.json").read_text())
    assert report["epoch"] == 1
    assert {"function_accuracy", "exact_match", "ast_accuracy", "execution_reward", "loss"} <= set(report)

    with pytest.raises(ConfigError, match="--resume"):
        train_fc(tiny_config(tmp_path))
    train_fc(tiny_config(tmp_path, epochs=2), resume=True)
    metrics = pd.read_parquet(tmp_path / "tiny" / "metrics.parquet")
    assert list(metrics["epoch"]) == [1, 2], "the resumed run trains only the missing epoch"

    model, featurizer = load_fc_model(model_dir)
    bfcl = evaluate_bfcl(model, featurizer, ("simple_python", "irrelevance"), limit=5)
    assert set(bfcl) == {"categories", "non_live_ast", "live_ast", "irrelevance", "params"}
    assert bfcl["categories"]["simple_python"]["n"] == 5 and 0.0 <= bfcl["irrelevance"] <= 1.0

    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]))
    capsys.readouterr()
    with pytest.raises(SystemExit) as finished:
        main(["infer", "fc", "--checkpoint", str(model_dir), "--tools", str(tools), "--query", "Weather in Paris?"])
    assert finished.value.code == 0
    calls = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert isinstance(calls, list) and all(set(c) == {"name", "arguments"} for c in calls)


def test_extra_training_files_join_the_generated_data_and_a_missing_one_is_named(tmp_path):
    from recursa.fc.data.generator import generate_examples
    from recursa.fc.data.store import read_examples, write_examples
    from recursa.fc.train import prepare_run

    labelled = [e.model_copy(update={"id": f"teacher-{i}", "source": "paraphrase"})
                for i, e in enumerate(generate_examples(7, seed=99))]
    write_examples(labelled, tmp_path / "labels.parquet")
    config = tiny_config(tmp_path).model_copy(update={"data": tiny_config(tmp_path).data.model_copy(
        update={"train_examples": 20, "extra_paths": [str(tmp_path / "labels.parquet")]})})
    run_dir = prepare_run(config, resume=False)
    train = read_examples(run_dir / "data" / "train.parquet")
    assert len(train) == 27 and sum(e.source == "paraphrase" for e in train) == 7

    missing = config.model_copy(update={"name": "other", "data": config.data.model_copy(
        update={"extra_paths": [str(tmp_path / "labels.parquet"), "nowhere.parquet"]})})
    with pytest.raises(ConfigError, match=r"^data\.extra_paths\[1\]: file not found: nowhere\.parquet"):
        prepare_run(missing, resume=False)
