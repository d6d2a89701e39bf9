"""OpenAI completions and chat completions answered by a causal LM and the models served beside it.

The model is an exported artifact run by one of two engines (`recursa.llm.generation`):
- transformers: a merged model (`recursa export llm --format merged`) or the base model the
  adapters were trained on, each LoRA adapter (`recursa export llm --format adapter`, or one saved
  by training) served under its own id;
- llama_cpp: a GGUF file (`recursa export llm --format gguf`), and merged models' GGUF files under
  their own ids.
Requests name only those ids, never a path. Generation is batched: the waiting requests are
grouped by adapter and sampling settings, each group is one engine call; streamed requests are
batched the same way, apart from the others. Both engines share the tokenizer (for GGUF, the one
its metadata holds), the prompts and the cutting of answers, so they answer alike.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Literal

from recursa.core.config import ConfigError
from recursa.llm.chat_formats import CHAT_FORMATS
from recursa.llm.config import LLMServeArgs
from recursa.llm.generation import Engine, Generation, StepFeed
from recursa.llm.models import load_tokenizer
from recursa.serving.chat_tools import InvalidRequest, offered_functions
from recursa.serving.schemas import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    Completion,
    CompletionChoice,
    CompletionRequest,
    FunctionCallOut,
    LLMChatCompletionRequest,
    ModelCard,
    ModelList,
    ToolCallOut,
    Usage,
)
from recursa.tools.schema import FunctionSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Generated:
    """A continuation, why it ended, and its token counts."""

    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage


class LLMCore:
    """The model, its adapters and tokenizer behind OpenAI's request and response shapes."""

    def __init__(self, settings: LLMServeArgs):
        self.settings = settings
        self.chat_format = CHAT_FORMATS[settings.chat_format]
        self.engine, self.tokenizer = _load(settings)
        self.tokenizer.padding_side = "left"  # batches of prompts end where generation begins
        self.max_prompt_tokens = _prompt_limit(settings, self.engine.context_length)
        self.created = int(time.time())

    def models(self) -> ModelList:
        """The model and every configured adapter, by served id."""
        names = [self.settings.model_name, *self.settings.adapters]
        return ModelList(data=[ModelCard(id=name, created=self.created) for name in names])

    def adapter_for(self, model: str) -> str | None:
        """The adapter a request's `model` selects (None: the model alone); LookupError if not served."""
        if model == self.settings.model_name:
            return None
        if model in self.settings.adapters:
            return model
        raise LookupError(f"model {model!r} does not exist; see GET /v1/models")

    def completion_input(self, request: CompletionRequest) -> Generation:
        """The generation a completions request asks for."""
        return self._generation(request, request.prompt, "prompt")

    def chat_input(self, request: LLMChatCompletionRequest) -> Generation:
        """The generation a chat request asks for: its prompt in the chat format, with the offered tools."""
        if len(request.messages) > self.settings.max_messages:
            raise InvalidRequest(f"messages: at most {self.settings.max_messages} messages")
        if request.tools and len(request.tools) > self.settings.max_tools:
            raise InvalidRequest(f"tools: at most {self.settings.max_tools} tools")
        prompt = self.chat_format.prompt(self.tokenizer, request.messages, self._functions(request))
        return self._generation(request, prompt, "messages")

    def generate(self, batch: list[Generation]) -> list[Generated]:
        """Continue every prompt; one engine call per group of equal adapter and sampling settings."""
        order = sorted(range(len(batch)), key=lambda i: batch[i].group())
        results: dict[int, Generated] = {}
        for _, same_group in groupby(order, key=lambda i: batch[i].group()):
            members = list(same_group)
            for i, result in zip(members, self._generate_group([batch[i] for i in members])):
                results[i] = result
        return [results[i] for i in range(len(batch))]

    def generate_rows(self, rows: list[Generation], feed: StepFeed, end: Callable[[], None]) -> list[Generated]:
        """Generations of equal adapter and sampling settings in one engine call, each decoding
        step's tokens handed to `feed`, then `end` called."""
        try:
            return self._generate_group(rows, feed)
        finally:
            end()  # also when generation fails, so that the reader of the feed stops

    def decode(self, tokens: list[int]) -> str:
        """Text of generated tokens."""
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def completion(self, request: CompletionRequest, generated: list[Generated]) -> Completion:
        """The completions response: one choice per generation."""
        choices = [CompletionChoice(index=i, text=g.text, finish_reason=g.finish_reason) for i, g in enumerate(generated)]
        return Completion(model=request.model, choices=choices, usage=total_usage(generated))

    def chat_completion(self, request: LLMChatCompletionRequest, generated: list[Generated]) -> ChatCompletion:
        """The chat response: one choice per generation."""
        choices = [self.chat_choice(request, g, i) for i, g in enumerate(generated)]
        return ChatCompletion(model=request.model, choices=choices, usage=total_usage(generated))

    def chat_choice(self, request: LLMChatCompletionRequest, generated: Generated, index: int = 0) -> Choice:
        """Tool calls when the output is calls to offered tools (all of them fitting), else the text."""
        calls = self.chat_format.answer(generated.text, self._functions(request))
        if calls:
            out = [ToolCallOut(function=FunctionCallOut(name=c.name, arguments=json.dumps(c.arguments))) for c in calls]
            return Choice(index=index, message=AssistantMessage(content=None, tool_calls=out),
                          finish_reason="tool_calls")
        return Choice(index=index, message=AssistantMessage(content=generated.text.strip()),
                      finish_reason=generated.finish_reason)

    def may_call(self, request: LLMChatCompletionRequest) -> Callable[[str], bool]:
        """Whether a chat answer beginning with the given text may still be tool calls."""
        functions = self._functions(request)
        return lambda text: self.chat_format.may_call(text, functions)

    def health_check(self) -> None:
        """Generate one token with the model alone."""
        self.generate([Generation(prompt_ids=tuple(self.tokenizer("ok")["input_ids"]), adapter=None,
                                  max_new_tokens=1)])

    def _functions(self, request: LLMChatCompletionRequest) -> list[FunctionSpec]:
        if not request.tools or request.tool_choice == "none":
            return []
        functions = offered_functions(request.tools)
        if isinstance(request.tool_choice, dict):
            name = (request.tool_choice.get("function") or {}).get("name")
            functions = [f for f in functions if f.name == name]
            if not functions:
                raise InvalidRequest(f"tool_choice: names no offered tool ({name!r})")
        return functions

    def _generation(self, request: CompletionRequest | LLMChatCompletionRequest, prompt: str,
                    field: str) -> Generation:
        limit = self.settings.max_new_tokens
        if request.max_tokens is not None and request.max_tokens > limit:
            raise InvalidRequest(f"max_tokens: at most {limit}")
        prompt_ids = tuple(self.tokenizer(prompt)["input_ids"])
        if len(prompt_ids) > self.max_prompt_tokens:
            raise InvalidRequest(f"{field}: the prompt is {len(prompt_ids)} tokens; at most {self.max_prompt_tokens}")
        return Generation(prompt_ids=prompt_ids, adapter=self.adapter_for(request.model),
                          max_new_tokens=request.max_tokens or limit, temperature=request.temperature,
                          top_p=request.top_p, seed=request.seed, stop=request.stop_strings())

    def _generate_group(self, group: list[Generation], feed: StepFeed | None = None) -> list[Generated]:
        return [self._finish(tokens, g) for tokens, g in zip(self.engine.generate(group, feed), group)]

    def _finish(self, tokens: list[int], generation: Generation) -> Generated:
        """Cut one row at EOS, its own token limit and its first stop string."""
        tokens = tokens[:generation.max_new_tokens]
        ended = self.tokenizer.eos_token_id in tokens
        if ended:
            tokens = tokens[:tokens.index(self.tokenizer.eos_token_id)]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cuts = [text.index(s) for s in generation.stop if s in text]
        if cuts:
            text, ended = text[:min(cuts)], True
        usage = Usage(prompt_tokens=len(generation.prompt_ids), completion_tokens=len(tokens),
                      total_tokens=len(generation.prompt_ids) + len(tokens))
        return Generated(text=text, finish_reason="stop" if ended else "length", usage=usage)


