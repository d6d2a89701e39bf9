"""Ray Tune: PBT of the gift policy and ASHA of the tool caller, end to end on tiny settings, with their
leaderboards, exports and reports; config errors; an interrupted run restored without repeating trials."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recursa.core.config import ConfigError, parse_config
from recursa.fc.config import TuneFCConfig
from recursa.gift.config import TuneGiftConfig

RECURSA = Path(sys.executable).parent / "recursa"
REPO = Path(__file__).resolve().parents[1]


def tiny_pbt(tmp_path: Path, **updates) -> dict:
    settings = {
        "name": "pbt", "runs_dir": str(tmp_path), "env_steps_per_trial": 2400,
        "base": {
            "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2},
            "ppo": {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 1},
            "bc": {"episodes": 40, "epochs": 1},
            "runners": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
            "eval": {"users": 20},
        },
        "pbt": {"population": 4, "perturbation_interval": 2, "quantile_fraction": 0.5},
        "search": {"T": [1, 3], "n": [1, 2]},
        "resources": {"cpus": 0.5},
    }
    settings.update(updates)
    return settings


def tiny_asha(tmp_path: Path) -> dict:
    return {
        "name": "asha", "runs_dir": str(tmp_path),
        "base": {
            "data": {"train_examples": 200, "dev_examples": 20},
            "tokenizer": {"kind": "char"},
            "model": {"num_layers": 1, "num_heads": 2},
            "training": {"epochs": 2, "batch_size": 32, "warmup_steps": 2},
            "workers": {"num_workers": 1, "cpus_per_worker": 1},
        },
        "asha": {"num_samples": 3, "grace_period": 1, "reduction_factor": 2},
        "search": {"hidden_size": [16, 32], "T": [1, 2], "n": [1, 2], "n_sup": [1, 2]},
    }


def write(tmp_path: Path, settings: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize("kind, settings, field", [
    ("gift", {"search": {"lr": {"low": 0.01, "high": 0.001}}}, "search.lr: low must be below high"),
    ("gift", {"search": {"T": []}}, "search.T: give at least one positive integer"),
    ("gift", {"pbt": {"keep_checkpoints": 2}}, "pbt.keep_checkpoints"),
    ("gift", {"pbt": {"population": 1}}, "pbt.population"),
    ("gift", {"resources": {"gpu": 1}}, "resources.gpu: unknown key"),
    ("fc", {"search": {"n_sup": [0]}}, "search.n_sup: give at least one positive integer"),
    ("fc", {"asha": {"metric": "loss"}}, "asha.metric"),
    ("fc", {"asha": {"reduction_factor": 1}}, "asha.reduction_factor"),
    ("gift", {"base": {"ppo": {"lrr": 0.1}}}, "base.ppo.lrr: unknown key"),
    ("gift", {"model": {"T": 2}}, "model: unknown key"),  # training settings live under base
    ("fc", {"base": {"model": {"mixer": "mlp"}}}, "base.model.mixer: the tool caller needs the attention mixer"),
    ("fc", {"base": "missing.yaml"}, "base: missing.yaml: config: file not found"),
])
def test_invalid_tune_config_exits_2_naming_the_field(recursa_cli, tmp_path, kind, settings, field):
    code, stderr = recursa_cli(["tune", kind, "--config", write(tmp_path, settings)])
    assert code == 2 and stderr.startswith(f"error: {field}")


def test_gpus_asked_for_on_a_cluster_without_them_is_a_config_error(ray_session, tmp_path):
    from recursa.gift.pbt import tune_gift

    config = parse_config(tiny_pbt(tmp_path, resources={"cpus": 0.5, "gpus": 1}), TuneGiftConfig)
    with pytest.raises(ConfigError, match=r"resources\.gpus: 1\.0 GPUs asked for"):
        tune_gift(config)
    assert not (tmp_path / "pbt" / "pbt").exists()


def test_resuming_nothing_and_overwriting_a_run_are_config_errors(ray_session, recursa_cli, tmp_path):
    config = write(tmp_path, tiny_pbt(tmp_path))
    code, stderr = recursa_cli(["tune", "gift", "--config", config, "--resume"])
    assert code == 2 and "error: resume: no Tune experiment to resume" in stderr
    (tmp_path / "pbt" / "pbt").mkdir(parents=True)
    code, stderr = recursa_cli(["tune", "gift", "--config", config])
    assert code == 2 and "error: name:" in stderr and not (tmp_path / "pbt" / "config.yaml").exists()


def test_report_of_a_directory_without_a_tune_run_exits_2(recursa_cli, tmp_path):
    code, stderr = recursa_cli(["tune", "report", tmp_path])
    assert code == 2 and "no Tune experiment" in stderr


@pytest.mark.slow
def test_pbt_population_best_export_and_default_comparison(ray_session, tmp_path, capfd):
    from recursa.cli import main
    from recursa.gift.pbt import tune_gift
    from recursa.gift.policy_io import load_policy

    config = parse_config(tiny_pbt(tmp_path), TuneGiftConfig)
    report = tune_gift(config)
    run = tmp_path / "pbt"
    assert json.loads((run / "tune_report.json").read_text()) == report
    assert report["population"] == 4 and report["env_steps_per_trial"] == 2400
    assert all(math.isfinite(report[key]) for key in ("pbt_best", "default"))

    table = pd.read_csv(run / "leaderboard.csv")
    assert sorted(table["experiment"]) == ["default"] + ["pbt"] * 4
    assert (table["status"] == "TERMINATED").all()
    assert (table["num_env_steps_sampled_lifetime"] >= 2400).all()  # every trial ran the whole budget
    default = table[table["experiment"] == "default"].iloc[0]
    assert (default["T"], default["n"], default["lr"]) == (2, 2, config.base.ppo.lr)
    assert set(table["T"]) <= {1, 2, 3} and table[table["experiment"] == "pbt"]["lr"].nunique() > 1
    assert (run / "pbt" / "pbt_global.txt").read_text().strip()  # PBT cloned and perturbed trials
    trials = [d for d in (run / "pbt").iterdir() if d.is_dir()]
    assert len(trials) == 4 and all(any(d.glob("events.out.tfevents*")) for d in trials)  # TensorBoard

    policy, env_config = load_policy(run / "best" / "policy")  # the best trial's depth came with it
    assert (policy.trm_config.T, policy.trm_config.n) == (report["best_config"]["T"], report["best_config"]["n"])
    assert env_config == config.base.env

    with pytest.raises(SystemExit) as evaluated:  # the export is what `recursa eval gift` takes
        main(["eval", "gift", "--checkpoint", str(run / "best"), "--users", "5"])
    assert evaluated.value.code == 0

    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "report", str(run)])
    out = capfd.readouterr().out
    assert exit_info.value.code == 0
    assert "Leaderboard" in out and "pbt_best" in out
    assert all(trial.split("_")[-1][:5] in out for trial in table["trial"].astype(str))


@pytest.mark.slow
def test_asha_trials_run_on_ray_train_and_export_the_best(ray_session, tmp_path):
    from recursa.fc.artifact import load_fc_model
    from recursa.fc.asha import tune_fc

    report = tune_fc(parse_config(tiny_asha(tmp_path), TuneFCConfig))
    run = tmp_path / "asha"
    table = pd.read_csv(run / "leaderboard.csv")
    assert len(table) == 3 and table["epoch"].between(1, 2).all()
    assert (table["status"] == "TERMINATED").all()
    assert report["best"] == table["exact_match"].max() and report["trials"] == 3
    for trial in table["trial"]:  # each trial's Ray Train run kept its checkpoints
        assert any((run / "asha" / "ray_train" / trial).rglob("ema.safetensors"))
    model, _ = load_fc_model(run / "best" / "model")
    best = report["best_config"]
    assert (model.config.hidden_size, model.config.T, model.config.n) == (best["hidden_size"], best["T"], best["n"])


def _finished_trials(experiment: Path, env_steps: int) -> dict[str, int]:
    """Trial directory -> lines of result.json, for trials that sampled their whole budget.

    Tune may be writing the file while we read it: a last line without its newline is not yet a result.
    """
    done = {}
    for results in experiment.glob("*/result.json"):
        text = results.read_text()
        lines = text[: text.rfind("\n") + 1].splitlines()
        if lines and json.loads(lines[-1])["num_env_steps_sampled_lifetime"] >= env_steps:
            done[results.parent.name] = len(lines)
    return done


@pytest.mark.fault
def test_interrupted_tune_run_resumes_without_repeating_finished_trials(tmp_path):
    # Two trials one after the other, never perturbed (so PBT never pauses one for the other).
    settings = tiny_pbt(tmp_path, compare_default=False, env_steps_per_trial=4000,
                        pbt={"population": 2, "perturbation_interval": 100},
                        trials={"max_concurrent_trials": 1})
    config = write(tmp_path, settings)
    env = {**os.environ, "RAY_ADDRESS": "local", "PYTHONPATH": str(REPO / "platform")}
    experiment = tmp_path / "pbt" / "pbt"
    process = subprocess.Popen([str(RECURSA), "tune", "gift", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not _finished_trials(experiment, 4000) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before it could be interrupted"
        process.send_signal(signal.SIGINT)  # Ctrl-C while the second trial trains
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and "--resume" in stderr, stderr[-2000:]
    assert not (tmp_path / "pbt" / "tune_report.json").exists()
    finished = _finished_trials(experiment, 4000)
    assert len(finished) == 1

    resumed = subprocess.run([str(RECURSA), "tune", "gift", "--config", str(config), "--resume"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = _finished_trials(experiment, 4000)
    assert len(after) == 2
    for trial, lines in finished.items():  # the finished trial was not run again
        assert after[trial] == lines
    report = json.loads((tmp_path / "pbt" / "tune_report.json").read_text())
    assert report["population"] == 2 and report["default"] is None
