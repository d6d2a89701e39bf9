"""What an LLM server asks of the engine that runs its model.

The server (`recursa.llm.serve_core`) turns OpenAI requests into `Generation`s, groups them by
adapter and sampling settings, and hands each group to its engine: transformers with PEFT adapters
(`recursa.llm.transformers_engine`) or llama.cpp on GGUF files (`recursa.llm.llama_cpp_engine`).
An engine returns each row's new tokens; cutting at EOS, token limits and stop strings stays with
the server, so both engines answer alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

# One decoding step of a group: each row's new token, None for a row that made none this step.
StepFeed = Callable[[list[int | None]], None]


@dataclass(frozen=True)
class Generation:
    """One prompt to continue, with its adapter and decoding settings."""

    prompt_ids: tuple[int, ...]
    adapter: str | None  # None: the model alone
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def group(self) -> tuple:
        """Generations with the same group share one engine call."""
        sampled = self.temperature > 0
        seeded = sampled and self.seed is not None
        return (self.adapter or "", self.temperature, self.top_p if sampled else 1.0, seeded, self.seed if seeded else 0)


class Engine(Protocol):
    """Runs a model and the models served beside it (adapters), one group of rows at a time."""

    context_length: int | None  # positions a prompt and its continuation share; None: unknown

    def load(self, name: str) -> None:
        """Bring a served adapter into memory (a no-op when it is there)."""

    def evict(self, name: str) -> None:
        """Let a served adapter go from memory."""

    def generate(self, rows: Sequence[Generation], on_step: StepFeed | None = None) -> list[list[int]]:
        """Each row's new tokens; rows share adapter and sampling settings. Rows may run past their
        end (EOS, max_new_tokens): the caller cuts them. `on_step` sees every decoding step."""
