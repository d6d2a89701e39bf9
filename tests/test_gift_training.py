"""PPO with the TRM policy through RLlib: it trains on 2 env runners, checkpoints and resumes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from ray.rllib.core.columns import Columns

from recursa.core.trm import TRMCore
from recursa.gift.config import BCSettings, EvalSettings, PPOSettings, TrainGiftConfig
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.evaluate import load_policy_module, module_policy
from recursa.gift.module import TRMPolicyModule
from recursa.gift.ppo import trm_module_spec
from recursa.gift.train import train_gift


def small_config(tmp_path, **updates) -> TrainGiftConfig:
    settings = dict(
        name="t",
        runs_dir=str(tmp_path),
        iterations=2,
        checkpoint_every=1,
        bc=BCSettings(episodes=40, epochs=1),
        ppo=PPOSettings(train_batch_size=200, minibatch_size=100, num_epochs=1),
        eval=EvalSettings(users=10),
    )
    settings.update(updates)
    return TrainGiftConfig(**settings)


def built_module(config: TrainGiftConfig) -> TRMPolicyModule:
    env = GiftRecommendationEnv(config.env.model_dump())
    spec = trm_module_spec(config)
    spec.observation_space, spec.action_space = env.observation_space, env.action_space
    return spec.build()


def test_masked_actions_get_no_probability(tmp_path):
    config = small_config(tmp_path)
    module = built_module(config)
    env = GiftRecommendationEnv(config.env.model_dump())
    observation, _ = env.reset(seed=3)
    env.step(1)  # a tool: now masked
    observation, *_ = env.step(env.num_actions - 1)  # recommend the last item: now masked
    batch = {Columns.OBS: {key: torch.from_numpy(value)[None] for key, value in observation.items()}}
    logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS][0]
    probabilities = torch.softmax(logits, -1)
    masked = observation["action_mask"] == 0
    assert masked.sum() == 2
    assert torch.all(probabilities[torch.from_numpy(masked)] == 0)
    assert torch.all(probabilities[torch.from_numpy(~masked)] > 0)


def test_policy_heads_read_the_trm_answer_state(tmp_path):
    module = built_module(small_config(tmp_path))
    assert isinstance(module.trm, TRMCore)
    env = GiftRecommendationEnv({})
    observation, _ = env.reset(seed=0)
    batch = {Columns.OBS: {key: torch.from_numpy(value)[None] for key, value in observation.items()}}
    before = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS].clone()
    with torch.no_grad():
        for parameter in module.trm.net.parameters():
            parameter.add_(0.5)
    after = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    assert not torch.allclose(before, after), "logits must depend on the TRM trunk"


def test_ppo_trains_checkpoints_and_resumes(ray_session, tmp_path):
    config = small_config(tmp_path)
    result = train_gift(config)
    assert result.checkpoint.name == "iter_0002"
    assert result.env_steps >= 2 * config.ppo.train_batch_size
    metrics = pd.read_parquet(result.run_dir / "metrics.parquet")
    assert list(metrics["iteration"]) == [1, 2]
    for column in ("episode_return_mean", "tool_calls", "tool_success_rate", "calls_inventory_check", "episode_len_mean"):
        assert np.isfinite(metrics[column]).all(), column
    assert (result.run_dir / "learning_curve.png").stat().st_size > 0
    assert list((result.run_dir / "tb").iterdir())
    assert json.loads((result.run_dir / "train_report.json").read_text())["iterations"] == 2

    module = load_policy_module(result.checkpoint)
    assert isinstance(module, TRMPolicyModule)
    saved = {key: value.clone() for key, value in module.state_dict().items()}

    resumed = train_gift(config.model_copy(update={"iterations": 3}), resume=True)
    metrics = pd.read_parquet(resumed.run_dir / "metrics.parquet")
    assert list(metrics["iteration"]) == [1, 2, 3], "resume continues, it does not restart"
    assert resumed.checkpoint.name == "iter_0003"
    assert metrics["env_steps"].iloc[-1] > metrics["env_steps"].iloc[1]
    moved = load_policy_module(resumed.checkpoint).state_dict()
    assert any(not torch.equal(saved[key], moved[key]) for key in saved), "PPO updated the restored weights"

    env = GiftRecommendationEnv({})
    observation, _ = env.reset(seed=1)
    assert env.action_mask()[module_policy(module)(env, observation)] == 1


def test_two_env_runners_are_used(ray_session, tmp_path):
    config = small_config(tmp_path, iterations=1, bc=BCSettings(enabled=False))
    from recursa.gift.ppo import build_ppo_config

    algo = build_ppo_config(config).build_algo()
    try:
        assert algo.env_runner_group.num_healthy_remote_workers() == 2
        assert isinstance(algo.get_module(), TRMPolicyModule)
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= config.ppo.train_batch_size
    finally:
        algo.stop()


def test_ppo_starts_from_saved_weights_on_the_learner_and_the_env_runners(ray_session, tmp_path):
    from recursa.gift.ppo import build_ppo_config

    config = small_config(tmp_path, bc=BCSettings(enabled=False))
    warm = built_module(config)
    with torch.no_grad():
        warm.global_head.weight.normal_(generator=torch.Generator().manual_seed(5))
    warm.save_to_path(tmp_path / "warm")
    expected = warm.global_head.weight.detach().numpy()

    algo = build_ppo_config(config, load_state_path=str(tmp_path / "warm")).build_algo()
    try:
        assert np.allclose(algo.get_module().global_head.weight.detach().numpy(), expected)
        on_runners = algo.env_runner_group.foreach_env_runner(
            lambda runner: runner.module.global_head.weight.detach().numpy(), local_env_runner=False)
        assert len(on_runners) == 2 and all(np.allclose(weights, expected) for weights in on_runners)
    finally:
        algo.stop()


def test_existing_run_needs_resume_flag(ray_session, tmp_path):
    from recursa.core.config import ConfigError

    config = small_config(tmp_path, iterations=1, bc=BCSettings(enabled=False))
    train_gift(config)
    with pytest.raises(ConfigError, match="--resume"):
        train_gift(config)


def test_the_held_out_curve_goes_to_metrics_tensorboard_and_wandb(ray_session, tmp_path, monkeypatch):
    from recursa.core.config import RunnerSettings
    from recursa.gift.config import WandbSettings

    monkeypatch.setenv("WANDB_MODE", "offline")  # no network
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = small_config(tmp_path, runners=RunnerSettings(num_env_runners=0),
                          eval=EvalSettings(users=10, every=1, users_during_training=12),
                          wandb=WandbSettings(project="recursa-tests"))
    result = train_gift(config)
    curve = result.metrics["eval_to_oracle"]
    assert len(curve) == 2 and curve.between(-1.0, 1.0).all() and result.metrics["eval_reward"].notna().all()
    offline_runs = list((result.run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and any(offline_runs[0].glob("*.wandb"))


def test_the_value_warm_up_fits_the_cloned_policys_own_returns(tmp_path):
    from recursa.gift.bc import behaviour_cloning

    config = small_config(tmp_path, bc=BCSettings(episodes=40, epochs=1, value_warmup_episodes=30))
    (tmp_path / "t").mkdir()
    _, metrics = behaviour_cloning(config, tmp_path / "t")
    assert metrics["value_warmup_transitions"] >= 30
    # least squares on the clone's returns: never worse on them than the expert-fitted head
    assert metrics["value_mse_after_warmup"] <= metrics["value_mse_before_warmup"] + 1e-6


def test_ppo_anchored_to_the_cloned_policy_logs_its_kl_and_decays_the_weight(ray_session, tmp_path):
    from recursa.core.config import RunnerSettings

    config = small_config(tmp_path, runners=RunnerSettings(num_env_runners=0), iterations=2,
                          ppo=PPOSettings(train_batch_size=200, minibatch_size=100, num_epochs=1,
                                          bc_kl_coeff=0.5, bc_kl_until=600))
    metrics = train_gift(config).metrics
    assert metrics["bc_kl"].between(0.0, 5.0).all()  # near the clone it was warm-started from
    weights = metrics["bc_kl_weight"].tolist()
    assert weights[0] < 0.5 and weights[1] < weights[0], weights  # decays with the env steps sampled


def test_an_entropy_target_tunes_the_entropy_weight_and_sharpens_a_spread_policy(ray_session, tmp_path):
    from recursa.core.config import RunnerSettings

    config = small_config(tmp_path, runners=RunnerSettings(num_env_runners=0), iterations=3,
                          bc=BCSettings(episodes=20, epochs=1),
                          ppo=PPOSettings(train_batch_size=200, minibatch_size=100, num_epochs=2, entropy_coeff=0.0,
                                          entropy_target=0.1, entropy_target_rate=2.0))
    metrics = train_gift(config).metrics
    alpha, entropy = metrics["entropy_alpha"].tolist(), metrics["entropy"].tolist()
    assert entropy[0] > 0.5, "a barely cloned policy starts spread"
    assert alpha[0] == 0.0 and 0.0 < alpha[1] < alpha[2], alpha  # above target: an entropy penalty that grows
    assert entropy[2] < entropy[0], entropy
