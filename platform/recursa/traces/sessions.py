"""Agent conversation logs and checkpoints as traces (seed 003's checkpoint loader, in JSON).

One JSON file per agent checkpoint, anywhere under a directory:

    {"agent": "support-bot",                       # the traces' agent type (default: the file's name)
     "sessions": {"<session id>": {"history": [
         {"role": "user", "content": "Book a table for two"},
         {"role": "assistant", "content": "", "tool_calls": [{"name": "book", "arguments": {"people": 2}}]},
         {"role": "tool", "name": "book", "content": "booked at 8pm"},      # "error": "..." when it failed
         {"role": "assistant", "content": "Booked for 8pm."}]}},
     "task_state": {"<task id>": {"status": "completed", "description": "book a table"}},
     "agent_state": {"tokens_in": 1200, "tokens_out": 300, "cost": 0.002}}

Each user message starts a trace; the assistant's tool calls, answered by the tool messages that
follow (in order, by name), are its tool calls; the next assistant message without calls is its
final response. A checkpoint counts tokens and cost for the agent as a whole, so they are shared
out evenly over its traces (totals per agent stay exact); its tasks go with its last trace. Trace ids
are derived from the file, session and turn, so importing a directory again adds only what is new.
Other keys of a checkpoint (variable scopes, tool capabilities) are ignored.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recursa.traces.models import ExecutionTrace, TaskTrace, ToolCallTrace


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SessionCall(_Loose):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class SessionMessage(_Loose):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = ""
    tool_calls: list[SessionCall] = Field(default_factory=list)
    name: str | None = None  # tool messages: the tool that answered
    error: str | None = None  # tool messages: why the call failed


class Session(_Loose):
    history: list[SessionMessage]


class TaskState(_Loose):
    status: str = "created"
    description: str = ""


class AgentState(_Loose):
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


class Checkpoint(_Loose):
    agent: str | None = None
    sessions: dict[str, Session] = Field(default_factory=dict)
    task_state: dict[str, TaskState] = Field(default_factory=dict)
    agent_state: AgentState = AgentState()


def read_sessions(directory: str | Path) -> list[ExecutionTrace]:
    """The traces of every `*.json` checkpoint under `directory`; ValueError names a bad file and field."""
    directory = Path(directory)
    traces = []
    for path in sorted(directory.rglob("*.json")):
        try:
            checkpoint = Checkpoint.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as error:
            reason = _first_error(error) if isinstance(error, ValidationError) else f"not JSON ({error})"
            raise ValueError(f"{path}: {reason}") from None
        traces += checkpoint_traces(checkpoint, str(path.relative_to(directory)), path.stem)
    return traces


def checkpoint_traces(checkpoint: Checkpoint, source: str, default_agent: str) -> list[ExecutionTrace]:
    """One trace per user turn of every session, with the checkpoint's counters shared out and its
    tasks on the last trace."""
    agent = checkpoint.agent or default_agent
    traces = [_trace(agent, source, session_id, turn, messages)
              for session_id, session in checkpoint.sessions.items()
              for turn, messages in enumerate(_turns(session.history))]
    if not traces:
        return []
    state, count = checkpoint.agent_state, len(traces)
    for i, trace in enumerate(traces):
        trace.tokens_in = state.tokens_in // count + (state.tokens_in % count if i == 0 else 0)
        trace.tokens_out = state.tokens_out // count + (state.tokens_out % count if i == 0 else 0)
        trace.cost = state.cost / count
    traces[-1].tasks = [TaskTrace(description=task.description or task_id, status=task.status)
                        for task_id, task in checkpoint.task_state.items()]
    return traces


def _turns(history: list[SessionMessage]) -> list[list[SessionMessage]]:
    """The history cut before each user message (what precedes the first one is dropped)."""
    turns: list[list[SessionMessage]] = []
    for message in history:
        if message.role == "user":
            turns.append([message])
        elif turns:
            turns[-1].append(message)
    return turns


def _trace(agent: str, source: str, session_id: str, turn: int, messages: list[SessionMessage]) -> ExecutionTrace:
    calls: list[ToolCallTrace] = []
    pending: list[int] = []  # indices of calls not answered yet
    final: str | None = None
    for message in messages[1:]:
        if message.role == "assistant" and message.tool_calls:
            for call in message.tool_calls:
                pending.append(len(calls))
                calls.append(ToolCallTrace(name=call.name, arguments=call.arguments, success=False,
                                           error="no tool result in the log"))
        elif message.role == "tool" and pending:
            index = next((i for i in pending if calls[i].name == message.name), pending[0])
            pending.remove(index)
            calls[index] = calls[index].model_copy(update={
                "success": message.error is None, "result": message.content, "error": message.error})
        elif message.role == "assistant" and final is None:
            final = message.content or ""
    trace_id = hashlib.sha256(f"{source}\0{session_id}\0{turn}".encode()).hexdigest()[:32]
    return ExecutionTrace(trace_id=trace_id, agent_type=agent, query=messages[0].content or "", tool_calls=calls,
                          final_response=final or "",
                          metadata={"session_id": session_id, "turn": turn, "source": source,
                                    "answered": final is not None})


def session_stats(traces: list[ExecutionTrace]) -> dict[str, dict[str, Any]]:
    """Per agent: sessions, traces, unanswered turns, and per tool its calls and success rate."""
    stats: dict[str, dict[str, Any]] = {}
    tools: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    sessions: dict[str, set] = defaultdict(set)
    for trace in traces:
        row = stats.setdefault(trace.agent_type, {"traces": 0, "unanswered": 0})
        row["traces"] += 1
        row["unanswered"] += not trace.metadata.get("answered", True)
        sessions[trace.agent_type].add((trace.metadata.get("source"), trace.metadata.get("session_id")))
        for call in trace.tool_calls:
            tools[trace.agent_type][call.name].append(call.success)
    for agent, row in stats.items():
        row["sessions"] = len(sessions[agent])
        row["tools"] = {name: {"calls": len(results), "success_rate": sum(results) / len(results)}
                        for name, results in sorted(tools[agent].items())}
    return stats


def _first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    return f"{'.'.join(map(str, first['loc'])) or 'checkpoint'}: {first['msg']}"
