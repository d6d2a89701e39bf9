"""Streamed completions: tokens from `generate`'s thread to server-sent events, as OpenAI sends them.

`generate` runs in a worker thread and hands each decoding step's tokens (one per choice) to a
`TokenFeed`, which passes them to the event loop. `ChoiceText` turns a choice's tokens into text
deltas that are always a prefix of the final answer: it holds back an unfinished UTF-8 character
and the tail that could be the start of a stop string. Chat answers that may be a tool call (tools
were offered) are held until the end, because only the whole text says whether it is one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from recursa.serving.chunks import DONE, ChatChunks, CompletionChunks, sse
from recursa.serving.llm import Generation, LLMCore, total_usage
from recursa.serving.schemas import CompletionRequest, LLMChatCompletionRequest


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


async def stream_events(core: LLMCore, request: CompletionRequest | LLMChatCompletionRequest,
                        generation: Generation) -> AsyncIterator[str]:
    """The server-sent events of a streamed (chat) completion, ending with [DONE]."""
    chat = isinstance(request, LLMChatCompletionRequest)
    chunks = ChatChunks(request.model) if chat else CompletionChunks(request.model)
    held = chat and core.offers_tools(request)  # only the whole text says whether it is a tool call
    texts = [ChoiceText(core.decode, core.tokenizer.eos_token_id, generation.stop, lstrip=chat)
             for _ in range(request.n)]
    feed = TokenFeed(asyncio.get_running_loop())
    running = asyncio.create_task(asyncio.to_thread(core.generate_streamed, generation, request.n, feed))
    try:
        for index in range(request.n if chat else 0):
            yield sse(chunks.role(index))
        async for step in feed.steps():
            for index, token in enumerate(step):
                delta = texts[index].add(token)
                if delta and not held:
                    yield sse(chunks.text(index, delta))
        generated = await running
        for index, result in enumerate(generated):
            if held:
                yield sse(chunks.whole(core.chat_choice(request, result, index)))
            else:
                yield sse(chunks.text(index, texts[index].finish(result.text), result.finish_reason))
        if request.stream_options is not None and request.stream_options.include_usage:
            yield sse(chunks.usage(total_usage(generated)))
        yield DONE
    finally:
        feed.cancelled.set()  # a client that leaves ends generation at the next token
