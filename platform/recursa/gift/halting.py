"""Halting at inference: the TRM's Q head learns when the policy's answer has settled.

The target of cycle t is "the greedy action after cycle t is the one after all T cycles". It needs
no labels, so it is fitted after training, on the observations the final greedy policy meets on
training users, with the trunk frozen (only the Q head's weights move). At inference a row stops
recursing once sigmoid(q) reaches a threshold (`TRMPolicyModule.halting_logits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from ray.rllib.core.columns import Columns

from recursa.core.config import ConfigError
from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.evaluate import evaluate_policy
from recursa.gift.module import TRMPolicyModule, observation_batch
from recursa.gift.policies import Policy

FIT_STEPS = 300


def settled_targets(module: TRMPolicyModule, observations: torch.Tensor, action_mask: torch.Tensor,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The answer states y[:, 0] after each cycle but the last [(T-1)*B, H], and whether the greedy
    action after that cycle already equals the final one [(T-1)*B]."""
    states, actions, carry = [], [], None
    with torch.no_grad():
        for _ in range(module.trm_config.T):
            logits, _, carry = module.one_cycle(observations, action_mask, carry)
            states.append(carry[0][:, 0])
            actions.append(logits.argmax(-1))
    final = actions[-1]
    return torch.cat(states[:-1]), torch.cat([a == final for a in actions[:-1]]).float()


def fit_halting(module: TRMPolicyModule, observations: torch.Tensor, action_mask: torch.Tensor,
                seed: int = 0) -> dict[str, float]:
    """Fit the Q head to `settled_targets` (logistic regression, full batch); the rest stays frozen."""
    if module.trm_config.T < 2:
        return {"halting_states": 0, "halting_settled_share": 1.0, "halting_accuracy": 1.0}
    states, targets = settled_targets(module, observations, action_mask)
    head = module.trm.q_head
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(FIT_STEPS):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(states).squeeze(-1), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = head(states).squeeze(-1) > 0
    return {"halting_states": len(targets), "halting_settled_share": float(targets.mean()),
            "halting_accuracy": float((predicted == targets.bool()).float().mean())}


def observations_met(env_config: GiftEnvConfig, policy: Policy, episodes: int, seed: int,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every observation `policy` meets in `episodes` episodes on the training users (no held-out
    user is seen), stacked: all have the config's number of candidates."""
    env = GiftRecommendationEnv(env_config.model_copy(update={"split": "train"}).model_dump())
    observations, masks = [], []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            observations.append(observation["observations"])
            masks.append(observation["action_mask"])
            observation, _, terminated, truncated, _ = env.step(policy(env, observation))
            done = terminated or truncated
    env.close()
    return torch.from_numpy(np.stack(observations)), torch.from_numpy(np.stack(masks))


@dataclass
class HaltingPolicy:
    """A greedy evaluation policy that stops recursing at `threshold`, counting the cycles it ran."""

    module: TRMPolicyModule
    threshold: float
    cycles: list[int] = field(default_factory=list)

    def __call__(self, env: GiftRecommendationEnv, observation: dict) -> int:
        batch = observation_batch(observation)[Columns.OBS]
        logits, cycles = self.module.halting_logits(batch["observations"], batch["action_mask"], self.threshold)
        self.cycles.append(int(cycles[0]))
        return int(logits[0].argmax())

    @property
    def mean_cycles(self) -> float:
        """Cycles per decision so far."""
        return float(np.mean(self.cycles)) if self.cycles else float("nan")


def halting_summary(full_depth_reward: float, reward: float, cycles_per_decision: float, max_cycles: int,
                    threshold: float) -> dict[str, float]:
    """Reward kept and cycles saved by halting, against running every cycle on the same users."""
    return {"threshold": threshold, "mean_reward": reward, "full_depth_reward": full_depth_reward,
            "reward_kept": reward / full_depth_reward if full_depth_reward else float("nan"),
            "cycles_per_decision": cycles_per_decision, "max_cycles": max_cycles,
            "cycles_saved": 1.0 - cycles_per_decision / max_cycles}


def evaluate_halting(env_config: GiftEnvConfig, module: TRMPolicyModule, threshold: float, users: int, seed: int,
                     full_depth_reward: float) -> dict[str, float]:
    """The module with halting on the held-out users, against `full_depth_reward` on the same users."""
    if module.recursion != "per_step":
        raise ConfigError("halting-threshold: halting stops a step's recursion from the learned start; "
                          "this policy carries its recursion across steps")
    policy = HaltingPolicy(module, threshold)
    reward = evaluate_policy(env_config, policy, users, seed)["mean_reward"]
    return halting_summary(full_depth_reward, reward, policy.mean_cycles, module.trm_config.T, threshold)
