"""Reward functions over execution traces: each looks at what the agent actually did.

A reward scores one `ExecutionTrace` in [0, 1]. A reward that has nothing to judge (no code in the
response, no tool call, no task) returns a result with `score=None`: it does not apply, and the
engine leaves it out of the weighted mean instead of counting it as a failure. Default weights
follow the reward table the design started from (code execution and tool success count most).
"""

from __future__ import annotations

import ast
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from recursa.traces.components import PRESETS, ComponentRewardCalculator, ComponentScores
from recursa.traces.models import ExecutionTrace
from recursa.traces.sandbox import extract_python, python_blocks, run_python

ACTION_LINE = r"^Action: [\w.]+\(.*\)\s*$"  # e.g. "Action: search(query='red scarf')"
MARKUP = r"</?[A-Za-z][\w-]*(\s[^<>]*)?/?>"  # XML or HTML tags


@dataclass(frozen=True)
class RewardResult:
    """One reward's verdict: a score in [0, 1] (None: does not apply), pass/fail when binary, and why."""

    name: str
    score: float | None
    passed: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def applicable(self) -> bool:
        return self.score is not None


class Reward(ABC):
    """A named, weighted score of a trace. Subclasses set `name` and `default_weight`."""

    name: ClassVar[str]
    default_weight: ClassVar[float] = 1.0

    def __init__(self, weight: float | None = None):
        self.weight = self.default_weight if weight is None else weight
        if self.weight < 0:
            raise ValueError(f"{self.name}: weight must be >= 0, got {self.weight}")

    @abstractmethod
    def score(self, trace: ExecutionTrace) -> RewardResult:
        """Score `trace`; `score=None` in the result when this reward does not apply to it."""

    def _result(self, score: float | None, passed: bool | None = None, **details: Any) -> RewardResult:
        return RewardResult(self.name, score, passed, details)


class CodeExecutionReward(Reward):
    """1 when the response's Python runs to completion in the sandbox, 0 otherwise.

    Test code in `trace.metadata["test_code"]` (asserts, say) is appended to the extracted code, so
    the code passes only when its tests do. Does not apply when the response holds no Python.
    """

    name = "code_execution"
    default_weight = 2.0

    def __init__(self, weight: float | None = None, *, timeout_s: float = 5.0, memory_mb: int = 512):
        super().__init__(weight)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb

    def score(self, trace: ExecutionTrace) -> RewardResult:
        code = extract_python(trace.final_response)
        if code is None:
            return self._result(None, reason="no Python code in the response")
        tests = trace.metadata.get("test_code", "")
        run = run_python(f"{code}\n\n{tests}" if tests else code, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        return self._result(float(run.passed), run.passed, reason=run.reason, stderr=run.stderr[-2000:])


class SyntaxValidationReward(Reward):
    """1 when every ```python block in the response parses. Does not apply without such blocks."""

    name = "syntax_validation"
    default_weight = 1.0

    def score(self, trace: ExecutionTrace) -> RewardResult:
        blocks = python_blocks(trace.final_response)
        if not blocks:
            return self._result(None, reason="no fenced Python blocks")
        errors = []
        for index, block in enumerate(blocks):
            try:
                ast.parse(block)
            except SyntaxError as error:
                errors.append(f"block {index}, line {error.lineno}: {error.msg}")
        return self._result(float(not errors), not errors, errors=errors)


class ToolSuccessReward(Reward):
    """The share of tool calls that succeeded; passed when all did. Does not apply without calls."""

    name = "tool_success"
    default_weight = 2.0

    def score(self, trace: ExecutionTrace) -> RewardResult:
        rate = trace.tool_success_rate
        if rate is None:
            return self._result(None, reason="no tool calls")
        failed = [call.name for call in trace.tool_calls if not call.success]
        return self._result(rate, rate == 1.0, failed=failed)


class TaskCompletionReward(Reward):
    """The share of the agent's sub-tasks that completed; passed when all did. Needs tasks."""

    name = "task_completion"
    default_weight = 1.5

    def score(self, trace: ExecutionTrace) -> RewardResult:
        if not trace.tasks:
            return self._result(None, reason="no tasks")
        completed = sum(task.status == "completed" for task in trace.tasks)
        return self._result(completed / len(trace.tasks), completed == len(trace.tasks),
                            completed=completed, total=len(trace.tasks))


class EfficiencyReward(Reward):
    """Soft: 1 within the token and tool-call budgets, falling as budget/used beyond them (mean of both)."""

    name = "efficiency"
    default_weight = 0.5

    def __init__(self, weight: float | None = None, *, token_budget: int = 4000, tool_call_budget: int = 10):
        super().__init__(weight)
        if token_budget <= 0 or tool_call_budget <= 0:
            raise ValueError(f"{self.name}: budgets must be positive")
        self.token_budget = token_budget
        self.tool_call_budget = tool_call_budget

    def score(self, trace: ExecutionTrace) -> RewardResult:
        tokens = trace.tokens_in + trace.tokens_out
        calls = len(trace.tool_calls)
        token_score = min(1.0, self.token_budget / tokens) if tokens else 1.0
        call_score = min(1.0, self.tool_call_budget / calls) if calls else 1.0
        return self._result((token_score + call_score) / 2, tokens=tokens, tool_calls=calls)


class FormatComplianceReward(Reward):
    """1 when the response is non-empty, matches every `required` pattern, no `forbidden` pattern,
    and is at most `max_chars` long; 0 otherwise, with the violations in the details.

    Patterns are regular expressions applied line-wise (re.MULTILINE); by default markup tags are
    forbidden and nothing is required. `ACTION_LINE` requires `Action: name(params)` lines.
    """

    name = "format_compliance"
    default_weight = 1.0

    def __init__(self, weight: float | None = None, *, required: Sequence[str] = (),
                 forbidden: Sequence[str] = (MARKUP,), max_chars: int | None = None):
        super().__init__(weight)
        self.required = [re.compile(pattern, re.MULTILINE) for pattern in required]
        self.forbidden = [re.compile(pattern, re.MULTILINE) for pattern in forbidden]
        self.max_chars = max_chars

    def score(self, trace: ExecutionTrace) -> RewardResult:
        text = trace.final_response
        violations = [] if text.strip() else ["empty response"]
        violations += [f"missing {p.pattern!r}" for p in self.required if not p.search(text)]
        violations += [f"contains {p.pattern!r}" for p in self.forbidden if p.search(text)]
        if self.max_chars is not None and len(text) > self.max_chars:
            violations.append(f"{len(text)} characters, more than {self.max_chars}")
        return self._result(float(not violations), not violations, violations=violations)


class DecisionOutcomeReward(Reward):
    """A decision agent's component reward (immediate, delayed, strategic; see `traces.components`),
    weighted for the trace's agent type. Reads the components from `trace.metadata["components"]`;
    does not apply to traces without them, or while none of them is observed yet."""

    name = "decision_outcome"
    default_weight = 2.0

    def score(self, trace: ExecutionTrace) -> RewardResult:
        components = trace.metadata.get("components")
        if components is None:
            return self._result(None, reason="no decision components")
        if trace.agent_type.upper() not in PRESETS:
            return self._result(None, reason=f"no component weights for agent type {trace.agent_type!r}")
        try:
            scores = ComponentScores.model_validate(components)
        except ValidationError as error:
            return self._result(None, reason=f"invalid components: {error.errors()[0]['msg']}")
        if all(value is None for value in scores.model_dump().values()):
            return self._result(None, reason="no component observed yet")
        result = ComponentRewardCalculator(trace.agent_type).compute(scores)
        return self._result(result.reward, raw=result.raw, used=result.used)
