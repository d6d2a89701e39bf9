"""Hardware profiles: what a machine (or a Ray cluster) has, and the defaults recursa sizes from it.

`profile_for` is a pure function of CPUs, memory and GPUs; on a 2-core laptop without a GPU it gives
exactly the defaults of config.py. `with_profile` fills a training config's fields from a profile
wherever the YAML left them unset, so a value written in a config always wins.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar, cast

from pydantic import BaseModel, Field

from recursa.core.config import StrictModel, WorkerSettings, parse_config


class Hardware(NamedTuple):
    """Resources to size runs for."""

    cpus: int
    memory_gb: float
    gpus: int


class HardwareProfile(StrictModel):
    """The defaults recursa uses on some hardware; each description names the config field that overrides it."""

    cpus: int = Field(description="detected")
    memory_gb: float = Field(description="detected")
    gpus: int = Field(description="detected")
    env_runners: int = Field(description="train gift: runners.num_env_runners")
    envs_per_env_runner: int = Field(description="train gift: runners.num_envs_per_env_runner")
    cpus_per_env_runner: float = Field(description="train gift: runners.num_cpus_per_env_runner")
    train_batch_size: int = Field(description="train gift: ppo.train_batch_size")
    minibatch_size: int = Field(description="train gift: ppo.minibatch_size")
    learners: int = Field(description="train fc / train llm: workers.num_workers")
    gpus_per_learner: int = Field(description="train fc / train llm: workers.use_gpu")
    llm_batch_size: int = Field(description="train llm: training.batch_size")
    serve_replicas: int = Field(description="serve/*.yaml: autoscaling_config.max_replicas (write it there)")


def profile_for(cpus: int, memory_gb: float, gpus: int) -> HardwareProfile:
    """The defaults for this much hardware.

    Env runners get a core each beside the driver and learner (half a core each on 4 cores or fewer,
    where 2 runners still beat 1) and about 1 GB each; PPO collects 64 steps per environment an
    iteration (at least 2000) in 8 minibatches; Ray Train runs one learner per GPU, else one on CPU.
    """
    small = cpus <= 4
    env_runners = max(2, min(cpus - 2, int(memory_gb)))
    envs_per_env_runner = 4 if small else 8
    train_batch_size = max(2000, 64 * env_runners * envs_per_env_runner)
    return HardwareProfile(
        cpus=cpus,
        memory_gb=round(memory_gb, 1),
        gpus=gpus,
        env_runners=env_runners,
        envs_per_env_runner=envs_per_env_runner,
        cpus_per_env_runner=0.5 if small else 1.0,
        train_batch_size=train_batch_size,
        minibatch_size=train_batch_size // 8,
        learners=max(1, gpus),
        gpus_per_learner=1 if gpus else 0,
        llm_batch_size=64 if gpus else 16,
        serve_replicas=max(1, gpus or cpus // 4),
    )


M = TypeVar("M", bound=BaseModel)


class SizedConfig(Protocol):
    """A training config that knows which of its fields a hardware profile fills."""

    def profile_update(self, profile: HardwareProfile) -> dict[str, BaseModel]: ...


Config = TypeVar("Config", bound=BaseModel)


def with_profile(config: Config, profile: HardwareProfile) -> Config:
    """The config with the profile's values in every field its YAML left unset (see each config's
    `profile_update`)."""
    update = cast(SizedConfig, config).profile_update(profile)
    resolved = {**config.model_dump(), **{name: part.model_dump() for name, part in update.items()}}
    return parse_config(resolved, type(config))


def fill_unset(model: M, **values) -> M:
    """A copy of `model` with `values` in the fields its YAML did not set."""
    return model.model_copy(update={k: v for k, v in values.items() if k not in model.model_fields_set})


def workers_for(workers: WorkerSettings, profile: HardwareProfile) -> WorkerSettings:
    """Ray Train workers sized by the profile, where the YAML left them unset."""
    return fill_unset(workers, num_workers=profile.learners, use_gpu=profile.gpus_per_learner > 0)


def detect_hardware() -> Hardware:
    """This machine: usable CPUs (affinity and cgroup quota), memory (cgroup limit too), CUDA GPUs."""
    return Hardware(cpus=_usable_cpus(), memory_gb=_memory_bytes() / 1024**3, gpus=_cuda_gpus())


def cluster_hardware() -> Hardware:
    """The Ray cluster this process is attached to (ray.init must have run), from its resources."""
    import ray

    resources = ray.cluster_resources()
    return Hardware(cpus=int(resources.get("CPU", 1)), memory_gb=resources.get("memory", 0) / 1024**3,
                    gpus=int(resources.get("GPU", 0)))


CGROUP = Path("/sys/fs/cgroup")


def _usable_cpus() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _read_cgroup("cpu.max")  # "max 100000" or "<quota> <period>" (cgroup v2)
    if quota and not quota.startswith("max"):
        limit, period = (int(part) for part in quota.split())
        cpus = min(cpus, max(1, math.ceil(limit / period)))
    return cpus


def _memory_bytes() -> int:
    try:
        import psutil

        total = psutil.virtual_memory().total
    except ImportError:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        total = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))
    limit = _read_cgroup("memory.max")  # "max" or bytes (cgroup v2)
    return min(total, int(limit)) if limit and limit.isdigit() else total


def _read_cgroup(name: str) -> str | None:
    try:
        return (CGROUP / name).read_text().strip()
    except OSError:
        return None


def _cuda_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
