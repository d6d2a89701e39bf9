"""Streamed completions: tokens from `generate`'s thread to server-sent events, as OpenAI sends them.

Streamed requests are batched like the others: `batch_steps` runs one engine call per group of
requests with equal adapter and sampling settings, in a worker thread that hands each decoding
step's tokens to a `TokenFeed`, and gives every request its share of each step as it comes.
`ChoiceText` turns a choice's tokens into text deltas that are always a prefix of the final answer:
it holds back an unfinished UTF-8 character and the tail that could be the start of a stop string.
A chat answer is also held back while it may still be tool calls (its chat format says so): calls
are sent whole at the end, and held text that turned out to be a message is sent then.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from itertools import groupby

from recursa.llm.generation import Generation
from recursa.llm.serve_core import Generated, LLMCore, total_usage
from recursa.serving.chunks import DONE, ChatChunks, CompletionChunks, sse
from recursa.serving.schemas import CompletionRequest, LLMChatCompletionRequest


class TokenFeed:
    """Each decoding step's new tokens (one per row, None for a row with none), from the engine's
    thread to an asyncio queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[list[int | None] | None] = asyncio.Queue()

    def step(self, tokens: list[int | None]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, tokens)

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

    async def steps(self) -> AsyncIterator[list[int | None]]:
        """Each decoding step's tokens, one per row, until generation ends."""
        while (tokens := await self.queue.get()) is not None:
            yield tokens


@dataclass(frozen=True)
class StreamJob:
    """A streamed request: its prompt and settings, and how many choices it asks for."""

    generation: Generation
    n: int


@dataclass(frozen=True)
class Finished:
    """A streamed request's answers once generation has ended."""

    generated: list[Generated]


# What a streamed request receives from its batch: its tokens of one step (one per choice, None for
# a choice with no token this step; none while another group runs), then its answers;
# StopIteration once they have been delivered.
StepItem = list[int | None] | Finished | type[StopIteration]


async def batch_steps(core: LLMCore, jobs: list[StreamJob]) -> AsyncIterator[list[StepItem]]:
    """For `@serve.batch`: one engine call per group of equal settings, one list per decoding
    step with each job's tokens of that step, then each job's answers."""
    delivered: set[int] = set()
    order = sorted(range(len(jobs)), key=lambda i: jobs[i].generation.group())
    for _, group in groupby(order, key=lambda i: jobs[i].generation.group()):
        members = list(group)
        rows = [jobs[i].generation for i in members for _ in range(jobs[i].n)]
        feed = TokenFeed(asyncio.get_running_loop())
        running = asyncio.create_task(asyncio.to_thread(core.generate_rows, rows, feed.step, feed.end))
        async for step in feed.steps():
            yield _per_job(jobs, members, delivered, step, list)
        yield _per_job(jobs, members, delivered, await running, Finished)
        delivered.update(members)


def _per_job(jobs: list[StreamJob], members: list[int], delivered: set[int], rows: list,
             wrap: Callable[[list], StepItem]) -> list[StepItem]:
    """Each job's slice of a group's rows (wrapped), nothing for jobs of other groups."""
    items: list[StepItem] = [StopIteration if i in delivered else [] for i in range(len(jobs))]
    start = 0
    for i in members:
        items[i] = wrap(rows[start:start + jobs[i].n])
        start += jobs[i].n
    return items


def _never(text: str) -> bool:
    return False


class ChoiceText:
    """One choice's text as it grows, released in deltas that later tokens cannot change."""

    def __init__(self, decode: Callable[[list[int]], str], eos_token_id: int | None, generation: Generation,
                 lstrip: bool = False, hold: Callable[[str], bool] = _never):
        self.decode, self.eos_token_id, self.lstrip, self.hold = decode, eos_token_id, lstrip, hold
        self.stop, self.max_tokens = generation.stop, generation.max_new_tokens
        self.tokens: list[int] = []
        self.sent = ""
        self.ended = False

    def add(self, token: int) -> str:
        """Take the next token; the text that is now certain and not yet sent."""
        if self.ended:
            return ""
        if token == self.eos_token_id or len(self.tokens) == self.max_tokens:  # its batch may run longer
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
        return "" if self.hold(text) else self._release(text)

    def finish(self, final: str) -> str:
        """The rest of the final text (what generation ended with), held back or not."""
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
                        generation: Generation, items: AsyncIterator[list[int | None] | Finished]) -> AsyncIterator[str]:
    """The server-sent events of a streamed (chat) completion from what its batch sends it
    (`batch_steps`; Serve ends the request's stream at StopIteration), ending with [DONE]."""
    chat = request if isinstance(request, LLMChatCompletionRequest) else None
    chunks = CompletionChunks(request.model) if chat is None else ChatChunks(request.model)
    hold = _never if chat is None else core.may_call(chat)
    texts = [ChoiceText(core.decode, core.tokenizer.eos_token_id, generation, lstrip=chat is not None, hold=hold)
             for _ in range(request.n)]
    if isinstance(chunks, ChatChunks):
        for index in range(request.n):
            yield sse(chunks.role(index))
    async for item in items:
        if isinstance(item, Finished):
            generated = item.generated
            break
        for index, token in enumerate(item):
            delta = "" if token is None else texts[index].add(token)
            if delta:
                yield sse(chunks.text(index, delta))
    for index, result in enumerate(generated):
        choice = None if chat is None else core.chat_choice(chat, result, index)
        if choice is not None and choice.message.tool_calls and isinstance(chunks, ChatChunks):  # held back until now
            yield sse(chunks.whole(choice))
        else:
            yield sse(chunks.text(index, texts[index].finish(result.text), result.finish_reason))
    if request.include_usage():
        yield sse(chunks.usage(total_usage(generated)))
    yield DONE
