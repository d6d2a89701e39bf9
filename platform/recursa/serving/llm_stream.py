"""Streamed completions: tokens from `generate`'s thread to server-sent events, as OpenAI sends them.

`generate` runs in a worker thread and hands each decoding step's tokens (one per choice) to a
`TokenFeed`, which passes them to the event loop. `ChoiceText` turns a choice's tokens into text
deltas that are always a prefix of the final answer: it holds back an unfinished UTF-8 character
and the tail that could be the start of a stop string. Chat answers that may be a tool call (tools
were offered) are held until the end, because only the whole text says whether it is one.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable

import torch
from pydantic import BaseModel
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from recursa.serving.llm import Generated, Generation, LLMCore, total_usage
from recursa.serving.schemas import (
    ChatCompletionChunk,
    ChunkChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionRequest,
    Delta,
    LLMChatCompletionRequest,
    ToolCallDelta,
    Usage,
)

DONE = "data: [DONE]\n\n"


class TokenFeed(BaseStreamer, StoppingCriteria):
    """`generate`'s streamer: each step's new tokens go to an asyncio queue; as a stopping
    criterion it ends generation once the client has gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[list[int] | None] = asyncio.Queue()
        self.cancelled = threading.Event()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate hands the streamer the prompt first
            self._prompt_seen = True
            return
        self.loop.call_soon_threadsafe(self.queue.put_nowait, value.reshape(-1).tolist())

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool)

    async def steps(self) -> AsyncIterator[list[int]]:
        """Each decoding step's tokens, one per row, until generation ends."""
        while (tokens := await self.queue.get()) is not None:
            yield tokens


class ChoiceText:
    """One choice's text as it grows, released in deltas that later tokens cannot change."""

    def __init__(self, decode: Callable[[list[int]], str], eos_token_id: int | None, stop: tuple[str, ...],
                 lstrip: bool = False):
        self.decode, self.eos_token_id, self.stop, self.lstrip = decode, eos_token_id, stop, lstrip
        self.tokens: list[int] = []
        self.sent = ""
        self.ended = False

    def add(self, token: int) -> str:
        """Take the next token; the text that is now certain and not yet sent."""
        if self.ended:
            return ""
        if token == self.eos_token_id:
            self.ended = True
            return ""
        self.tokens.append(token)
        text = self.decode(self.tokens)
        text = text.lstrip() if self.lstrip else text
        cut = min((text.index(s) for s in self.stop if s in text), default=None)
        if cut is not None:
            self.ended, text = True, text[:cut]
        else:
            text = text.rstrip("\ufffd")  # an unfinished multi-byte character
            text = text[:len(text) - _stop_prefix_length(text, self.stop)]
        return self._release(text)

    def finish(self, final: str) -> str:
        """The rest of the final text (what generation ended with)."""
        final = final.lstrip() if self.lstrip else final
        return self._release(final)

    def _release(self, text: str) -> str:
        delta = text[len(self.sent):] if text.startswith(self.sent) else ""
        self.sent += delta
        return delta


def _stop_prefix_length(text: str, stop: tuple[str, ...]) -> int:
    """How many trailing characters of `text` could begin a stop string."""
    return max((k for s in stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


def sse(chunk: BaseModel) -> str:
    """One server-sent event holding a chunk."""
    return f"data: {json.dumps(chunk.model_dump(exclude_none=True))}\n\n"


async def stream_events(core: LLMCore, request: CompletionRequest | LLMChatCompletionRequest,
                        generation: Generation) -> AsyncIterator[str]:
    """The server-sent events of a streamed (chat) completion, ending with [DONE]."""
    chat = isinstance(request, LLMChatCompletionRequest)
    chunks = _ChatChunks(core, request) if chat else _CompletionChunks(request)
    held = chat and core.offers_tools(request)  # only the whole text says whether it is a tool call
    texts = [ChoiceText(core.decode, core.tokenizer.eos_token_id, generation.stop, lstrip=chat)
             for _ in range(request.n)]
    feed = TokenFeed(asyncio.get_running_loop())
    running = asyncio.create_task(asyncio.to_thread(core.generate_streamed, generation, request.n, feed))
    try:
        for event in chunks.opening(request.n):
            yield sse(event)
        async for step in feed.steps():
            for index, token in enumerate(step):
                delta = texts[index].add(token)
                if delta and not held:
                    yield sse(chunks.text(index, delta))
        generated = await running
        for index, result in enumerate(generated):
            yield sse(chunks.last(index, result, None if held else texts[index].finish(result.text)))
        if request.stream_options is not None and request.stream_options.include_usage:
            yield sse(chunks.usage(generated))
        yield DONE
    finally:
        feed.cancelled.set()  # a client that leaves ends generation at the next step


class _Chunks:
    """Chunks of one streamed answer: one id, creation time and model."""

    def __init__(self, request: CompletionRequest | LLMChatCompletionRequest,
                 kind: type[CompletionChunk] | type[ChatCompletionChunk], prefix: str):
        self.kind, self.id, self.created, self.model = kind, f"{prefix}-{uuid.uuid4().hex}", int(time.time()), request.model

    def usage(self, generated: list[Generated]) -> BaseModel:
        return self._chunk([], total_usage(generated))

    def _chunk(self, choices: list, usage: Usage | None = None) -> BaseModel:
        return self.kind(id=self.id, created=self.created, model=self.model, choices=choices, usage=usage)


class _CompletionChunks(_Chunks):
    def __init__(self, request: CompletionRequest):
        super().__init__(request, CompletionChunk, "cmpl")

    def opening(self, n: int) -> list[BaseModel]:
        return []

    def text(self, index: int, delta: str) -> BaseModel:
        return self._chunk([CompletionChunkChoice(index=index, text=delta)])

    def last(self, index: int, generated: Generated, rest: str | None) -> BaseModel:
        return self._chunk([CompletionChunkChoice(index=index, text=rest or "", finish_reason=generated.finish_reason)])


class _ChatChunks(_Chunks):
    def __init__(self, core: LLMCore, request: LLMChatCompletionRequest):
        super().__init__(request, ChatCompletionChunk, "chatcmpl")
        self.core, self.request = core, request

    def opening(self, n: int) -> list[BaseModel]:
        return [self._chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content=""))]) for i in range(n)]

    def text(self, index: int, delta: str) -> BaseModel:
        return self._chunk([ChunkChoice(index=index, delta=Delta(content=delta))])

    def last(self, index: int, generated: Generated, rest: str | None) -> BaseModel:
        """The rest of the text, or (when it was held) the whole answer: a tool call or a message."""
        if rest is not None:
            return self._chunk([ChunkChoice(index=index, delta=Delta(content=rest or None),
                                            finish_reason=generated.finish_reason)])
        choice = self.core.chat_choice(self.request, generated, index)
        calls = [ToolCallDelta(index=i, **call.model_dump()) for i, call in enumerate(choice.message.tool_calls or [])]
        delta = Delta(content=choice.message.content, tool_calls=calls or None)
        return self._chunk([ChunkChoice(index=index, delta=delta, finish_reason=choice.finish_reason)])
