"""A causal LM as an action agent: it continues each episode's prompt with one action.

The prompt is the episode's transcript, or, for a chat task, the chat rendered with the model's
chat template in recursa's tool-calling format (`recursa.llm.tool_calls.render_prompt`).

Generation is batched across episodes (left padding), greedy when `temperature` is 0, and stops
at EOS; the runner parses what comes out, so a malformed action costs a penalty, not a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from recursa.llm.actions import AgentState, BaseAgent
from recursa.llm.tool_calls import render_prompt


def prompt_text(tokenizer, state: AgentState) -> str:
    """What a model with `tokenizer` is given for `state`: its chat task rendered, else its transcript."""
    if state.chat is None:
        return state.transcript()
    return render_prompt(tokenizer, state.chat.messages, state.chat.functions)


class LLMAgent(BaseAgent):
    """Writes actions with `model` (a transformers or PEFT causal LM) and its tokenizer."""

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 16, temperature: float = 0.0,
                 batch_size: int = 64, seed: int | None = None, keep_tokens: bool = False,
                 stopping: Callable[[int], StoppingCriteria] | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        # Builds a stopping rule for a batch from its padded prompt length (besides EOS and max_new_tokens).
        self.stopping = stopping
        self.max_new_tokens, self.temperature, self.batch_size = max_new_tokens, temperature, batch_size
        self.generator_seed = seed
        # With keep_tokens, (prompt, text) -> the token ids generated for it (through EOS), for
        # learners that score exactly the sampled tokens rather than a re-encoding of the text.
        self.keep_tokens = keep_tokens
        self.token_ids: dict[tuple[str, str], list[int]] = {}

    def select_action(self, state: AgentState) -> str:
        return self.select_actions([state])[0]

    def prompt(self, state: AgentState) -> str:
        return prompt_text(self.tokenizer, state)

    def select_actions(self, states: Sequence[AgentState]) -> list[str]:
        return self.complete([self.prompt(state) for state in states])

    @torch.no_grad()
    def complete(self, prompts: Sequence[str]) -> list[str]:
        """The model's continuation of each prompt, up to EOS or `max_new_tokens`."""
        if self.generator_seed is not None:
            torch.manual_seed(self.generator_seed)
            self.generator_seed += 1
        self.tokenizer.padding_side = "left"
        self.tokenizer.truncation_side = "left"  # a long episode keeps its latest turns
        was_training = self.model.training
        self.model.eval()
        outputs: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch_prompts = list(prompts[start:start + self.batch_size])
            encoded = self.tokenizer(batch_prompts, return_tensors="pt", padding=True, truncation=True,
                                     max_length=self._prompt_budget())
            sampling = {"do_sample": True, "temperature": self.temperature, "top_k": 0, "top_p": 1.0} \
                if self.temperature > 0 else {"do_sample": False}
            if self.stopping is not None:
                sampling["stopping_criteria"] = StoppingCriteriaList([self.stopping(encoded["input_ids"].shape[1])])
            generated = self.model.generate(
                **encoded, max_new_tokens=self.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id, **sampling)
            new_tokens = [self._through_eos(row) for row in generated[:, encoded["input_ids"].shape[1]:].tolist()]
            texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            if self.keep_tokens:
                self.token_ids.update(((prompt, text), ids) for prompt, text, ids in zip(batch_prompts, texts, new_tokens))
            outputs += texts
        self.model.train(was_training)
        return outputs

    def _prompt_budget(self) -> int:
        """Prompt tokens that fit beside the generated ones in the model's context."""
        context = getattr(self.model.config, "max_position_embeddings", None) or 4096
        return context - self.max_new_tokens

    def _through_eos(self, ids: list[int]) -> list[int]:
        """Generated ids up to and including the first EOS (the rest is padding)."""
        eos = self.tokenizer.eos_token_id
        return ids[:ids.index(eos) + 1] if eos in ids else ids