def total_usage(generated: list[Generated]) -> Usage:
    """Tokens of one prompt and all its choices."""
    prompt = generated[0].usage.prompt_tokens
    completion = sum(g.usage.completion_tokens for g in generated)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _load(settings: LLMServeArgs) -> tuple[Engine, PreTrainedTokenizerBase]:
    """The engine and the tokenizer. llama.cpp opens its file first, so that a corrupt GGUF is
    reported by the engine that runs it."""
    if settings.engine == "llama_cpp":
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError("engine: llama_cpp needs llama-cpp-python; build it with `make llama-cpp`")
        from recursa.llm.llama_cpp_engine import LlamaCppEngine

        engine = LlamaCppEngine(settings)
        return engine, load_tokenizer(settings.model)
    from recursa.llm.transformers_engine import TransformersEngine

    tokenizer = load_tokenizer(settings.model)
    return TransformersEngine(settings, tokenizer), tokenizer


def _prompt_limit(settings: LLMServeArgs, context: int | None) -> int:
    """The longest prompt served: the configured one, which must leave room for max_new_tokens."""
    if context is None:
        return settings.max_prompt_tokens or 1024
    room = context - settings.max_new_tokens
    if room < 1 or (settings.max_prompt_tokens or 0) > room:
        raise ConfigError(f"max_prompt_tokens: the model has {context} positions, "
                          f"{settings.max_new_tokens} of them for max_new_tokens")
    return settings.max_prompt_tokens or room
