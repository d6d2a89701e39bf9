"""The decisions demo end to end on the tiny model: the FILER adapter trained on the application's
well-rewarded decisions beats its base on the held-out test file and in the A/B split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FILER_CONFIG = Path(__file__).resolve().parents[1] / "jobs" / "configs" / "filer.yaml"


@pytest.mark.slow
def test_the_fine_tuned_filer_beats_its_base(ray_session, tmp_path):
    """On PostgreSQL when RECURSA_TEST_POSTGRES_URL is set (as `make decisions-demo`), else SQLite."""
    from recursa.decisions.demo import run_decisions_demo

    report = run_decisions_demo(tmp_path / "demo", FILER_CONFIG)
    assert json.loads((tmp_path / "demo" / "report.json").read_text()) == report
    assert set(report) == {"agent_type", "before", "after", "ab"} and report["agent_type"] == "FILER"
    before, after = report["before"], report["after"]
    assert set(before) == set(after) == {"accuracy", "mean_reward", "format_error_rate"}
    assert after["accuracy"] > before["accuracy"] + 0.5 and after["mean_reward"] > before["mean_reward"]
    assert after["format_error_rate"] < before["format_error_rate"]
    ab = report["ab"]
    assert ab["served"] == 200 and sum(v["served"] for v in ab["versions"].values()) == 200
    assert ab["reward_diff"] > 0 and ab["ci95"][0] > 0  # significant at 95%
    # The pipeline's record of its steps: the exported adapter and the registered version.
    steps = json.loads((tmp_path / "demo" / "filer" / "pipeline.json").read_text())["steps"]
    assert (Path(steps["export"]["path"]) / "adapter_model.safetensors").is_file()
    assert steps["register"]["metrics"]["accuracy"] == after["accuracy"]
    assert steps["dataset"]["records"] == steps["dataset"]["decisions"] > 0


def test_the_shipped_pipeline_config_loads():
    from recursa.core.config import load_config
    from recursa.decisions.pipeline import PipelineConfig

    config = load_config(FILER_CONFIG.parent / "filer_pipeline.yaml", PipelineConfig)
    assert config.train.method == "sft" and config.train.data.env is None and config.registry is not None
