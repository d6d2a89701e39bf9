"""The text formats a served LLM reads chats and writes tool calls in, one per `chat_format`.

A format turns a chat and its offered functions into the prompt, and the model's answer into the
calls it makes (none: the answer is a message). It also says, for a streamed answer, whether the
text so far may still turn out to be calls: such text is held back, and once a format says no, it
says no for every continuation, so a streamed answer is never a message first and calls after.

- "tool_calls" (`recursa.llm.tool_calls`): recursa's tool-calling format, what function-calling
  training and BFCL use. An answer is calls when it begins with ``<tool_call>``, parses, and every
  call names an offered function with arguments that fit its schema.
- "actions" (`recursa.llm.chat`): the action agents' transcript, which the math demo's agents were
  trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from recursa.llm.chat import chat_transcript, parse_tool_call
from recursa.llm.tool_calls import OPEN, Message, parse_tool_calls, render_prompt
from recursa.serving.chat_tools import InvalidRequest
from recursa.serving.schemas import ChatMessage
from recursa.tools.schema import FunctionCall, FunctionSpec, arguments_fit


class ChatFormat(Protocol):
    """How a served model reads chats and writes tool calls."""

    def prompt(self, tokenizer, messages: Sequence[ChatMessage], functions: Sequence[FunctionSpec]) -> str:
        """The text the model continues."""
        ...

    def answer(self, text: str, functions: Sequence[FunctionSpec]) -> list[FunctionCall]:
        """The calls `text` makes, each fitting one of `functions`; [] when it is a message."""
        ...

    def may_call(self, text: str, functions: Sequence[FunctionSpec]) -> bool:
        """Whether an answer beginning with `text` may still be calls."""
        ...


class ToolCallsFormat:
    """recursa's tool-calling format: the functions in the system message, calls in ``<tool_call>``."""

    def prompt(self, tokenizer, messages: Sequence[ChatMessage], functions: Sequence[FunctionSpec]) -> str:
        return render_prompt(tokenizer, [_plain(m) for m in messages], functions)

    def answer(self, text: str, functions: Sequence[FunctionSpec]) -> list[FunctionCall]:
        if not self.may_call(text, functions):
            return []
        specs = {f.name: f for f in functions}
        calls = parse_tool_calls(text).calls  # none when malformed
        fit = all(c.name in specs and arguments_fit(c.arguments, specs[c.name]) for c in calls)
        return calls if fit else []

    def may_call(self, text: str, functions: Sequence[FunctionSpec]) -> bool:
        head = text.lstrip()
        return bool(functions) and (head.startswith(OPEN) or OPEN.startswith(head))


class ActionsFormat:
    """The action agents' transcript: one call, `Action: name({json})` on the answer's first line."""

    def prompt(self, tokenizer, messages: Sequence[ChatMessage], functions: Sequence[FunctionSpec]) -> str:
        return chat_transcript(messages, functions)

    def answer(self, text: str, functions: Sequence[FunctionSpec]) -> list[FunctionCall]:
        call = parse_tool_call(text, functions)
        return [] if call is None else [call]

    def may_call(self, text: str, functions: Sequence[FunctionSpec]) -> bool:
        first, ended, _ = text.lstrip().partition("\n")  # only the first line can be a call
        return bool(functions) and (not ended or parse_tool_call(first, functions) is not None)


CHAT_FORMATS: dict[str, ChatFormat] = {"tool_calls": ToolCallsFormat(), "actions": ActionsFormat()}


def _plain(message: ChatMessage) -> Message:
    """A request's message as `render_prompt` reads it; InvalidRequest if a call's arguments are
    not a JSON object."""
    plain: Message = {"role": message.role, "content": message.text()}
    if message.tool_calls:
        plain["tool_calls"] = [{"function": {"name": c.function.name, "arguments": _arguments(c.function.arguments)}}
                               for c in message.tool_calls]
    if message.tool_call_id:
        plain["tool_call_id"] = message.tool_call_id
    return plain


def _arguments(text: str) -> dict:
    try:
        arguments = json.loads(text)
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest("messages: a tool call's arguments must be a JSON object")
    return arguments
