"""Reference policies for the gift environment: baselines and the behaviour-cloning expert.

Each policy is a callable `(env, observation) -> action`. Baselines see only what the agent
sees, except the oracle (full information, no tool cost) and the expert, which calls the
informative tools and then uses the true utilities; the expert's episodes seed behaviour cloning.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recursa.gift.env import FINISH, FIRST_TOOL, GiftRecommendationEnv

Policy = Callable[[GiftRecommendationEnv, dict], int]

# The expert's tools: stock and budget fit decide feasibility, reviews decide quality.
_EXPERT_TOOLS = ("inventory_check", "budget_optimizer", "review_analysis")
_TREND_LOVER = 0.3  # the expert asks for trends only when the user weighs them at least this much


def _best_item(env: GiftRecommendationEnv, scores: np.ndarray) -> int:
    scores = np.where(env.recommended, -np.inf, scores)
    return env.first_item + int(np.argmax(scores))


def _next_tool(env: GiftRecommendationEnv, tools: tuple[str, ...]) -> int | None:
    """The first of `tools` the environment offers and has not answered yet."""
    for name in tools:
        if name in env.tool_names and not env.tool_done[env.tool_names.index(name)]:
            return FIRST_TOOL + env.tool_names.index(name)
    return None


def random_policy(seed: int = 0) -> Policy:
    """Uniform over allowed actions."""
    rng = np.random.default_rng(seed)

    def act(env: GiftRecommendationEnv, observation: dict) -> int:
        return int(rng.choice(np.flatnonzero(observation["action_mask"])))

    return act


def no_tools_policy(env: GiftRecommendationEnv, observation: dict) -> int:
    """Recommend by visible interest match alone, never calling a tool."""
    return _best_item(env, env.match)


def all_tools_greedy_policy(env: GiftRecommendationEnv, observation: dict) -> int:
    """Call every tool once, then recommend feasible items by match x equal-weight taste."""
    tool = _next_tool(env, env.tool_names)
    if tool is not None and env.steps < env.config.max_steps - env.config.max_recommendations:
        return tool
    taste = (env.known("rating") * env.known("confidence") + env.known("trend") + env.known("value_score")) / 3
    feasible = env.known("in_stock") * env.known("within_budget")
    return _best_item(env, feasible * env.match * (0.3 + 0.7 * taste))


def oracle_policy(env: GiftRecommendationEnv, observation: dict) -> int:
    """Full information, no tool calls: recommend the items of highest true utility."""
    return _best_item(env, env.utilities)


def expert_policy(env: GiftRecommendationEnv, observation: dict) -> int:
    """Call the informative tools (trend only for trend lovers), then recommend by true utility."""
    tools = _EXPERT_TOOLS + (("trend_analysis",) if env.user["w_trend"] >= _TREND_LOVER else ())
    tool = _next_tool(env, tools)
    if tool is not None and env.steps < env.config.max_steps - env.config.max_recommendations:
        return tool
    if not np.any(np.where(env.recommended, 0.0, env.utilities) > 0):
        return FINISH
    return _best_item(env, env.utilities)


BASELINES: dict[str, Callable[[int], Policy]] = {
    "random": random_policy,
    "no_tools": lambda seed: no_tools_policy,
    "all_tools_greedy": lambda seed: all_tools_greedy_policy,
    "oracle": lambda seed: oracle_policy,
}
