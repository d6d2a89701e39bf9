"""Ray at entrypoints: attach to a running cluster or start an embedded instance; launch a
training run on Ray Train workers."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import ray
from pydantic import BaseModel
from ray.train import CheckpointConfig, Result, RunConfig, ScalingConfig, UserCallback
from ray.train.torch import TorchTrainer

from recursa.core.config import ConfigError, WorkerSettings
from recursa.core.training import DEVICE_FN_KEY, DeviceFn


def init_ray(num_cpus: int | None = None, log_to_driver: bool = False) -> str:
    """Attach to the cluster in RAY_ADDRESS (or a local one) if running, else start Ray here.

    Returns "cluster" or "local". Token authentication stays as the cluster configures it.
    """
    if ray.is_initialized():
        return "cluster" if os.environ.get("RAY_ADDRESS") else "local"
    try:
        ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=log_to_driver)
        return "cluster"
    except (ConnectionError, RuntimeError):
        # The dashboard (on 127.0.0.1) also serves the state API, which Ray Train needs to free the
        # workers of a run whose driver was stopped, e.g. a Tune trial that ASHA ends early.
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=True,
                 log_to_driver=log_to_driver)
        return "local"


def torch_trainer(loop: Callable[[dict], None], config: BaseModel, workers: WorkerSettings, run_dir: Path,
                  storage: Path, name: str, callbacks: Sequence[UserCallback] = (),
                  device_fn: DeviceFn | None = None) -> TorchTrainer:
    """A TorchTrainer running `loop({"config": ..., "run_dir": ...})` on `workers`, checkpoints under
    storage/name (Ray Train resumes from there when the same name and storage are used again).
    `device_fn` stands in for Ray Train's device in the loop's `Placement` (tests)."""
    loop_config: dict = {"config": config.model_dump(mode="json"), "run_dir": str(run_dir)}
    if device_fn is not None:
        loop_config[DEVICE_FN_KEY] = device_fn
    return TorchTrainer(
        loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=workers.num_workers, use_gpu=workers.use_gpu,
                                     resources_per_worker={"CPU": workers.cpus_per_worker}),
        run_config=RunConfig(name=name, storage_path=str(storage), callbacks=list(callbacks),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )


def fit_on_ray_train(loop: Callable[[dict], None], config: BaseModel, workers: WorkerSettings, run_dir: Path,
                     name: str, resume: bool, device_fn: DeviceFn | None = None) -> Result:
    """Run `loop` on Ray Train workers, checkpoints under run_dir/ray_train.

    A resumed run keeps its name and storage path, so Ray Train hands `loop` the latest checkpoint;
    resuming without one is a config error. A failed run raises its error.
    """
    storage = run_dir / "ray_train"
    if resume and not any(p.is_dir() for p in storage.rglob("checkpoint_*")):
        raise ConfigError(f"resume: no checkpoint under {storage}")
    result = torch_trainer(loop, config, workers, run_dir, storage, name, device_fn=device_fn).fit()
    if result.error:
        raise result.error
    return result
