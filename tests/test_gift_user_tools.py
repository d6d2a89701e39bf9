"""A user's own tool, named in the config, goes all the way into a trained policy without a change
to the environment (examples/gift_shipping_tool.py, the docs' "Adding a tool" example)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import FIRST_TOOL, NUM_GLOBAL_ACTIONS, TOKEN_DIM, GiftRecommendationEnv
from recursa.gift.tools import GIFT_TOOL_NAMES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SIX_TOOLS = [*GIFT_TOOL_NAMES, "gift_shipping_tool:SHIPPING_ESTIMATE"]


@pytest.fixture(autouse=True)
def examples_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_a_sixth_tool_is_an_action_and_its_answer_is_observed():
    env = GiftRecommendationEnv({"num_items": 120, "num_users": 40, "tools": SIX_TOOLS, "tool_failure_rate": 0.0})
    assert env.action_space.n == NUM_GLOBAL_ACTIONS + 1 + env.config.num_candidates
    # Its "answered" and "failed" flags (profile), its "revealed" flag and its field (candidates).
    assert env.observation_space["observations"].shape[1] == TOKEN_DIM + 4
    observation, _ = env.reset(seed=0)
    shipping = FIRST_TOOL + SIX_TOOLS.index("gift_shipping_tool:SHIPPING_ESTIMATE")
    assert observation["action_mask"][shipping] == 1
    observation, reward, *_ , info = env.step(shipping)
    assert info["calls_by_tool"]["shipping_estimate"] == 1 and reward == -env.config.tool_cost
    days = env.known("delivery_days") * 7
    in_stock = env.catalog.loc[env.candidate_items.ids, "stock"].to_numpy() > 0
    assert np.all((days[in_stock] >= 2) & (days[in_stock] <= 6)) and np.all(days[~in_stock] == 21)
    assert observation["action_mask"][shipping] == 0  # answered


@pytest.mark.parametrize(("tools", "words"), [
    (["price_comparison", "fortune_teller"], "no registered tool 'fortune_teller'"),
    (["gift_shipping_tool:NOT_THERE"], "cannot be imported"),
    (["gift_shipping_tool:SLOW_DELIVERY_DAYS"], "is not a GiftTool (its type: int)"),
    (["price_comparison", "price_comparison"], "named more than once"),
])
def test_a_tool_that_is_not_registered_exits_2_naming_it(recursa_cli, monkeypatch, tmp_path, tools, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(json.dumps({"env": {"tools": tools}}))
    code, stderr = recursa_cli(["train", "gift", "--config", "bad.yaml"])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "env.tools" in lines[0] and words in lines[0], stderr


def test_a_policy_trained_with_a_sixth_tool_evaluates_and_exports(ray_session, recursa_cli, tmp_path):
    from recursa.core.config import RunnerSettings
    from recursa.gift.export import export_gift_policy
    from recursa.gift.onnx_policy import OnnxPolicy
    from recursa.gift.policy_io import load_policy
    from recursa.gift.train import train_gift
    from test_gift_training import small_config

    env = GiftEnvConfig(num_items=120, num_users=40, tools=SIX_TOOLS)
    # In-process env runner: the example module is on this process's path, not on Ray's workers'.
    config = small_config(tmp_path, env=env, runners=RunnerSettings(num_env_runners=0))
    result = train_gift(config)
    assert "calls_shipping_estimate" in result.metrics.columns
    module, saved_env = load_policy(result.run_dir / "policy")
    assert module.num_global_actions == NUM_GLOBAL_ACTIONS + 1 and saved_env.tools == SIX_TOOLS
    code, stderr = recursa_cli(["eval", "gift", "--checkpoint", result.run_dir / "policy", "--users", 5,
                                "--candidates", 12, "--out", tmp_path / "eval.json"])
    assert code == 0, stderr
    assert "shipping_estimate" in json.loads((tmp_path / "eval.json").read_text())["12"]["policy"]["tool_usage"]
    export_gift_policy(result.run_dir / "policy", tmp_path / "export")
    observation, _ = GiftRecommendationEnv(env.model_dump()).reset(seed=0)
    action = OnnxPolicy(tmp_path / "export", "int8").act([observation])[0]
    assert observation["action_mask"][action] == 1
