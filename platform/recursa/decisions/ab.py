"""The A/B comparison of model versions: the rewards of the decisions each version made (the
application's rows whose model version is that version, scored by `rewards calculate`), each
version's mean with its 95% t-interval, and each version against the control: the difference of
means with its 95% Welch interval and p-value (scipy's unequal-variance t-test)."""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

from recursa.decisions.registry import ModelRegistry
from recursa.decisions.rewards import stored_rewards
from recursa.decisions.router import ServedDecisions
from recursa.decisions.source import DecisionSource

CONFIDENCE = 0.95


def version_rewards(source: DecisionSource, agent_type: str, versions: list[str]) -> dict[str, list[float]]:
    """The stored rewards of each version's decisions."""
    stored = stored_rewards(source.engine, agent_type)
    rewards: dict[str, list[float]] = {version: [] for version in versions}
    for decision in source.read(agent_type):
        if decision.model_version in rewards and decision.id in stored:
            rewards[decision.model_version].append(stored[decision.id]["reward"])
    return rewards


def mean_interval(values: list[float]) -> dict[str, Any]:
    """n, mean and its 95% t-interval (None with fewer than two values)."""
    n = len(values)
    mean = sum(values) / n if n else None
    if n < 2:
        return {"n": n, "mean_reward": mean, "ci95": None}
    sem = stats.sem(values)
    if sem == 0:
        return {"n": n, "mean_reward": mean, "ci95": [mean, mean]}
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=sem)
    return {"n": n, "mean_reward": mean, "ci95": [float(low), float(high)]}


def compare(treatment: list[float], control: list[float]) -> dict[str, Any]:
    """Mean of `treatment` minus mean of `control`, its 95% Welch interval, the p-value, and whether
    the interval excludes 0."""
    diff = sum(treatment) / len(treatment) - sum(control) / len(control)
    if len(treatment) < 2 or len(control) < 2:
        return {"reward_diff": diff, "ci95": None, "p_value": None, "significant": False}
    result = stats.ttest_ind(treatment, control, equal_var=False)
    if math.isnan(result.pvalue):  # both samples constant
        same = diff == 0
        return {"reward_diff": diff, "ci95": [diff, diff], "p_value": 1.0 if same else 0.0, "significant": not same}
    low, high = result.confidence_interval(CONFIDENCE)
    return {"reward_diff": diff, "ci95": [float(low), float(high)], "p_value": float(result.pvalue),
            "significant": bool(low > 0 or high < 0)}


def ab_report(source: DecisionSource, agent_type: str, versions: list[str] | None = None,
              control: str | None = None) -> dict[str, Any]:
    """Every version's rewards and decisions served; each other version against `control` (default:
    the first version, by registration when `versions` is not given: the registered ones)."""
    agent_type = agent_type.upper()
    if versions is None:
        versions = [v.version_id for v in ModelRegistry(source.engine).list(agent_type)]
    if not versions:
        raise ValueError(f"no registered {agent_type} versions to compare (recursa registry add)")
    control = control or versions[0]
    if control not in versions:
        raise ValueError(f"control {control!r} is not among the versions compared: {', '.join(versions)}")
    rewards = version_rewards(source, agent_type, versions)
    served = ServedDecisions(source.engine).counts(agent_type)
    report: dict[str, Any] = {
        "agent_type": agent_type, "control": control,
        "versions": {v: {**mean_interval(rewards[v]), "served": served.get(v, 0)} for v in versions},
        "comparisons": {}, "served": sum(served.get(v, 0) for v in versions)}
    for version in versions:
        if version != control and rewards[version] and rewards[control]:
            report["comparisons"][version] = compare(rewards[version], rewards[control])
    return report
