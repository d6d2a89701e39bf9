"""The llama.cpp engine of the LLM server: GGUF files run by llama.cpp through llama-cpp-python's
bindings of its C API, the rows of a batch decoded together.

llama-cpp-python's `Llama` class decodes one sequence at a time, and a Serve replica batches
requests, so this engine drives llama.cpp as llama.cpp's own server does: each row of a group is a
sequence of one context with KV cells of its own (`seq_id`); prompts are prefilled, rows with the
same prompt (a request's `n` choices) prefill it once and copy its cells; then every decoding step
is one `llama_decode` over the last token of every unfinished row. Each row samples with a sampler
chain of its own (temperature, then top-p, then a seeded draw: the order of transformers' warpers).

A served id beyond the model is another GGUF file, loaded on demand and freed when Serve's
multiplexing evicts it: a GGUF LoRA adapter of the model (`recursa export llm --adapter DIR
--format gguf-lora`), which llama.cpp applies to the model's context while that id's rows decode,
so that one copy of the base weights serves every adapter; or a whole model (a merged adapter,
`--format gguf`) with a context of its own.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
import weakref
from collections.abc import Sequence

import llama_cpp

from recursa.core.config import ConfigError
from recursa.core.sources import resolve_model
from recursa.llm.config import LLMServeArgs
from recursa.llm.generation import Generation, StepFeed
from recursa.llm.gguf_lora import is_lora_gguf

DEFAULT_CONTEXT = 4096  # positions per sequence when the config leaves them to the model

# ggml's log levels (ggml.h): llama-cpp-python's own callback maps an older numbering and so prints
# every line of every model load at WARNING; this one keeps warnings and errors only.
# The first error line of a failed load goes into the ConfigError that reports it.
GGML_WARN, GGML_ERROR, GGML_CONTINUE = 3, 4, 5
_last_level = 0
_errors: list[str] = []


@llama_cpp.llama_log_callback
def _log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    global _last_level
    _last_level = _last_level if level == GGML_CONTINUE else level
    if _last_level >= GGML_WARN:
        line = text.decode("utf-8", errors="replace")
        sys.stderr.write(line)
        if _last_level == GGML_ERROR:
            _errors.append(line.strip())


llama_cpp.llama_log_set(_log, ctypes.c_void_p(0))


class LlamaCppEngine:
    """The model's GGUF file and the served ids' ones, one llama.cpp context each."""

    def __init__(self, settings: LLMServeArgs):
        self.settings = settings
        self.threads = settings.llama_cpp.threads or replica_cpus()
        self.paths = {name: gguf_path(path, f"adapters.{name}") for name, path in settings.adapters.items()}
        self.base = GGUFModel(gguf_path(settings.model, "model"), "model", self.threads, settings)
        self.context_length: int | None = self.base.context
        self.loaded: dict[str, GGUFModel | GGUFLora] = {}
        self._lock = threading.Lock()  # generation runs in a worker thread, loading in another

    def load(self, name: str) -> None:
        with self._lock:
            self._load(name)

    def evict(self, name: str) -> None:
        with self._lock:
            model = self.loaded.pop(name, None)
            if model is not None:
                model.close()

    def generate(self, rows: Sequence[Generation], on_step: StepFeed | None = None) -> list[list[int]]:
        with self._lock:
            served = None if rows[0].adapter is None else self._load(rows[0].adapter)
            model = served if isinstance(served, GGUFModel) else self.base
            model.apply(served if isinstance(served, GGUFLora) else None)
            tokens: list[list[int]] = []
            size = self.settings.llama_cpp.max_sequences
            for start in range(0, len(rows), size):
                chunk_step = None if on_step is None else _offset(on_step, start, len(rows))
                tokens += model.decode(rows[start:start + size], start, chunk_step)
            return tokens

    def _load(self, name: str) -> GGUFModel | GGUFLora:
        if name not in self.loaded:
            path, field = self.paths[name], f"adapters.{name}"
            self.loaded[name] = GGUFLora(path, field, self.base) if is_lora_gguf(path) else \
                GGUFModel(path, field, self.threads, self.settings)
        return self.loaded[name]


class GGUFModel:
    """One GGUF model in llama.cpp with a context of `max_sequences` sequences."""

    def __init__(self, path: str, field: str, threads: int, settings: LLMServeArgs):
        options = settings.llama_cpp
        llama_cpp.llama_backend_init()
        _errors.clear()
        model = llama_cpp.llama_model_load_from_file(path.encode(), llama_cpp.llama_model_default_params())
        if not model:
            reason = _errors[0] if _errors else "not a GGUF model file it reads"
            raise ConfigError(f"{field}: llama.cpp cannot load {path} ({reason})")
        trained = llama_cpp.llama_model_n_ctx_train(model)
        self.context = _context(settings, trained)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = self.context * options.max_sequences
        params.n_seq_max = options.max_sequences
        params.kv_unified = False  # each sequence its own cells: llama.cpp's advice when prompts differ
        params.n_batch = params.n_ubatch = options.batch_tokens
        params.n_threads = params.n_threads_batch = threads
        context = llama_cpp.llama_init_from_model(model, params)
        if not context:
            llama_cpp.llama_model_free(model)
            raise ConfigError(f"{field}: llama.cpp cannot make a context of {params.n_ctx} positions for {path}")
        self.model, self.ctx, self.path = model, context, path
        self.lora: GGUFLora | None = None
        self.eos = llama_cpp.llama_vocab_eos(llama_cpp.llama_model_get_vocab(model))
        self.batch = llama_cpp.llama_batch_init(max(options.batch_tokens, options.max_sequences), 0, 1)
        self.batch_tokens = options.batch_tokens
        self._free = weakref.finalize(self, _free, model, context, self.batch)

    def close(self) -> None:
        """Free the context and the weights now."""
        self._free()

    def apply(self, lora: GGUFLora | None) -> None:
        """Run the next decodes with this LoRA adapter (None: the model alone)."""
        if lora is self.lora:
            return
        if lora is None:
            status = llama_cpp.llama_set_adapters_lora(self.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(lora.adapter)
            status = llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        if status != 0:
            raise RuntimeError(f"llama_set_adapters_lora failed with status {status}")
        self.lora = lora

    def decode(self, rows: Sequence[Generation], seed_offset: int, on_step: StepFeed | None) -> list[list[int]]:
        """Each row's new tokens, the rows decoded together until each has its EOS or its token limit."""
        memory = llama_cpp.llama_get_memory(self.ctx)
        llama_cpp.llama_memory_clear(memory, True)
        samplers = [_sampler(row, seed_offset + i) for i, row in enumerate(rows)]
        try:
            out: list[list[int]] = [[] for _ in rows]
            first = self._prefill(rows, samplers, memory)
            if on_step is not None:
                on_step(list(first))
            for i, token in enumerate(first):
                out[i].append(token)
            while True:
                running = [i for i, row in enumerate(rows) if out[i][-1] != self.eos
                           and len(out[i]) < row.max_new_tokens]
                if not running:
                    return out
                self._submit([(out[i][-1], len(rows[i].prompt_ids) + len(out[i]) - 1, i, True) for i in running])
                step: list[int | None] = [None] * len(rows)
                for position, i in enumerate(running):
                    token = llama_cpp.llama_sampler_sample(samplers[i], self.ctx, position)
                    out[i].append(token)
                    step[i] = token
                if on_step is not None:
                    on_step(step)
        finally:
            for sampler in samplers:
                llama_cpp.llama_sampler_free(sampler)

    def _prefill(self, rows: Sequence[Generation], samplers: list, memory: object) -> list[int]:
        """Decode each distinct prompt once into its first row's sequence, copy it to the rows that
        share it, and sample every row's first token."""
        first: list[int] = [0] * len(rows)
        by_prompt: dict[tuple[int, ...], list[int]] = {}
        for i, row in enumerate(rows):
            by_prompt.setdefault(row.prompt_ids, []).append(i)
        for prompt, members in by_prompt.items():
            owner = members[0]
            for start in range(0, len(prompt), self.batch_tokens):
                piece = prompt[start:start + self.batch_tokens]
                last = start + len(piece) == len(prompt)
                self._submit([(token, start + k, owner, last and k == len(piece) - 1) for k, token in enumerate(piece)])
            for i in members[1:]:
                llama_cpp.llama_memory_seq_cp(memory, owner, i, -1, -1)
            for i in members:  # the logits of the prompt's last token are the batch's last output
                first[i] = llama_cpp.llama_sampler_sample(samplers[i], self.ctx, -1)
        return first

    def _submit(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One `llama_decode` of (token, position, sequence, wants logits) entries."""
        batch = self.batch
        for k, (token, position, sequence, logits) in enumerate(entries):
            batch.token[k], batch.pos[k], batch.n_seq_id[k] = token, position, 1
            batch.seq_id[k][0], batch.logits[k] = sequence, logits
        batch.n_tokens = len(entries)
        status = llama_cpp.llama_decode(self.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")


class GGUFLora:
    """A GGUF LoRA adapter loaded onto the base model, applied to its context by `GGUFModel.apply`."""

    def __init__(self, path: str, field: str, base: GGUFModel):
        _errors.clear()
        adapter = llama_cpp.llama_adapter_lora_init(base.model, path.encode())
        if not adapter:
            reason = _errors[0] if _errors else "not a LoRA of this model"
            raise ConfigError(f"{field}: llama.cpp cannot apply {path} to {base.path} ({reason})")
        self.adapter, self.base = adapter, base

    def close(self) -> None:
        """Take the adapter off the base model's context and free it."""
        if self.base.lora is self:
            self.base.apply(None)
        llama_cpp.llama_adapter_lora_free(self.adapter)


def _sampler(row: Generation, offset: int):
    """A row's sampler chain: greedy, or temperature, top-p and a seeded draw."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if row.temperature <= 0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    seed = llama_cpp.LLAMA_DEFAULT_SEED if row.seed is None else (row.seed + offset) % 2**32
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(row.temperature))
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(row.top_p, 1))
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
    return chain


def _offset(on_step: StepFeed, start: int, total: int) -> StepFeed:
    """A chunk's steps as steps of the whole group (None for the rows of other chunks)."""
    def step(tokens: list[int | None]) -> None:
        on_step([None] * start + tokens + [None] * (total - start - len(tokens)))
    return step


def _context(settings: LLMServeArgs, trained: int) -> int:
    """Positions per sequence: the longest prompt served plus max_new_tokens, else the model's own
    context up to DEFAULT_CONTEXT."""
    if settings.max_prompt_tokens is not None:
        return settings.max_prompt_tokens + settings.max_new_tokens
    return min(trained, DEFAULT_CONTEXT) if trained > 0 else DEFAULT_CONTEXT


def _free(model, context, batch) -> None:
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(context)
    llama_cpp.llama_model_free(model)


def gguf_path(path: str, field: str) -> str:
    """The GGUF file a `model` or adapter entry names (a file, or a named model that is one)."""
    source = resolve_model(path)
    if source.gguf_file is None:
        raise ConfigError(f"{field}: engine llama_cpp runs GGUF files; {path} is not one "
                          "(write one with `recursa export llm --format gguf`)")
    return str(source)


def replica_cpus() -> int:
    """The CPUs Ray gave this replica (an actor; rounded up), else the machine's."""
    import ray

    if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            return max(1, math.ceil(cpus))
    return os.cpu_count() or 1
