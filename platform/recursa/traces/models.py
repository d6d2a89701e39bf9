"""Agent execution traces: what an agent was asked, which tools it called, how it reasoned, what it
answered, what it cost, and how it was judged (a hand label, a reward, user feedback).

One trace is one episode of one agent. Traces are what the reward engine scores and what the
trace store keeps; the LLM datasets (SFT, KTO, GRPO, DPO) are built from them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ToolCallTrace(BaseModel):
    """One tool call: its arguments, and whether it succeeded (with the result or the error)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    success: bool
    result: Any = None
    error: str | None = None
    latency_ms: float = 0.0


class ReasoningStep(BaseModel):
    """One step of the agent's reasoning: a thought, the action it chose and what it observed."""

    model_config = ConfigDict(extra="forbid")

    index: int
    thought: str = ""
    action: str | None = None
    observation: str | None = None
    reward: float | None = None


class TaskTrace(BaseModel):
    """A sub-task the agent created, and how it ended."""

    model_config = ConfigDict(extra="forbid")

    description: str
    status: str = "created"  # created | completed | failed


class ExecutionTrace(BaseModel):
    """One agent episode, end to end."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    agent_type: str = "agent"
    query: str
    prompt: str | None = None  # the exact text the model saw, when it differs from the query
    tool_calls: list[ToolCallTrace] = Field(default_factory=list)
    reasoning_steps: list[ReasoningStep] = Field(default_factory=list)
    tasks: list[TaskTrace] = Field(default_factory=list)
    final_response: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    label: bool | None = None  # a person's judgement: good (True) or bad (False)
    reward: float | None = None  # the reward engine's score
    feedback: str | None = None  # free text from a user
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=_now)

    @property
    def tool_success_rate(self) -> float | None:
        """The share of tool calls that succeeded, or None when no tool was called."""
        if not self.tool_calls:
            return None
        return sum(call.success for call in self.tool_calls) / len(self.tool_calls)
