"""The training skeleton every supervised and LLM recipe runs on (the tool-calling TRM, SFT, GRPO;
KTO where TRL's trainer leaves room): the one run-directory rule, device placement from Ray
Train, the optimizer and its schedule, and a progress line per epoch or iteration.

Devices: a recipe asks `Placement` where to put things instead of assuming the CPU. The device
comes from `ray.train.torch.get_device()` (or a stand-in a test passes through the loop config),
the model goes through `ray.train.torch.prepare_model` at every world size (it moves the model and
wraps it in DDP when there are several workers), every batch is moved with `Placement.batch`, and
mixed precision autocasts on the device's own type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

from recursa.core.config import ConfigError

DeviceFn = Callable[[], torch.device]
DEVICE_FN_KEY = "device_fn"  # the loop config's optional stand-in for ray.train.torch.get_device


def check_run_dir(run_dir: Path, resume: bool, *, started: Iterable[str], resumable_from: str) -> None:
    """The one rule for run directories: a new run refuses a directory where a run has started
    (any of the `started` patterns matches in it); `--resume` needs `resumable_from` to match there.
    Patterns are relative paths, globs allowed (`checkpoints/iter_*`)."""
    if resume:
        if not any(run_dir.glob(resumable_from)):
            raise ConfigError(f"resume: nothing to resume at {run_dir} (no {resumable_from})")
    elif any(any(run_dir.glob(pattern)) for pattern in started):
        raise ConfigError(f"name: run {run_dir} exists; pass --resume or pick another name")


def ray_train_device() -> torch.device:
    """This Ray Train worker's device (its GPU when it has one)."""
    import ray.train.torch

    return ray.train.torch.get_device()


class Placement:
    """Where a Ray Train worker trains: the model placed once, each batch moved before use."""

    def __init__(self, device_fn: DeviceFn | None = None):
        self.device = (device_fn or ray_train_device)()

    @classmethod
    def from_loop_config(cls, loop_config: dict) -> Placement:
        return cls(loop_config.get(DEVICE_FN_KEY))

    def model(self, model: torch.nn.Module, **ddp_kwargs: Any) -> torch.nn.Module:
        """`prepare_model` at every world size: on this device, in DDP with several workers."""
        import ray.train.torch

        return ray.train.torch.prepare_model(model, move_to_device=self.device,
                                             parallel_strategy_kwargs=ddp_kwargs or None)

    def batch(self, batch: Any) -> Any:
        """The tensors of a batch (a tensor, or a dict, list or tuple of them) on this device."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {key: self.batch(value) for key, value in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.batch(value) for value in batch)
        return batch

    def autocast(self, enabled: bool, dtype: torch.dtype = torch.bfloat16) -> contextlib.AbstractContextManager:
        """Mixed precision on this device's type (CUDA on a GPU worker, CPU otherwise); off: nothing."""
        if not enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)


def adamw_with_warmup(parameters: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float,
                      warmup_steps: int, total_steps: int, decay: Literal["cosine", "constant"] = "cosine",
                      min_lr_ratio: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                      ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters with a linear warmup, then cosine decay to
    `min_lr_ratio * lr` or a constant rate (transformers' schedules, stepped once per optimizer step)."""
    optimizer = torch.optim.AdamW([p for p in parameters if p.requires_grad], lr=lr, betas=betas,
                                  weight_decay=weight_decay)
    if decay == "constant":
        return optimizer, get_constant_schedule_with_warmup(optimizer, warmup_steps)
    return optimizer, get_cosine_with_min_lr_schedule_with_warmup(optimizer, warmup_steps, max(total_steps, 1),
                                                                  min_lr_rate=min_lr_ratio)


def progress_line(label: str, index: int, total: int, metrics: dict[str, Any], keys: Iterable[str]) -> str:
    """`label index/total: key value, ...` for the metrics named in `keys` that are present."""
    shown = ", ".join(f"{key} {metrics[key]:.4g}" for key in keys if isinstance(metrics.get(key), (int, float)))
    return f"{label} {index}/{total}: {shown}"


def print_progress(rank: int, line: str) -> None:
    """Print on the first worker only; Ray Train forwards it to the driver's terminal."""
    if rank == 0:
        print(line, flush=True)

