"""A gift policy acts on any number of candidates: trained at one K, it evaluates, exports and
serves at any K from 4 to 32; a policy that reads another observation encoding is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from recursa.core.config import dump_config
from recursa.gift.config import TrainGiftConfig
from recursa.gift.env import NUM_GLOBAL_ACTIONS, TOKEN_DIM, GiftRecommendationEnv, gift_spaces
from recursa.gift.module import TRMPolicyModule
from recursa.gift.policy_io import save_policy
from serving_models import GIFT_ENV, scripted_gift_policy

SMALL_TRM = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "T": 1, "n": 1, "num_global_actions": NUM_GLOBAL_ACTIONS}


def _module(num_candidates: int = 8, token_dim: int = TOKEN_DIM) -> TRMPolicyModule:
    observation_space, action_space = gift_spaces(num_candidates, token_dim)
    torch.manual_seed(0)
    return TRMPolicyModule(observation_space=observation_space, action_space=action_space, model_config=SMALL_TRM)


def _logits(module: TRMPolicyModule, observation: dict) -> torch.Tensor:
    batch = {Columns.OBS: {key: torch.from_numpy(value)[None] for key, value in observation.items()}}
    with torch.no_grad():
        return module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0]


def test_no_parameter_depends_on_the_number_of_candidates():
    shapes_at = {k: {name: p.shape for name, p in _module(k).named_parameters()} for k in (4, 8, 32)}
    assert shapes_at[4] == shapes_at[8] == shapes_at[32]


@pytest.mark.parametrize("k", [4, 13, 32])
def test_a_policy_built_at_8_candidates_acts_on_k_and_treats_them_as_a_set(k):
    module = _module(8)
    env = GiftRecommendationEnv({**GIFT_ENV.model_dump(), "num_candidates": k})
    observation, _ = env.reset(seed=k)
    logits = _logits(module, observation)
    assert logits.shape == (NUM_GLOBAL_ACTIONS + k,)
    order = np.random.default_rng(k).permutation(k)
    shuffled = dict(observation, observations=observation["observations"][np.r_[0, 1 + order]])
    shuffled_logits = _logits(module, shuffled)
    assert torch.allclose(shuffled_logits[:NUM_GLOBAL_ACTIONS], logits[:NUM_GLOBAL_ACTIONS], atol=1e-5)
    assert torch.allclose(shuffled_logits[NUM_GLOBAL_ACTIONS:], logits[NUM_GLOBAL_ACTIONS:][order], atol=1e-5)


@pytest.fixture
def policy_run(tmp_path):
    """A saved K=8 policy in a run directory with its config.yaml."""
    (tmp_path / "run").mkdir()
    dump_config(TrainGiftConfig(env=GIFT_ENV), tmp_path / "run" / "config.yaml")
    return scripted_gift_policy(tmp_path / "run" / "policy")


def test_eval_at_other_numbers_of_candidates_reports_each(recursa_cli, policy_run, tmp_path):
    code, stderr = recursa_cli(["eval", "gift", "--checkpoint", policy_run, "--candidates", 4, "--candidates", 32,
                                "--users", 6, "--out", tmp_path / "by_k.json"])
    assert code == 0, stderr
    results = json.loads((tmp_path / "by_k.json").read_text())
    assert set(results) == {"4", "32"}
    for summary in results.values():
        assert summary["baselines"]["oracle"]["normalized_to_oracle"] == pytest.approx(1.0)
        usage = summary["policy"]["tool_usage"]  # as scripted: stock and budget, retried when they fail
        assert min(usage["inventory_check"], usage["budget_optimizer"]) >= 1 - 1e-9 and usage["review_analysis"] == 0


def test_eval_out_of_range_candidates_exits_2_naming_the_option(recursa_cli, policy_run):
    code, stderr = recursa_cli(["eval", "gift", "--checkpoint", policy_run, "--candidates", 40])
    assert code == 2 and "--candidates" in stderr and "Traceback" not in stderr, stderr


def test_a_policy_for_another_observation_encoding_exits_2_in_one_line(recursa_cli, tmp_path):
    (tmp_path / "run").mkdir()
    dump_config(TrainGiftConfig(env=GIFT_ENV), tmp_path / "run" / "config.yaml")
    save_policy(_module(8, token_dim=TOKEN_DIM + 3), GIFT_ENV, tmp_path / "run" / "policy")
    code, stderr = recursa_cli(["eval", "gift", "--checkpoint", tmp_path / "run" / "policy", "--users", 2])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert f"reads tokens of {TOKEN_DIM + 3} features" in lines[0] and "observation encoding" in lines[0]


def test_two_policies_are_compared_on_the_same_users(recursa_cli, policy_run, tmp_path):
    code, stderr = recursa_cli(["eval", "gift", "--checkpoint", policy_run, "--checkpoint", policy_run,
                                "--users", 8, "--out", tmp_path / "pair.json"])
    assert code == 0, stderr
    pair = json.loads((tmp_path / "pair.json").read_text())
    assert pair["first"] == pair["second"]
    assert pair["difference"] == {"mean": 0.0, "ci95": [0.0, 0.0], "second_wins": 0.0, "second_loses": 0.0}
