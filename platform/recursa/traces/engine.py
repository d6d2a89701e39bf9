"""The reward engine: weighted combination of rewards, binary labels (KTO); group normalisation (GRPO).

The combined reward of a trace is the weighted mean of the rewards that apply to it; rewards that do
not apply (score None) are left out of both sums. When none applies the combined reward is 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recursa.traces.learned import LearnedReward
from recursa.traces.models import ExecutionTrace
from recursa.traces.rewards import (
    CodeExecutionReward,
    DecisionOutcomeReward,
    EfficiencyReward,
    FormatComplianceReward,
    Reward,
    RewardResult,
    SyntaxValidationReward,
    TaskCompletionReward,
    ToolSuccessReward,
)

BUILTIN_REWARDS: dict[str, type[Reward]] = {cls.name: cls for cls in (
    CodeExecutionReward, SyntaxValidationReward, ToolSuccessReward, TaskCompletionReward,
    EfficiencyReward, FormatComplianceReward, DecisionOutcomeReward)}


def group_normalise(rewards: Sequence[float], eps: float = 1e-6) -> list[float]:
    """(r - mean) / (std + eps) within one group; a group of equal rewards gives zeros."""
    count = len(rewards)
    mean = sum(rewards) / count
    std = (sum((r - mean) ** 2 for r in rewards) / count) ** 0.5
    return [(r - mean) / (std + eps) if std > eps else 0.0 for r in rewards]


@dataclass(frozen=True)
class RewardBreakdown:
    """Every reward's result for one trace, and their weighted combination in [0, 1]."""

    results: list[RewardResult]
    weights: dict[str, float]
    combined: float

    def __getitem__(self, name: str) -> RewardResult:
        return next(result for result in self.results if result.name == name)


class RewardEngine:
    """Scores traces with a set of weighted rewards."""

    def __init__(self, rewards: Iterable[Reward]):
        self.rewards = list(rewards)
        names = [reward.name for reward in self.rewards]
        if len(set(names)) != len(names):
            raise ValueError(f"reward names must be unique, got {names}")

    @classmethod
    def default(cls, learned: LearnedReward | None = None) -> RewardEngine:
        """All built-in rewards at their default weights, plus `learned` when given."""
        rewards: list[Reward] = [reward_cls() for reward_cls in BUILTIN_REWARDS.values()]
        return cls(rewards + ([learned] if learned is not None else []))

    @classmethod
    def from_config(cls, config: Mapping[str, float | Mapping[str, Any]]) -> RewardEngine:
        """From `{name: weight}` or `{name: {weight: ..., other constructor options}}`, as in YAML.

        Names are those of `BUILTIN_REWARDS`; a learned reward is added with `LearnedReward.load`.
        """
        rewards = []
        for name, value in config.items():
            if name not in BUILTIN_REWARDS:
                raise ValueError(f"unknown reward {name!r}; known: {', '.join(BUILTIN_REWARDS)}")
            options = dict(value) if isinstance(value, Mapping) else {"weight": value}
            rewards.append(BUILTIN_REWARDS[name](**options))
        return cls(rewards)

    def score(self, trace: ExecutionTrace) -> RewardBreakdown:
        """Each reward's result and the weighted mean of those that apply."""
        results = [reward.score(trace) for reward in self.rewards]
        weights = {reward.name: reward.weight for reward in self.rewards}
        applicable = [(result.name, result.score) for result in results if result.score is not None]
        total_weight = sum(weights[name] for name, _ in applicable)
        combined = (sum(weights[name] * score for name, score in applicable) / total_weight
                    if total_weight > 0 else 0.0)
        return RewardBreakdown(results, weights, combined)

    def combined(self, trace: ExecutionTrace) -> float:
        """The weighted reward of `trace`, in [0, 1]."""
        return self.score(trace).combined

    def binary_label(self, trace: ExecutionTrace, threshold: float = 0.5) -> bool:
        """Good or bad, for KTO: the hand label when there is one, else combined reward >= threshold."""
        if trace.label is not None:
            return trace.label
        return self.combined(trace) >= threshold

    def annotate(self, traces: Iterable[ExecutionTrace]) -> None:
        """Set `trace.reward` to the combined reward of each trace."""
        for trace in traces:
            trace.reward = self.combined(trace)
