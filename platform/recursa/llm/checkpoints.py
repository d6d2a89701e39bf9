"""A LoRA run's Ray Train checkpoints (adapter, optimizer, scheduler, progress) and its metrics log."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import ray.train
import torch
from ray.train import Checkpoint

from recursa.llm.models import save_adapter

ADAPTER_DIR = "adapter"


STATE_FILE = "trainer_state.pt"


METRICS_LOG = "metrics.jsonl"


def save_checkpoint(directory: Path, model, tokenizer, optimizer, scheduler, progress: dict) -> Checkpoint:
    """Adapter (safetensors) and, from this run only, optimizer, scheduler and progress."""
    save_adapter(model, tokenizer, directory / ADAPTER_DIR)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "progress": progress},
               directory / STATE_FILE)
    return Checkpoint.from_directory(str(directory))


def restore_checkpoint(checkpoint: Checkpoint | None, model, optimizer, scheduler) -> dict:
    """Load a checkpoint written by `save_checkpoint` into model, optimizer and scheduler; its progress."""
    if checkpoint is None:
        return {}
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    with checkpoint.as_directory() as directory:
        directory = Path(directory)
        set_peft_model_state_dict(model, load_file(directory / ADAPTER_DIR / "adapter_model.safetensors"))
        # Optimizer and scheduler states were written by this run, not downloaded: torch.load is fine.
        state = torch.load(directory / STATE_FILE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["progress"]


def log_metrics(run_dir: str | Path, metrics: dict) -> None:
    """Append one report to the run's metrics.jsonl."""
    with (Path(run_dir) / METRICS_LOG).open("a") as log:
        log.write(json.dumps(metrics) + "\n")


def report(run_dir: str | Path, metrics: dict, checkpoint_state: tuple | None) -> None:
    """Report one epoch or iteration to Ray Train (with a checkpoint on rank 0) and log it in the run.

    metrics.jsonl keeps every report; Ray Train keeps only the newest checkpoints and their metrics.
    `checkpoint_state` is (model, tokenizer, optimizer, scheduler, progress), given on rank 0 only.
    """
    if checkpoint_state is None:
        ray.train.report(metrics)
        return
    log_metrics(run_dir, metrics)
    with tempfile.TemporaryDirectory() as tmp:
        ray.train.report(metrics, checkpoint=save_checkpoint(Path(tmp), *checkpoint_state))
