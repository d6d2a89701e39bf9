"""A causal LM as an action agent: it continues each episode's transcript with one action.

Generation is batched across episodes (left padding), greedy when `temperature` is 0, and stops
at EOS; the runner parses what comes out, so a malformed action costs a penalty, not a crash.
"""

from __future__ import annotations

from typing import Sequence

import torch

from recursa.envs.actions import AgentState, BaseAgent


class LLMAgent(BaseAgent):
    """Writes actions with `model` (a transformers or PEFT causal LM) and its tokenizer."""

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 16, temperature: float = 0.0,
                 batch_size: int = 64, seed: int | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.temperature, self.batch_size = max_new_tokens, temperature, batch_size
        self.generator_seed = seed

    def select_action(self, state: AgentState) -> str:
        return self.select_actions([state])[0]

    def select_actions(self, states: Sequence[AgentState]) -> list[str]:
        return self.complete([state.transcript() for state in states])

    @torch.no_grad()
    def complete(self, prompts: Sequence[str]) -> list[str]:
        """The model's continuation of each prompt, up to EOS or `max_new_tokens`."""
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
            self.generator_seed += 1
        self.tokenizer.padding_side = "left"
        was_training = self.model.training
        self.model.eval()
        outputs: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            encoded = self.tokenizer(list(prompts[start:start + self.batch_size]), return_tensors="pt", padding=True)
            sampling = {"do_sample": True, "temperature": self.temperature, "top_k": 0, "top_p": 1.0} \
                if self.temperature > 0 else {"do_sample": False}
            generated = self.model.generate(
                **encoded, max_new_tokens=self.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id, **sampling)
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            outputs += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        self.model.train(was_training)
        return outputs
