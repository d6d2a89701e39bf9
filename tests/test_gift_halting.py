"""Halting at inference: the Q head, fitted to "the greedy action has settled", stops the TRM's
recursion early in evaluation, in the ONNX export and in serving."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from recursa.gift.env import GiftRecommendationEnv, gift_spaces
from recursa.gift.export import export_gift_policy
from recursa.gift.halting import HaltingPolicy, fit_halting, observations_met, settled_targets
from recursa.gift.module import TRMPolicyModule
from recursa.gift.onnx_policy import OnnxPolicy
from recursa.gift.policies import random_policy
from recursa.gift.policy_io import load_policy, save_policy
from serving_models import GIFT_ENV

T = 3


def _module() -> TRMPolicyModule:
    observation_space, action_space = gift_spaces(GIFT_ENV.num_candidates)
    torch.manual_seed(0)
    return TRMPolicyModule(observation_space=observation_space, action_space=action_space, model_config={
        "hidden_size": 16, "num_layers": 1, "num_heads": 2, "T": T, "n": 1, "num_global_actions": 6})


@pytest.fixture(scope="module")
def observations():
    return observations_met(GIFT_ENV, random_policy(0), episodes=30, seed=0)


def test_halting_off_runs_every_cycle_and_matches_the_forward_pass(observations):
    module = _module()
    logits, cycles = module.halting_logits(*observations, threshold=0.999999)  # the Q head starts near 0
    assert torch.all(cycles == T)
    full = module.forward_inference({"obs": {"observations": observations[0], "action_mask": observations[1]}})
    assert torch.allclose(logits, full["action_dist_inputs"], atol=1e-5)


def test_a_confident_q_head_stops_after_one_cycle(observations):
    module = _module()
    with torch.no_grad():
        module.trm.q_head.bias.fill_(10.0)
    logits, cycles = module.halting_logits(*observations, threshold=0.5)
    assert torch.all(cycles == 1)
    first_cycle_logits, _, _ = module.one_cycle(*observations)
    assert torch.allclose(logits, first_cycle_logits)


def test_the_q_head_is_fitted_to_when_the_action_has_settled(observations):
    module = _module()
    trunk = {name: p.clone() for name, p in module.named_parameters() if "q_head" not in name}
    states, targets = settled_targets(module, *observations)
    assert states.shape[0] == targets.shape[0] == (T - 1) * len(observations[0])
    report = fit_halting(module, *observations)
    majority = max(report["halting_settled_share"], 1 - report["halting_settled_share"])
    assert report["halting_accuracy"] >= majority - 0.02, report
    assert all(torch.equal(p, trunk[name]) for name, p in module.named_parameters() if "q_head" not in name)


def test_the_onnx_export_halts_like_the_module(tmp_path, observations):
    module = _module()
    fit_halting(module, *observations)
    save_policy(module, GIFT_ENV, tmp_path / "policy", halting_threshold=0.6)
    export_gift_policy(tmp_path / "policy", tmp_path / "export")
    module, _ = load_policy(tmp_path / "policy")
    onnx = OnnxPolicy(tmp_path / "export", "fp32")
    assert onnx.halting_threshold == 0.6
    tokens, masks = (tensor.numpy() for tensor in observations)
    onnx_logits, onnx_cycles = onnx.halting_logits(tokens, masks)
    torch_logits, torch_cycles = module.halting_logits(*observations, threshold=0.6)
    assert np.array_equal(onnx_cycles, torch_cycles.numpy())
    assert np.array_equal(onnx_logits.argmax(-1), torch_logits.argmax(-1).numpy())
    env = GiftRecommendationEnv(GIFT_ENV.model_dump())
    batch = [env.reset(seed=i)[0] for i in range(8)]
    int8 = OnnxPolicy(tmp_path / "export", "int8")
    int8.act(batch)
    assert int8.decisions == 8 and 8 <= int8.cycles_run <= 8 * T
    assert OnnxPolicy(tmp_path / "export", "int8", halting_threshold=0).cycle_session is None  # 0: off


def test_evaluation_reports_cycles_saved_and_reward_kept(recursa_cli, tmp_path, observations):
    from recursa.core.config import dump_config
    from recursa.gift.config import TrainGiftConfig

    module = _module()
    with torch.no_grad():
        module.trm.q_head.bias.fill_(10.0)  # always settled after one cycle
    (tmp_path / "run").mkdir()
    dump_config(TrainGiftConfig(env=GIFT_ENV), tmp_path / "run" / "config.yaml")
    save_policy(module, GIFT_ENV, tmp_path / "run" / "policy", halting_threshold=0.5)
    code, stderr = recursa_cli(["eval", "gift", "--checkpoint", tmp_path / "run" / "policy", "--users", 10,
                                "--out", tmp_path / "eval.json"])
    assert code == 0, stderr
    halting = json.loads((tmp_path / "eval.json").read_text())["halting"]
    assert halting["cycles_per_decision"] == 1.0 and halting["cycles_saved"] == pytest.approx(1 - 1 / T)
    full = halting["full_depth_reward"]
    assert halting["reward_kept"] == pytest.approx(halting["mean_reward"] / full) if full else math.isnan(
        halting["reward_kept"])
    policy = HaltingPolicy(module, 0.5)
    env = GiftRecommendationEnv(GIFT_ENV.model_dump())
    policy(env, env.reset(seed=0)[0])
    assert policy.mean_cycles == 1.0
