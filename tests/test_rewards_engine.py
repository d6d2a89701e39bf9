"""The reward engine: weighted mean of applicable rewards, GRPO group normalisation, KTO labels."""

from __future__ import annotations

import pytest

from recursa.traces.engine import BUILTIN_REWARDS, RewardEngine
from recursa.traces.models import ExecutionTrace, TaskTrace, ToolCallTrace
from recursa.traces.rewards import TaskCompletionReward, ToolSuccessReward


def trace(successes: list[bool], completed: list[bool] | None = None, label: bool | None = None) -> ExecutionTrace:
    return ExecutionTrace(query="q", tool_calls=[ToolCallTrace(name="t", success=s) for s in successes],
                          tasks=[TaskTrace(description="d", status="completed" if c else "failed")
                                 for c in completed or []], label=label)


ENGINE = RewardEngine([ToolSuccessReward(weight=2.0), TaskCompletionReward(weight=1.0)])


def test_combined_is_the_weighted_mean():
    breakdown = ENGINE.score(trace([True, False], completed=[True]))
    assert breakdown["tool_success"].score == 0.5
    assert breakdown.combined == pytest.approx((2 * 0.5 + 1 * 1.0) / 3)


def test_rewards_that_do_not_apply_are_left_out():
    assert ENGINE.combined(trace([True, False])) == pytest.approx(0.5)  # no tasks: tool success alone
    assert ENGINE.combined(trace([])) == 0.0  # nothing applies


def test_binary_label_uses_the_hand_label_first():
    assert ENGINE.binary_label(trace([True])) is True
    assert ENGINE.binary_label(trace([False])) is False
    assert ENGINE.binary_label(trace([True], label=False)) is False
    assert ENGINE.binary_label(trace([True, False]), threshold=0.6) is False


def test_annotate_sets_rewards():
    traces = [trace([True]), trace([True, False])]
    ENGINE.annotate(traces)
    assert [t.reward for t in traces] == [1.0, 0.5]


def test_from_config_and_default():
    engine = RewardEngine.from_config({"tool_success": 3.0, "efficiency": {"weight": 0.2, "token_budget": 100}})
    assert [(r.name, r.weight) for r in engine.rewards] == [("tool_success", 3.0), ("efficiency", 0.2)]
    assert engine.rewards[1].token_budget == 100
    with pytest.raises(ValueError, match="unknown reward 'speed'"):
        RewardEngine.from_config({"speed": 1.0})
    default = RewardEngine.default()
    assert {r.name: r.weight for r in default.rewards} == {
        "code_execution": 2.0, "syntax_validation": 1.0, "tool_success": 2.0, "task_completion": 1.5,
        "efficiency": 0.5, "format_compliance": 1.0, "decision_outcome": 2.0}
    assert set(BUILTIN_REWARDS) == {r.name for r in default.rewards}
