"""The TRM's recursion carried across environment steps as the policy's recurrent state (RLlib
STATE_IN/STATE_OUT): the same answers in training's unrolled sequences, in step-by-step
inference and in the ONNX export, trained by BC and PPO end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from recursa.core.config import ConfigError
from recursa.core.trm import TRMConfig
from recursa.gift.config import BCSettings
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.evaluate import evaluate_policy, load_policy_module, module_policy
from recursa.gift.export import export_gift_policy, onnx_env_policy
from recursa.gift.onnx_policy import OnnxPolicy
from recursa.gift.policies import expert_policy
from recursa.gift.train import train_gift
from test_gift_training import built_module, small_config


def carried_config(tmp_path, **updates):
    return small_config(tmp_path, recursion="across_steps", model=TRMConfig(T=1), **updates)


def expert_episode(seed: int) -> tuple[list[dict], GiftRecommendationEnv]:
    env = GiftRecommendationEnv({})
    observation, _ = env.reset(seed=seed)
    observations, done = [observation], False
    while not done:
        observation, _, terminated, truncated, _ = env.step(expert_policy(env, observation))
        done = terminated or truncated
        observations.append(observation)
    return observations[:-1], env


def test_the_state_starts_from_the_learned_carry_and_is_per_token(tmp_path):
    module = built_module(carried_config(tmp_path))
    state = module.get_initial_state()
    tokens = module.observation_space["observations"].shape[0]
    assert state["y"].shape == state["z"].shape == (tokens, module.trm_config.hidden_size)
    assert np.allclose(state["y"][0], module.trm.y_init.detach().numpy())
    assert built_module(small_config(tmp_path)).get_initial_state() == {}, "per-step recursion is stateless"


def test_an_unrolled_sequence_gives_the_logits_of_stepping_one_observation_at_a_time(tmp_path):
    module = built_module(carried_config(tmp_path))
    with torch.no_grad():  # a trunk that is not near its initialisation
        for parameter in module.trm.net.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    observations, _ = expert_episode(seed=4)
    assert len(observations) >= 3
    stepped, carry = [], None
    for observation in observations:
        logits, carry = module.step_logits(observation, carry)
        stepped.append(logits)
    sequence = {key: torch.from_numpy(np.stack([o[key] for o in observations]))[None] for key in observations[0]}
    y, z = module.trm.initial_carry(1, sequence["observations"].shape[2])
    out = module.forward_train({Columns.OBS: sequence, Columns.STATE_IN: {"y": y, "z": z}})
    unrolled = out[Columns.ACTION_DIST_INPUTS][0]
    assert torch.allclose(unrolled, torch.stack(stepped), atol=1e-5)
    assert torch.allclose(out[Columns.STATE_OUT]["y"][0], carry[0], atol=1e-5)
    # The state matters: the last step from a fresh start answers differently.
    fresh, _ = module.step_logits(observations[-1], None)
    allowed = torch.from_numpy(observations[-1]["action_mask"] > 0)
    assert not torch.allclose(fresh[allowed], stepped[-1][allowed], atol=1e-4)


@pytest.mark.slow
def test_bc_and_ppo_train_a_carried_policy_that_evaluates_exports_and_serves_alike(ray_session, tmp_path):
    config = carried_config(tmp_path, bc=BCSettings(episodes=60, epochs=2))
    result = train_gift(config)
    assert result.bc["bc_accuracy"] > 0.3, "BC fits whole episodes from the learned start"
    assert list(result.metrics["iteration"]) == [1, 2]
    module = load_policy_module(result.run_dir / "policy")
    assert module.recursion == "across_steps"
    torch_reward = evaluate_policy(config.env, module_policy(module), 20, 3)["mean_reward"]

    export_gift_policy(result.run_dir / "policy", tmp_path / "export")
    policy = OnnxPolicy(tmp_path / "export", "fp32")
    onnx_reward = evaluate_policy(config.env, onnx_env_policy(policy), 20, 3)["mean_reward"]
    assert onnx_reward == pytest.approx(torch_reward, abs=1e-6), "the export carries the state as torch does"
    assert policy.cycles_run == policy.decisions * config.model.T, "one cycle per step, never from scratch"
    with pytest.raises(ConfigError, match="halting_threshold"):
        OnnxPolicy(tmp_path / "export", "fp32", halting_threshold=0.6)
