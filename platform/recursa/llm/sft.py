"""Reward-weighted SFT of a LoRA adapter, as a Ray Train loop.

Our own loop rather than TRL's SFTTrainer: each example carries a weight (its episode's scaled
return) and SFTTrainer has no per-example loss weights. bench/llm_train.py measures this loop
against SFTTrainer on the same model, data and batch.
"""

from __future__ import annotations

from pathlib import Path

import ray.train
import ray.train.torch
import torch

from recursa.core.training import Placement, adamw_with_warmup, print_progress, progress_line
from recursa.llm.batches import encode_pairs, minibatches, optimizer_step, select, token_logprobs, weighted_nll
from recursa.llm.checkpoints import report, restore_checkpoint
from recursa.llm.config import TrainLLMConfig
from recursa.llm.datasets import read_records
from recursa.llm.models import load_causal_lm


def train_loop(loop_config: dict) -> None:
    """Train the adapter on runs/<name>/records.parquet; one checkpoint and report per epoch."""
    config = TrainLLMConfig(**loop_config["config"])
    context = ray.train.get_context()
    torch.manual_seed(config.seed)
    model, tokenizer = load_causal_lm(config.model, adapter=config.init_adapter)
    placement = Placement.from_loop_config(loop_config)
    learner = placement.model(model)  # moves `model` itself to the device, before its optimizer state loads
    records = read_records(Path(loop_config["run_dir"]) / "records.parquet")
    records = records[context.get_world_rank()::context.get_world_size()]
    batch = encode_pairs(tokenizer, [r["prompt"] for r in records], [r["completion"] for r in records],
                         config.training.max_length)
    weights = torch.tensor([float(r.get("weight", 1.0)) for r in records])
    settings = config.training
    steps_per_epoch = -(-len(records) // settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    optimizer, scheduler = adamw_with_warmup(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay,
                                             warmup_steps=int(settings.warmup_ratio * total_steps),
                                             total_steps=total_steps)
    progress = restore_checkpoint(ray.train.get_checkpoint(), model, optimizer, scheduler)
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(progress.get("epoch", 0), settings.epochs):
        generator.manual_seed(config.seed + epoch)
        loss, tokens = sft_epoch(learner, batch, weights, optimizer, scheduler, settings.batch_size,
                                 settings.grad_clip, generator, placement)
        metrics = {"epoch": epoch + 1, "loss": loss, "tokens": tokens, "lr": scheduler.get_last_lr()[0]}
        print_progress(context.get_world_rank(), progress_line("sft epoch", epoch + 1, settings.epochs, metrics,
                                                               ("loss", "tokens", "lr")))
        state = (model, tokenizer, optimizer, scheduler, {"epoch": epoch + 1})
        report(loop_config["run_dir"], metrics, state if context.get_world_rank() == 0 else None)


def sft_epoch(learner, batch: dict[str, torch.Tensor], weights: torch.Tensor, optimizer, scheduler,
              batch_size: int, grad_clip: float, generator: torch.Generator,
              placement: Placement | None = None) -> tuple[float, int]:
    """One shuffled pass of weighted-NLL steps; the mean loss and the tokens seen (padding excluded).
    Each minibatch moves to the placement's device (None: where the batch is, for in-process use)."""
    learner.train()
    total, tokens = 0.0, 0
    for index in minibatches(len(weights), batch_size, generator):
        rows = {**select(batch, index), "weights": weights[index]}
        if placement is not None:
            rows = placement.batch(rows)
        logprobs, mask = token_logprobs(learner, rows)
        loss = weighted_nll(logprobs, mask, rows["weights"])
        optimizer_step(optimizer, loss, grad_clip)
        scheduler.step()
        total += float(loss.detach()) * len(index)
        tokens += int(rows["attention_mask"].sum())
    return total / len(weights), tokens
