"""RLlib PPO for the gift environment with the TRM policy: env registration, callbacks, config."""

from __future__ import annotations

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from recursa.gift.config import TrainGiftConfig
from recursa.gift.env import GIFT_ENV_ID, NUM_GLOBAL_ACTIONS, GiftRecommendationEnv
from recursa.gift.module import TRMPolicyModule
from recursa.gift.tools import GIFT_TOOL_NAMES

# RLlib's registry (as well as gymnasium's) so env runners get an EnvContext with their indices.
register_env(GIFT_ENV_ID, lambda env_config: GiftRecommendationEnv(env_config))
_WINDOW = 100  # episodes averaged per metric, as RLlib does for episode_return_mean


class GiftMetricsCallbacks(RLlibCallback):
    """Logs reward components and tool use of every finished episode."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        info = episode.get_infos(-1)
        for key in ("utility", "tool_cost", "tool_calls", "tool_failures"):
            metrics_logger.log_value(("gift", key), float(info[key]), window=_WINDOW)
        for tool in GIFT_TOOL_NAMES:
            metrics_logger.log_value(("gift", "calls", tool), float(info["calls_by_tool"][tool]), window=_WINDOW)
        if info["tool_calls"]:
            success = 1.0 - info["tool_failures"] / info["tool_calls"]
            metrics_logger.log_value(("gift", "tool_success_rate"), success, window=_WINDOW)


def trm_model_config(config: TrainGiftConfig) -> dict:
    """The TRM policy's model_config (what TRMPolicyModule is built from)."""
    return {**config.model.model_dump(), "num_global_actions": NUM_GLOBAL_ACTIONS}


def trm_module_spec(config: TrainGiftConfig, load_state_path: str | None = None) -> RLModuleSpec:
    """The RLModuleSpec of the TRM policy; `load_state_path` starts it from saved weights."""
    return RLModuleSpec(module_class=TRMPolicyModule, model_config=trm_model_config(config),
                        load_state_path=load_state_path)


def build_ppo_config(config: TrainGiftConfig, load_state_path: str | None = None) -> PPOConfig:
    """PPO on RLlib's new API stack, rolling out on `config.runners.num_env_runners` env runners.

    An env runner that dies is replaced and training goes on.
    """
    ppo = config.ppo
    return (
        PPOConfig()
        .environment(GIFT_ENV_ID, env_config=config.env.model_dump())
        .env_runners(
            num_env_runners=config.runners.num_env_runners,
            num_envs_per_env_runner=config.runners.num_envs_per_env_runner,
            num_cpus_per_env_runner=config.runners.num_cpus_per_env_runner,
            rollout_fragment_length="auto",
        )
        .fault_tolerance(restart_failed_env_runners=True)
        .learners(num_learners=0)
        .training(
            lr=ppo.lr,
            gamma=ppo.gamma,
            lambda_=ppo.gae_lambda,
            clip_param=ppo.clip_param,
            entropy_coeff=ppo.entropy_coeff,
            vf_loss_coeff=ppo.vf_loss_coeff,
            grad_clip=ppo.grad_clip,
            train_batch_size_per_learner=ppo.train_batch_size,
            minibatch_size=ppo.minibatch_size,
            num_epochs=ppo.num_epochs,
        )
        # model_config at the algorithm level (not in the spec), where Tune's search spaces can reach it.
        .rl_module(rl_module_spec=RLModuleSpec(module_class=TRMPolicyModule, load_state_path=load_state_path),
                   model_config=trm_model_config(config))
        .callbacks(GiftMetricsCallbacks)
        .debugging(seed=config.seed)
    )
