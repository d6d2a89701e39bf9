"""Shared fixtures: one local Ray instance for every test that needs it."""

from __future__ import annotations

import pytest
import torch

# Test models are tiny: one thread is faster than two and immune to a busy machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance with 2 CPUs, shared by the whole test session."""
    import ray

    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False,
             log_to_driver=False)
    yield ray
    ray.shutdown()
