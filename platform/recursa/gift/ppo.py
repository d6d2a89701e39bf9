"""RLlib PPO for the gift environment with the TRM policy: env registration, callbacks, config."""

from __future__ import annotations

from functools import partial

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from recursa.gift.config import TrainGiftConfig
from recursa.gift.env import GIFT_ENV_ID, GiftRecommendationEnv
from recursa.gift.focus import action_layout
from recursa.gift.module import TRMPolicyModule
from recursa.gift.ppo_learner import (
    ANCHOR_EMA,
    ANCHOR_PATH,
    ENTROPY_TARGET,
    ENTROPY_TARGET_RATE,
    KL_COEFF,
    KL_UNTIL,
    GiftPPOLearner,
)

# RLlib's registry (as well as gymnasium's) so env runners get an EnvContext with their indices.
register_env(GIFT_ENV_ID, lambda env_config: GiftRecommendationEnv(env_config))
_WINDOW = 100  # episodes averaged per metric, as RLlib does for episode_return_mean


class GiftMetricsCallbacks(RLlibCallback):
    """Logs reward components and tool use of every finished episode."""

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        info = episode.get_infos(-1)
        for key in ("utility", "tool_cost", "tool_calls", "tool_failures"):
            metrics_logger.log_value(("gift", key), float(info[key]), window=_WINDOW)
        for tool, calls in info["calls_by_tool"].items():
            metrics_logger.log_value(("gift", "calls", tool), float(calls), window=_WINDOW)
        if info["tool_calls"]:
            success = 1.0 - info["tool_failures"] / info["tool_calls"]
            metrics_logger.log_value(("gift", "tool_success_rate"), success, window=_WINDOW)


def rllib_schedule(value: float | list | None) -> float | list | None:
    """A config value or schedule as RLlib takes it (a schedule as a list of [env_steps, value] lists)."""
    return [list(point) for point in value] if isinstance(value, list) else value


def trm_model_config(config: TrainGiftConfig) -> dict:
    """The TRM policy's model_config (what TRMPolicyModule is built from). With across-steps
    recursion an episode (at most env.max_steps) is one of RLlib's training sequences."""
    actions = action_layout(config.env)
    model_config = {**config.model.model_dump(), "num_global_actions": actions.num_global_actions,
                    "actions_per_item": actions.actions_per_item, "recursion": config.recursion}
    if config.recursion == "across_steps":
        model_config["max_seq_len"] = config.env.max_steps
    return model_config


def trm_module_spec(config: TrainGiftConfig) -> RLModuleSpec:
    """The RLModuleSpec of the TRM policy."""
    return RLModuleSpec(module_class=TRMPolicyModule, model_config=trm_model_config(config))


def load_policy_weights(path: str, algorithm: Algorithm, **kwargs) -> None:
    """`on_algorithm_init`: the policy's weights from a module saved with `save_to_path` (the BC warm
    start) into the learner, then to every env runner before the first rollout.

    `RLModuleSpec(load_state_path=...)` would go through the deprecated `LearnerGroup.load_module_state`,
    and `Algorithm.restore_from_path` syncs the env runners without waiting: a runner still busy with
    the set-up's own sync drops the update and samples its first batch from random weights. So the
    weights go out with a blocking call.
    """
    learner_group = algorithm.learner_group
    learner_group.restore_from_path(path, component=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{DEFAULT_MODULE_ID}")
    weights = learner_group.get_state(components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}",
                                      inference_only=True)[COMPONENT_LEARNER]
    algorithm.env_runner_group.foreach_env_runner(lambda runner: runner.set_state(weights))


def build_ppo_config(config: TrainGiftConfig, load_state_path: str | None = None) -> PPOConfig:
    """PPO on RLlib's new API stack, rolling out on `config.runners.num_env_runners` env runners;
    the policy starts from the module saved at `load_state_path` when given.

    An env runner that dies is replaced and training goes on.
    """
    ppo = config.ppo
    warm_start = {"on_algorithm_init": partial(load_policy_weights, load_state_path)} if load_state_path else {}
    learner = {"learner_class": GiftPPOLearner, "learner_config_dict": {
        ENTROPY_TARGET: rllib_schedule(ppo.entropy_target), ENTROPY_TARGET_RATE: ppo.entropy_target_rate,
        ANCHOR_PATH: load_state_path if ppo.bc_kl_coeff > 0 else None, KL_COEFF: ppo.bc_kl_coeff,
        KL_UNTIL: ppo.bc_kl_until, ANCHOR_EMA: ppo.bc_kl_ema}}
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
        .learners(num_learners=0, **learner)
        .training(
            lr=ppo.lr,
            gamma=ppo.gamma,
            lambda_=ppo.gae_lambda,
            clip_param=ppo.clip_param,
            entropy_coeff=rllib_schedule(ppo.entropy_coeff),
            vf_loss_coeff=ppo.vf_loss_coeff,
            grad_clip=ppo.grad_clip,
            train_batch_size_per_learner=ppo.train_batch_size,
            minibatch_size=ppo.minibatch_size,
            num_epochs=ppo.num_epochs,
        )
        # model_config at the algorithm level (not in the spec), where Tune's search spaces can reach it.
        .rl_module(rl_module_spec=RLModuleSpec(module_class=TRMPolicyModule), model_config=trm_model_config(config))
        .callbacks(GiftMetricsCallbacks, **warm_start)
        .debugging(seed=config.seed)
    )
