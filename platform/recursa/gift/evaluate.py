"""Held-out evaluation of a gift policy beside the baselines, on the same users and candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ray.rllib.core.rl_module.rl_module import RLModule

from recursa.core.config import ConfigError
from recursa.gift.config import GiftEnvConfig
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.focus import action_layout
from recursa.gift.observation import TokenLayout
from recursa.gift.policies import BASELINES, Policy, carrying_state
from recursa.gift.policy_io import is_policy_dir, load_policy

# Where a PPO checkpoint keeps the policy's RLModule (RLlib's new-stack checkpoint layout).
MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"


def load_policy_module(checkpoint: str | Path) -> RLModule:
    """The TRM policy from a policy directory (safetensors), a run directory, or a PPO checkpoint."""
    path = Path(checkpoint).resolve()
    for policy_dir in (path, path / "policy"):
        if is_policy_dir(policy_dir):
            return load_policy(policy_dir)[0]
    if (path / "checkpoints" / "latest").is_dir():
        path = path / "checkpoints" / "latest"
    for candidate in (path / MODULE_SUBDIR, path):
        if (candidate / "class_and_ctor_args.pkl").exists():
            module = RLModule.from_checkpoint(candidate)
            module.eval()
            return module
    raise ConfigError(f"checkpoint: no policy found at {checkpoint}")


def module_policy(module: RLModule) -> Policy:
    """Greedy (argmax over allowed actions) policy from an RLModule. A module with across-steps
    recursion carries its state through each episode."""
    logits = carrying_state(module.step_logits)
    return lambda env, observation: int(logits(env, observation).argmax())


def check_policy_fits(module: RLModule, env_config: GiftEnvConfig) -> None:
    """A ConfigError unless the policy reads the tokens and acts with the tools of this
    environment (any number of candidates fits)."""
    layout, actions = TokenLayout.of_env(env_config), action_layout(env_config)
    if module.token_dim != layout.token_dim or (module.num_global_actions, module.actions_per_item) != (
            actions.num_global_actions, actions.actions_per_item):
        raise ConfigError(f"checkpoint: the policy reads tokens of {module.token_dim} features and has "
                          f"{module.num_global_actions} global and {module.actions_per_item} per-item actions; "
                          f"this environment writes {layout.token_dim} and has {actions.num_global_actions} and "
                          f"{actions.actions_per_item} (a different observation encoding or tool setting)")


def episode_returns(env_config: GiftEnvConfig, policy: Policy, users: int, seed: int) -> tuple[np.ndarray, dict]:
    """One episode per held-out user (episode i always sees the same user and candidates): the
    returns, and tool calls per episode with the calls by tool."""
    env = GiftRecommendationEnv(env_config.model_copy(update={"split": "test"}).model_dump())
    rewards, tool_calls = [], []
    usage = dict.fromkeys(env.tool_names, 0.0)
    for episode in range(users):
        observation, info = env.reset(seed=seed + episode, options={"user_index": episode})
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, info = env.step(policy(env, observation))
            total += reward
            done = terminated or truncated
        rewards.append(total)
        tool_calls.append(info["tool_calls"])
        for tool, calls in info["calls_by_tool"].items():
            usage[tool] += calls / users
    env.close()
    return np.asarray(rewards), {"tool_calls_per_episode": float(np.mean(tool_calls)), "tool_usage": usage}


def mean_with_ci95(values: np.ndarray) -> tuple[float, list[float]]:
    """The mean and its normal-approximation 95% interval."""
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), [float(values.mean() - half_width), float(values.mean() + half_width)]


def _summary(returns: np.ndarray, tools: dict) -> dict:
    mean, ci95 = mean_with_ci95(returns)
    return {"mean_reward": mean, "ci95": ci95, **tools}


def evaluate_policy(env_config: GiftEnvConfig, policy: Policy, users: int, seed: int) -> dict:
    """Mean held-out reward with its 95% interval, and tool use."""
    return _summary(*episode_returns(env_config, policy, users, seed))


def compare_policies(env_config: GiftEnvConfig, first: Policy, second: Policy, users: int, seed: int) -> dict:
    """Both policies on the same users and candidates, and the paired difference second - first
    (its interval is far narrower than the two separate ones: the users' spread cancels)."""
    a, tools_a = episode_returns(env_config, first, users, seed)
    b, tools_b = episode_returns(env_config, second, users, seed)
    difference, ci95 = mean_with_ci95(b - a)
    return {"first": _summary(a, tools_a), "second": _summary(b, tools_b),
            "difference": {"mean": difference, "ci95": ci95, "second_wins": float((b > a).mean()),
                           "second_loses": float((b < a).mean())}}


def evaluate_with_baselines(env_config: GiftEnvConfig, policy: Policy, users: int, seed: int) -> dict:
    """The policy and every baseline on the same held-out episodes, each normalised to the oracle."""
    results = {"policy": evaluate_policy(env_config, policy, users, seed)}
    results["baselines"] = {
        name: evaluate_policy(env_config, make(seed), users, seed) for name, make in BASELINES.items()
    }
    oracle = results["baselines"]["oracle"]["mean_reward"]
    for summary in [results["policy"], *results["baselines"].values()]:
        summary["normalized_to_oracle"] = summary["mean_reward"] / oracle if oracle else 0.0
    return results
