"""Shared fixtures: one local Ray instance for every test that needs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests never reach a model hub: every LLM they load is the tiny one made below.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Test models are tiny: one thread is faster than two and immune to a busy machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance with 2 CPUs, shared by the whole test session."""
    import ray

    # With the dashboard: its state API is how Ray Train frees the workers of a stopped Tune trial.
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=True,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory) -> Path:
    """The tiny randomly initialised Llama and its tokenizer, created once per session."""
    from recursa.llm.tiny import create_tiny_llm, default_corpus

    return create_tiny_llm(tmp_path_factory.mktemp("tiny") / "model", default_corpus(), seed=0)


@pytest.fixture
def recursa_cli(capfd):
    """Run `recursa ARGS` in this process (the console script's entry point): (exit code, stderr)."""
    from recursa.cli import main

    def run(args: list) -> tuple[int, str]:
        capfd.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(arg) for arg in args])
        return exit_info.value.code, capfd.readouterr().err

    return run


@pytest.fixture
def run_main(recursa_cli, monkeypatch, tmp_path):
    """`recursa ARGS` run in tmp_path, where Ray must not be started: (exit code, stderr)."""
    import recursa.core.runtime

    def no_ray(*args, **kwargs):
        raise AssertionError("init_ray called before the config was validated")

    monkeypatch.setattr(recursa.core.runtime, "init_ray", no_ray)
    monkeypatch.chdir(tmp_path)
    return recursa_cli
