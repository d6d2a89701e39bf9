"""Offered tools as function specs, a chat as the transcript recursa's agents read, and tool calls
read back out of what a language model writes.

The transcript is the one action environments show their agents (`AgentState.transcript`): the
task (system and user messages), an `Actions: name, ...` line when tools are offered, each earlier
tool call as an `Action: name({json arguments})` line followed by `Observation: <tool result>`,
and a closing `Action:` for the model to continue. An agent trained with recursa therefore sees
at serving time the text it was trained on.

The model's answer is a tool call when its first non-empty line reads `Action: name({json})`
(the `Action:` prefix may be left out) or is a JSON object `{"name": ..., "arguments": {...}}`,
names an offered tool, and its arguments fit that tool's schema: every required key present,
no key the schema does not list, JSON types and enums respected. Anything else is a plain message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import ValidationError

from recursa.llm.actions import ActionParseError, format_action, parse_action
from recursa.serving.schemas import ChatMessage
from recursa.tools.schema import FunctionCall, FunctionSpec, arguments_fit

ACTION_PROMPT = "Action:"


def chat_transcript(messages: Sequence[ChatMessage], functions: Sequence[FunctionSpec]) -> str:
    """The prompt for a chat: the agent transcript, ending in `Action:` when `functions` are offered."""
    lines: list[str] = []
    task_end = None  # where the task ends and the episode begins: the offered actions go there
    for message in messages:
        if message.role in ("assistant", "tool") and task_end is None:
            task_end = len(lines)
        if message.role == "tool":
            lines.append(f"Observation: {message.text()}")
        elif message.role == "assistant" and message.tool_calls:
            lines += [format_action(c.function.name, c.function.arguments) for c in message.tool_calls]
        else:
            lines.append(message.text())
    if not functions:
        return "\n".join(lines) + "\n"
    lines.insert(len(lines) if task_end is None else task_end, "Actions: " + ", ".join(f.name for f in functions))
    return "\n".join(lines) + "\n" + ACTION_PROMPT


def parse_tool_call(text: str, functions: Sequence[FunctionSpec]) -> FunctionCall | None:
    """The call written on the first non-empty line of `text`, if it fits one of `functions`."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    call = _json_call(line) or _action_call(line)
    if call is None:
        return None
    spec = next((f for f in functions if f.name == call.name), None)
    return call if spec is not None and arguments_fit(call.arguments, spec) else None


def _json_call(line: str) -> FunctionCall | None:
    """`{"name": ..., "arguments": {...}}` (arguments may be a JSON string, as OpenAI writes them)."""
    try:
        data = json.loads(line)
        if isinstance(data.get("arguments"), str):
            data["arguments"] = json.loads(data["arguments"])
        return FunctionCall(name=data["name"], arguments=data.get("arguments") or {})
    except (ValueError, AttributeError, KeyError, TypeError, ValidationError):
        return None


def _action_call(line: str) -> FunctionCall | None:
    """`Action: name({...})`, the arguments a JSON object (empty parentheses: no arguments)."""
    try:
        name, params = parse_action(line)
        arguments = json.loads(params) if params else {}
        return FunctionCall(name=name, arguments=arguments)
    except (ActionParseError, ValueError, ValidationError):
        return None
