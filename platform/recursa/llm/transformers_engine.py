"""The transformers engine of the LLM server: a causal LM in PyTorch with PEFT LoRA adapters
multiplexed on one copy of its weights; each group of rows is one left-padded `generate` call."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase
from transformers.generation.streamers import BaseStreamer

from recursa.core.config import ConfigError
from recursa.llm.adapters import LoRAAdapters
from recursa.llm.config import LLMServeArgs
from recursa.llm.generation import Generation, StepFeed
from recursa.llm.models import pretrained_causal_lm


class TransformersEngine:
    """A merged model or a base model with its adapters (served id -> adapter directory)."""

    def __init__(self, settings: LLMServeArgs, tokenizer: PreTrainedTokenizerBase):
        try:
            base = pretrained_causal_lm(settings.model, dtype=getattr(torch, settings.dtype))
        except OSError as error:
            raise ConfigError(f"model: cannot load a causal LM from {settings.model} ({error})".splitlines()[0]) from None
        self.context_length: int | None = getattr(base.config, "max_position_embeddings", None)
        self.adapters = LoRAAdapters(base.eval(), settings.adapters)
        self.tokenizer = tokenizer

    def load(self, name: str) -> None:
        self.adapters.load(name)

    def evict(self, name: str) -> None:
        self.adapters.evict(name)

    @torch.no_grad()
    def generate(self, rows: Sequence[Generation], on_step: StepFeed | None = None) -> list[list[int]]:
        first = rows[0]
        inputs = self.tokenizer.pad({"input_ids": [list(g.prompt_ids) for g in rows]}, return_tensors="pt")
        sampling = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p, "top_k": 0} \
            if first.temperature > 0 else {"do_sample": False}
        with self.adapters.active(first.adapter) as model:
            if first.seed is not None and first.temperature > 0:
                torch.manual_seed(first.seed)
            streaming = {} if on_step is None else {"streamer": _Steps(on_step)}
            output = model.generate(**inputs, max_new_tokens=max(g.max_new_tokens for g in rows),
                                    pad_token_id=self.tokenizer.pad_token_id,
                                    eos_token_id=self.tokenizer.eos_token_id, **sampling, **streaming)
        return output[:, inputs["input_ids"].shape[1]:].tolist()


class _Steps(BaseStreamer):
    """`generate`'s streamer: each decoding step's tokens (one per row) to a StepFeed."""

    def __init__(self, on_step: StepFeed):
        self.on_step = on_step
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate hands the streamer the prompt first
            self.prompt_seen = True
            return
        self.on_step(value.reshape(-1).tolist())

    def end(self) -> None:
        """Nothing to do: the server ends its feed when `generate` returns or fails."""
