"""Starting Ray at entrypoints: attach to a running cluster, or start an embedded instance."""

from __future__ import annotations

import os

import ray


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
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 log_to_driver=log_to_driver)
        return "local"
