"""Streamed answers in OpenAI's shapes: chunks of one answer, as server-sent events ending in [DONE]."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from pydantic import BaseModel

from recursa.serving.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    CompletionChunk,
    CompletionChunkChoice,
    Delta,
    ToolCallDelta,
    Usage,
)

DONE = "data: [DONE]\n\n"


def sse(chunk: BaseModel) -> str:
    """One server-sent event holding a chunk."""
    return f"data: {json.dumps(chunk.model_dump(exclude_none=True))}\n\n"


class Chunks:
    """Chunks of one streamed answer, sharing its id, creation time and model."""

    kind: type[ChatCompletionChunk] | type[CompletionChunk]
    prefix: str

    def __init__(self, model: str):
        self.id, self.created, self.model = f"{self.prefix}-{uuid.uuid4().hex}", int(time.time()), model

    def usage(self, usage: Usage) -> BaseModel:
        """The last chunk when usage is asked for: no choices, the token counts."""
        return self.chunk([], usage)

    def chunk(self, choices: list, usage: Usage | None = None) -> BaseModel:
        return self.kind(id=self.id, created=self.created, model=self.model, choices=choices, usage=usage)


class CompletionChunks(Chunks):
    kind, prefix = CompletionChunk, "cmpl"

    def text(self, index: int, text: str, finish_reason: str | None = None) -> BaseModel:
        """Text of one choice; with its finish reason on the choice's last chunk."""
        return self.chunk([CompletionChunkChoice(index=index, text=text, finish_reason=finish_reason)])


class ChatChunks(Chunks):
    kind, prefix = ChatCompletionChunk, "chatcmpl"

    def role(self, index: int) -> BaseModel:
        """A choice's first chunk: the assistant's role."""
        return self.chunk([ChunkChoice(index=index, delta=Delta(role="assistant", content=""))])

    def text(self, index: int, text: str | None, finish_reason: str | None = None) -> BaseModel:
        """Message text of one choice; with its finish reason on the choice's last chunk."""
        return self.chunk([ChunkChoice(index=index, delta=Delta(content=text), finish_reason=finish_reason)])

    def whole(self, choice: Choice) -> BaseModel:
        """A finished choice in one chunk: its tool calls or its message, and why it ended."""
        calls = [ToolCallDelta(index=i, **call.model_dump()) for i, call in enumerate(choice.message.tool_calls or [])]
        delta = Delta(content=choice.message.content, tool_calls=calls or None)
        return self.chunk([ChunkChoice(index=choice.index, delta=delta, finish_reason=choice.finish_reason)])


def completed_events(completion: ChatCompletion, include_usage: bool = False) -> Iterator[str]:
    """A finished chat completion as a stream: each choice's role, then its whole answer, then [DONE]."""
    chunks = ChatChunks(completion.model)
    for choice in completion.choices:
        yield sse(chunks.role(choice.index))
        yield sse(chunks.whole(choice))
    if include_usage and completion.usage is not None:
        yield sse(chunks.usage(completion.usage))
    yield DONE
