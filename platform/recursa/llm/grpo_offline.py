"""Offline GRPO of a LoRA adapter: the group-normalised objective over completions that were already
generated and rewarded (records `prompt, completions, rewards`, e.g. the decisions an application's
agents made on one state: `recursa traces export --format grpo`), as a Ray Train loop.

Nothing is sampled. Each group's rewards are normalised within the group, every completion carries
its advantage, and each epoch is one `grpo.grpo_update`: GRPO's clipped surrogate with the k3 KL to
the reference (the base, adapter switched off). The ratio is taken against the policy as it was at
the start of the epoch, since the policy that wrote the completions is not the one training; the
clip keeps each epoch's steps near it.
"""

from __future__ import annotations

from pathlib import Path

import ray.train
import torch

from recursa.core.training import Placement, adamw_with_warmup, print_progress, progress_line
from recursa.llm.batches import encode_pairs
from recursa.llm.checkpoints import report, restore_checkpoint
from recursa.llm.config import TrainLLMConfig
from recursa.llm.datasets import group_samples, read_records
from recursa.llm.grpo import grpo_update
from recursa.llm.models import load_causal_lm


def train_loop(loop_config: dict) -> None:
    """Offline GRPO on runs/<name>/records.parquet; one checkpoint and report per epoch."""
    config = TrainLLMConfig(**loop_config["config"])
    context = ray.train.get_context()
    torch.manual_seed(config.seed)
    model, tokenizer = load_causal_lm(config.model, adapter=config.init_adapter)
    placement = Placement.from_loop_config(loop_config)
    learner = placement.model(model)
    records = read_records(Path(loop_config["run_dir"]) / "records.parquet")
    prompts, completions, advantages = group_samples(records[context.get_world_rank()::context.get_world_size()])
    batch = encode_pairs(tokenizer, prompts, completions, config.training.max_length)
    settings = config.training
    optimizer, scheduler = adamw_with_warmup(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, decay="constant",
        warmup_steps=int(settings.warmup_ratio * settings.epochs), total_steps=settings.epochs)
    progress = restore_checkpoint(ray.train.get_checkpoint(), model, optimizer, scheduler)
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(progress.get("epoch", 0), settings.epochs):
        metrics = {"epoch": epoch + 1, "samples": len(advantages),
                   **grpo_update(learner, model, batch, torch.tensor(advantages), optimizer, config, generator,
                                 placement)}
        scheduler.step()
        print_progress(context.get_world_rank(), progress_line("offline grpo epoch", epoch + 1, settings.epochs,
                                                               metrics, ("loss", "kl", "samples")))
        state = (model, tokenizer, optimizer, scheduler, {"epoch": epoch + 1})
        report(loop_config["run_dir"], metrics, state if context.get_world_rank() == 0 else None)
