"""Prompt-completion batches for causal LMs, and the log-probabilities the learners train on.

The prompt is encoded as the tokenizer would for generation (its special tokens included), the
completion without special tokens and closed by EOS, so that what a learner scores is what the
agent generates. Only completion tokens carry loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def encode_pairs(tokenizer, prompts: Sequence[str], completions: Sequence[str], max_length: int,
                 completion_ids: Sequence[list[int] | None] | None = None) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask` and `completion_mask` for prompt + completion + EOS.

    `completion_ids`, where given, are the exact tokens generated (EOS included when one was), used
    instead of encoding the completion text. Prompts longer than the budget lose their oldest tokens;
    the completion is kept whole.
    """
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    encoded = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    generated = completion_ids or [None] * len(encoded)
    rows, masks = [], []
    for prompt, text_ids, ids in zip(prompt_ids, encoded, generated, strict=True):
        completion = list(ids) if ids is not None else [*text_ids, tokenizer.eos_token_id]
        prompt = prompt[max(0, len(prompt) + len(completion) - max_length):]
        rows.append(prompt + completion)
        masks.append([0] * len(prompt) + [1] * len(completion))
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    completion_mask = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, (row, mask) in enumerate(zip(rows, masks)):
        input_ids[i, :len(row)] = torch.tensor(row)
        attention_mask[i, :len(row)] = 1
        completion_mask[i, :len(row)] = torch.tensor(mask, dtype=torch.float32)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask}


def token_logprobs(model, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of every next token (under logits / temperature, the distribution sampled
    from), and the mask of those that are completion tokens. [B, L-1]."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1] / temperature
    targets = batch["input_ids"][:, 1:]
    logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logprobs, batch["completion_mask"][:, 1:]


def weighted_nll(logprobs: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Reward-weighted SFT loss: each completion's mean token NLL times its weight, averaged."""
    per_sequence = -(logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return (per_sequence * weights).sum() / weights.sum().clamp(min=1e-8)


def minibatches(size: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled split of range(size) into index batches."""
    return list(torch.randperm(size, generator=generator).split(batch_size))


def select(batch: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows `index` of every tensor in a batch, trimmed of all-padding columns on the right."""
    width = int(batch["attention_mask"][index].sum(-1).max())
    return {key: value[index][:, :width] if value.dim() == 2 else value[index] for key, value in batch.items()}


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float) -> None:
    """Backpropagate `loss` and take one step with the gradients of the optimizer's parameters clipped."""
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], grad_clip)
    optimizer.step()
