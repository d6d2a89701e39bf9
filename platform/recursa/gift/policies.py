"""Reference policies for the gift environment: baselines and the behaviour-cloning expert.

Each policy is a callable `(env, observation) -> action`. Baselines see only what the agent
sees, except the oracle (full information, no tool cost) and the expert, which calls the
informative tools and then uses the true utilities; the expert's episodes seed behaviour cloning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from recursa.gift.env import FINISH, FIRST_TOOL, GiftRecommendationEnv

Policy = Callable[[GiftRecommendationEnv, dict], int]
T = TypeVar("T")


def carrying_state(step: Callable[[dict, Any], tuple[T, Any]]) -> Callable[[GiftRecommendationEnv, dict], T]:
    """`step(observation, state) -> (output, state)` called on each observation of an env's episodes
    with the state its previous call in the same episode returned (None when the env is at step 0):
    how a policy with recurrent state is played by (env, observation) callers."""
    state = None

    def call(env: GiftRecommendationEnv, observation: dict) -> T:
        nonlocal state
        output, state = step(observation, None if env.steps == 0 else state)
        return output

    return call

# The expert's tools: stock and budget fit decide feasibility, reviews decide quality.
_EXPERT_TOOLS = ("inventory_check", "budget_optimizer", "review_analysis")
_TREND_LOVER = 0.3  # the expert asks for trends only when the user weighs them at least this much


def _best_item(env: GiftRecommendationEnv, scores: np.ndarray) -> int:
    scores = np.where(env.recommended, -np.inf, scores)
    return env.recommend_action(int(np.argmax(scores)))


def _next_tool(env: GiftRecommendationEnv, tools: tuple[str, ...]) -> int | None:
    """The first of `tools` the environment offers and has not answered yet."""
    for name in tools:
        if name in env.tool_names and not env.tool_done[env.tool_names.index(name)]:
            return FIRST_TOOL + env.tool_names.index(name)
    return None


def _calls_left(env: GiftRecommendationEnv) -> bool:
    """Whether the tool budget and the steps (keeping one per recommendation) allow another call."""
    budget = env.config.tool_budget
    within_budget = budget is None or env.stats["tool_calls"] < budget
    return within_budget and env.steps < env.config.max_steps - env.config.max_recommendations


def _next_item_call(env: GiftRecommendationEnv, items, tools: tuple[str, ...]) -> int | None:
    """With per-item tools: the first unanswered call of `tools` on `items`, in that order, item by
    item, while calls are left."""
    if not _calls_left(env):
        return None
    offered = [env.tool_names.index(name) for name in tools if name in env.tool_names]
    for item in items:
        for tool in offered:
            if not env.answered[item, tool]:
                return env.tool_action(tool, item)
    return None


def _by_match(env: GiftRecommendationEnv) -> np.ndarray:
    """Candidates by visible interest match, best first (ties in candidate order)."""
    return np.argsort(-env.match, kind="stable")


def _feasible_estimate(env: GiftRecommendationEnv, prior: float) -> np.ndarray:
    """Per candidate, in stock and within budget as far as revealed (`prior` for what is not)."""
    estimate = np.ones(len(env.recommended))
    for tool, fields in (("inventory_check", ("in_stock",)), ("budget_optimizer", ("within_budget",))):
        if tool in env.tool_names:
            revealed = env.answered[:, env.tool_names.index(tool)]
            estimate *= np.where(revealed, np.prod([env.known(f) for f in fields], axis=0), prior)
    return estimate


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
    """Call every tool once, then recommend feasible items by match x equal-weight taste (with
    per-item tools: every tool on the best-matching candidates the budget reaches)."""
    if env.config.per_item_tools:
        return _top_match_greedy(env)
    tool = _next_tool(env, env.tool_names)
    if tool is not None and env.steps < env.config.max_steps - env.config.max_recommendations:
        return tool
    taste = (env.known("rating") * env.known("confidence") + env.known("trend") + env.known("value_score")) / 3
    feasible = env.known("in_stock") * env.known("within_budget")
    return _best_item(env, feasible * env.match * (0.3 + 0.7 * taste))


def _top_match_greedy(env: GiftRecommendationEnv) -> int:
    """Inspect the candidates best by interest match with every tool, then recommend by match x
    equal-weight taste times the revealed (else even) chance of being feasible."""
    call = _next_item_call(env, _by_match(env), env.tool_names)
    if call is not None:
        return call
    taste = (env.known("rating") * env.known("confidence") + env.known("trend") + env.known("value_score")) / 3
    return _best_item(env, _feasible_estimate(env, prior=0.5) * env.match * (0.3 + 0.7 * taste))


def oracle_policy(env: GiftRecommendationEnv, observation: dict) -> int:
    """Full information, no tool calls: recommend the items of highest true utility."""
    return _best_item(env, env.utilities)


def expert_policy(env: GiftRecommendationEnv, observation: dict) -> int:
    """Call the informative tools (trend only for trend lovers), then recommend by true utility."""
    if env.config.per_item_tools:
        return _focus_expert(env)
    tools = _EXPERT_TOOLS + (("trend_analysis",) if env.user["w_trend"] >= _TREND_LOVER else ())
    tool = _next_tool(env, tools)
    if tool is not None and env.steps < env.config.max_steps - env.config.max_recommendations:
        return tool
    if not np.any(np.where(env.recommended, 0.0, env.utilities) > 0):
        return FINISH
    return _best_item(env, env.utilities)


def _focus_expert(env: GiftRecommendationEnv) -> int:
    """With per-item tools: inspect candidates by interest match, checking stock, then budget fit,
    then reviews and trend, and dropping a candidate once it proves infeasible; then recommend the
    verified-feasible candidates by true utility, then the unverified ones by match. Which items it
    inspects and in what order depends only on what the agent sees."""
    feasible = _feasible_estimate(env, prior=0.5)
    candidates = [item for item in _by_match(env) if feasible[item] > 0 and not env.recommended[item]]
    for item in candidates:
        call = _next_item_call(env, [item], _FOCUS_EXPERT_TOOLS)
        if call is not None:
            return call
    if not candidates:
        return FINISH
    verified = feasible == 1.0
    return _best_item(env, np.where(feasible > 0, np.where(verified, 2.0 + env.utilities, env.match), -1.0))


_FOCUS_EXPERT_TOOLS = ("inventory_check", "budget_optimizer", "review_analysis", "trend_analysis")


BASELINES: dict[str, Callable[[int], Policy]] = {
    "random": random_policy,
    "no_tools": lambda seed: no_tools_policy,
    "all_tools_greedy": lambda seed: all_tools_greedy_policy,
    "oracle": lambda seed: oracle_policy,
}
