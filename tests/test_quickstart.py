"""The quickstart end to end at a reduced budget: data, BC + PPO on Ray, evaluation, report.json."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from recursa.gift.config import BCSettings, EvalSettings, HaltingSettings, PPOSettings, TrainGiftConfig
from recursa.gift.policy_io import load_policy
from recursa.gift.quickstart import HARD_ENV, QUICKSTART_HARD, run_quickstart
from recursa.gift.tools import GIFT_TOOL_NAMES

SUMMARY_KEYS = {"mean_reward", "normalized_to_oracle", "tool_calls_per_episode", "tool_usage"}


@pytest.mark.slow
def test_quickstart_writes_the_documented_report(ray_session, tmp_path):
    config = TrainGiftConfig(
        name="quickstart",
        runs_dir=str(tmp_path),
        iterations=3,
        checkpoint_every=1,
        bc=BCSettings(episodes=800, epochs=3),
        ppo=PPOSettings(train_batch_size=1000, minibatch_size=250, num_epochs=2),
        eval=EvalSettings(users=150),
    )
    report = run_quickstart(config, Console(width=120))
    on_disk = json.loads((tmp_path / "quickstart" / "report.json").read_text())
    assert on_disk == report

    assert set(report) == {"policy", "baselines", "env_steps", "wall_seconds", "num_env_runners", "model", "train"}
    assert set(report["train"]) == {"return_first", "return_last", "entropy_first", "entropy_last"}
    assert all(0.0 < value < 3.0 for value in report["train"].values()), report["train"]
    assert set(report["baselines"]) == {"random", "no_tools", "all_tools_greedy", "oracle"}
    for summary in [report["policy"], *report["baselines"].values()]:
        assert set(summary) == SUMMARY_KEYS
        assert set(summary["tool_usage"]) == set(GIFT_TOOL_NAMES)
    assert report["model"]["name"] == "trm" and report["model"]["params"] > 10_000
    assert report["num_env_runners"] == 2
    assert report["env_steps"] >= 3 * 1000
    assert report["baselines"]["oracle"]["normalized_to_oracle"] == pytest.approx(1.0)

    baselines = report["baselines"]
    assert report["policy"]["mean_reward"] > baselines["no_tools"]["mean_reward"], "the policy learned to use tools"
    assert report["policy"]["tool_calls_per_episode"] > 0.5
    assert (tmp_path / "quickstart" / "policy" / "policy.safetensors").is_file()
    assert (tmp_path / "quickstart" / "learning_curve.png").is_file()


@pytest.mark.slow
def test_the_hard_preset_trains_a_per_item_policy_end_to_end(ray_session, tmp_path):
    config = QUICKSTART_HARD.model_copy(update={
        "runs_dir": str(tmp_path), "iterations": 2, "checkpoint_every": 1,
        "bc": BCSettings(episodes=60, epochs=1), "ppo": PPOSettings(train_batch_size=500, minibatch_size=250, num_epochs=1),
        "eval": EvalSettings(users=40), "halting": HaltingSettings(episodes=20),
        "runners": QUICKSTART_HARD.runners.model_copy(update={"num_envs_per_env_runner": 1})})
    report = run_quickstart(config, Console(width=120))
    assert json.loads((tmp_path / "quickstart-hard" / "report.json").read_text()) == report
    assert report["env_steps"] >= 2 * 500
    assert report["baselines"]["all_tools_greedy"]["normalized_to_oracle"] <= 0.80
    # Cloned from 60 expert episodes, the policy already inspects items one by one within the budget.
    assert 1.0 <= report["policy"]["tool_calls_per_episode"] <= HARD_ENV.tool_budget
    module, env_config = load_policy(tmp_path / "quickstart-hard" / "policy")
    assert env_config.per_item_tools and module.actions_per_item == 1 + len(env_config.tools)
