"""What a gift training run reports beside RLlib's own metrics: a held-out curve and W&B."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.rllib.core.rl_module.rl_module import RLModule

from recursa.core.config import ConfigError
from recursa.gift.config import TrainGiftConfig
from recursa.gift.evaluate import evaluate_policy, module_policy
from recursa.gift.policies import oracle_policy


class HeldOutCurve:
    """The greedy policy on the first held-out users, and its share of the oracle's reward on
    the same users: whether training improves what evaluation measures, not only the sampled return."""

    def __init__(self, config: TrainGiftConfig):
        self.env, self.users, self.seed = config.env, config.eval.users_during_training, config.eval.seed
        self.oracle = evaluate_policy(self.env, oracle_policy, self.users, self.seed)["mean_reward"]

    def __call__(self, module: RLModule) -> dict[str, float]:
        reward = evaluate_policy(self.env, module_policy(module), self.users, self.seed)["mean_reward"]
        return {"eval_reward": reward, "eval_to_oracle": reward / self.oracle if self.oracle else 0.0}


def wandb_run(config: TrainGiftConfig, run_dir: Path) -> Any:
    """A Weights & Biases run through Ray's integration, or None when `wandb.project` is unset."""
    settings = config.wandb
    if settings.project is None:
        return None
    from ray.air.integrations.wandb import setup_wandb

    try:
        return setup_wandb(config.model_dump(mode="json"), rank_zero_only=False, project=settings.project,
                           group=settings.group, name=config.name, dir=str(run_dir))
    except ValueError as error:  # no API key while online
        raise ConfigError(f"wandb.project: {error}") from None
