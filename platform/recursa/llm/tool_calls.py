"""The one tool-calling format of recursa's LLMs, for training, evaluation and serving.

The offered functions go into the system message, one compact JSON schema per line; the model
answers either with calls, ``<tool_call>[{"name": ..., "arguments": {...}}, ...]</tool_call>``
(one object per call, several for a parallel request), or with plain text when no function fits.
The prompt is the model's own chat template; where that template has a tools section (it reads
``tools``) the functions go there instead, and where a tokenizer has no template at all a plain
``role: content`` transcript stands in.

`parse_tool_calls` is strict and never raises: text without the tag is a plain answer, a tag
whose contents are not a JSON list of ``{"name": str, "arguments": object}`` is a malformed
answer (no calls, counted as an error).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recursa.tools.schema import FunctionCall, FunctionSpec, function_to_json_schema

OPEN, CLOSE = "<tool_call>", "</tool_call>"
OFFER = "You can call these functions:"
INSTRUCTIONS = (
    f'To call functions, answer only with {OPEN}[{{"name": "function_name", "arguments": {{...}}}}]{CLOSE}, '
    "one object per call; list several calls when the request asks for several. "
    "If no function fits the request, answer in plain text without calling any."
)
NO_CALL_ANSWER = "None of the available functions can do that."
_TAGGED = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.DOTALL)

Message = dict[str, Any]  # an OpenAI-style chat message: role, content (and tool_calls, tool_call_id)


def compact_schema(function: FunctionSpec) -> str:
    """A function's OpenAI schema as one line of JSON (no spaces after separators)."""
    return json.dumps(function_to_json_schema(function), separators=(",", ":"), ensure_ascii=False)


def tools_system_message(functions: Sequence[FunctionSpec], system: str | None = None) -> str:
    """The system message offering `functions`, after the caller's own system text if any."""
    offer = "\n".join([OFFER, *(compact_schema(f) for f in functions), INSTRUCTIONS])
    return f"{system}\n\n{offer}" if system else offer


def template_has_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a `tools` argument."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def render_prompt(tokenizer, messages: Sequence[Message], functions: Sequence[FunctionSpec]) -> str:
    """The text the model continues: the chat with the functions offered, up to the assistant's turn."""
    chat = [_as_template_message(m) for m in messages]
    if functions and template_has_tools(tokenizer):
        tools = [{"type": "function", "function": function_to_json_schema(f)} for f in functions]
        return tokenizer.apply_chat_template(chat, tools=tools, tokenize=False, add_generation_prompt=True)
    if functions:
        system = chat[0]["content"] if chat and chat[0]["role"] == "system" else None
        chat = [{"role": "system", "content": tools_system_message(functions, system)},
                *(chat[1:] if system is not None else chat)]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant:"


def _as_template_message(message: Message) -> Message:
    """A message as chat templates without tool support read it: earlier calls written in our
    format, tool results as user turns."""
    role, content = message["role"], message.get("content") or ""
    if role == "assistant" and message.get("tool_calls"):
        calls = [FunctionCall(name=c["function"]["name"], arguments=_arguments(c["function"]["arguments"]))
                 for c in message["tool_calls"]]
        return {"role": "assistant", "content": format_tool_calls(calls)}
    if role == "tool":
        return {"role": "user", "content": f"Function result: {content}"}
    return {"role": role, "content": content}


def _arguments(value: Any) -> dict[str, Any]:
    decoded = json.loads(value) if isinstance(value, str) else value
    return decoded if isinstance(decoded, dict) else {}


def format_tool_calls(calls: Sequence[FunctionCall]) -> str:
    """What the model writes for `calls`; the plain no-call answer when there are none."""
    if not calls:
        return NO_CALL_ANSWER
    body = json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False)
    return f"{OPEN}{body}{CLOSE}"


@dataclass(frozen=True)
class ParsedAnswer:
    """What a model's answer says: its calls, or its text, or that it was malformed (and why)."""

    calls: list[FunctionCall]
    text: str
    error: str | None = None

    @property
    def malformed(self) -> bool:
        return self.error is not None


def parse_tool_calls(text: str) -> ParsedAnswer:
    """The calls in `text` (every tagged list, in order); never raises."""
    if OPEN not in text:
        return ParsedAnswer([], text.strip())
    calls: list[FunctionCall] = []
    blocks = _TAGGED.findall(text)
    if not blocks:
        return ParsedAnswer([], text.strip(), f"{OPEN} without {CLOSE}")
    for block in blocks:
        try:
            items = json.loads(block)
        except ValueError as error:
            return ParsedAnswer([], text.strip(), f"not JSON: {error}")
        items = items if isinstance(items, list) else [items]
        for item in items:
            call = _call(item)
            if call is None:
                return ParsedAnswer([], text.strip(), f"not a call: {json.dumps(item)[:80]}")
            calls.append(call)
    if not calls:
        return ParsedAnswer([], text.strip(), "an empty list of calls")
    return ParsedAnswer(calls, _TAGGED.sub("", text).strip())


def _call(item: Any) -> FunctionCall | None:
    """`{"name": str, "arguments": object}` (arguments may be a JSON string, as OpenAI writes them)."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or set(item) - {"name", "arguments"}:
        return None
    arguments = item.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    return FunctionCall(name=item["name"], arguments=arguments) if isinstance(arguments, dict) else None
