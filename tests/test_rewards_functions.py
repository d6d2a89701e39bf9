"""Reward functions on crafted traces: what each one rewards, and when it does not apply."""

from __future__ import annotations

import pytest

from recursa.traces.models import ExecutionTrace, TaskTrace, ToolCallTrace
from recursa.traces.rewards import (
    ACTION_LINE,
    CodeExecutionReward,
    DecisionOutcomeReward,
    EfficiencyReward,
    FormatComplianceReward,
    SyntaxValidationReward,
    TaskCompletionReward,
    ToolSuccessReward,
)


def trace(response: str = "", **fields) -> ExecutionTrace:
    return ExecutionTrace(query="q", final_response=response, **fields)


def calls(*outcomes: bool) -> list[ToolCallTrace]:
    return [ToolCallTrace(name=f"tool{i}", success=ok) for i, ok in enumerate(outcomes)]


ADD = "```python\ndef add(a, b):\n    return a + b\n```"


def test_code_execution_runs_code_with_its_tests():
    reward = CodeExecutionReward(timeout_s=5)
    good = reward.score(trace(ADD, metadata={"test_code": "assert add(2, 3) == 5"}))
    bad = reward.score(trace(ADD, metadata={"test_code": "assert add(2, 3) == 6"}))
    assert (good.score, good.passed) == (1.0, True)
    assert (bad.score, bad.passed) == (0.0, False) and "AssertionError" in bad.details["reason"]
    assert not reward.score(trace("No code here, just words.")).applicable


def test_syntax_validation():
    reward = SyntaxValidationReward()
    assert reward.score(trace(ADD)).score == 1.0
    broken = reward.score(trace(ADD + "\n```python\ndef f(:\n```"))
    assert broken.score == 0.0 and broken.details["errors"]
    assert not reward.score(trace("plain text")).applicable


def test_tool_success_is_the_share_of_successful_calls():
    reward = ToolSuccessReward()
    assert reward.score(trace(tool_calls=calls(True, False, True, True))).score == 0.75
    assert reward.score(trace(tool_calls=calls(True, True))).passed
    assert reward.score(trace(tool_calls=calls(False))).details["failed"] == ["tool0"]
    assert not reward.score(trace()).applicable


def test_task_completion():
    tasks = [TaskTrace(description="a", status="completed"), TaskTrace(description="b", status="failed")]
    result = TaskCompletionReward().score(trace(tasks=tasks))
    assert (result.score, result.passed) == (0.5, False)
    assert not TaskCompletionReward().score(trace()).applicable


def test_efficiency_is_full_within_budget_and_falls_beyond():
    reward = EfficiencyReward(token_budget=1000, tool_call_budget=4)
    assert reward.score(trace(tokens_in=400, tokens_out=100, tool_calls=calls(True))).score == 1.0
    over = reward.score(trace(tokens_in=1500, tokens_out=500, tool_calls=calls(*[True] * 8)))
    assert over.score == pytest.approx(0.5)  # half of each budget's worth
    assert reward.score(trace(tokens_in=10**6)).score > 0  # soft: never below zero, never a cliff


def test_format_compliance():
    reward = FormatComplianceReward(required=[ACTION_LINE], max_chars=200)
    assert reward.score(trace("Thought: look it up\nAction: search(query='scarf')")).passed
    missing = reward.score(trace("I would search for a scarf."))
    assert missing.score == 0.0 and "missing" in missing.details["violations"][0]
    assert not reward.score(trace("Action: search(q=1)\n<tool_call>x</tool_call>")).passed
    assert not reward.score(trace("Action: search(q=1)\n" + "x" * 300)).passed
    assert not FormatComplianceReward().score(trace("   ")).passed


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="weight"):
        ToolSuccessReward(weight=-1)


def test_a_decision_is_rewarded_by_its_agent_types_component_weights():
    reward = DecisionOutcomeReward()
    accepted_then_moved = {"immediate": 1.0, "delayed": -1.0, "strategic": 0.0}
    filer = reward.score(trace(agent_type="FILER", metadata={"components": accepted_then_moved}))
    prioritizer = reward.score(trace(agent_type="prioritizer", metadata={"components": accepted_then_moved}))
    assert filer.score == pytest.approx((0.5 - 0.3 + 1) / 2)
    assert filer.score > 0.5 > prioritizer.score
    assert filer.details["used"] == accepted_then_moved


@pytest.mark.parametrize("fields, reason", [
    ({}, "no decision components"),
    ({"agent_type": "coder", "metadata": {"components": {"immediate": 1.0}}}, "agent type"),
    ({"agent_type": "FILER", "metadata": {"components": {"immediate": 3.0}}}, "invalid components"),
    ({"agent_type": "FILER", "metadata": {"components": {"delayed": None}}}, "no component observed"),
])
def test_a_decision_reward_does_not_apply_without_observed_components(fields, reason):
    result = DecisionOutcomeReward().score(trace(**fields))
    assert result.score is None and reason in result.details["reason"]
