"""Ray jobs: load a job spec (`jobs/<name>.yaml`), submit it with the cluster's auth token, follow it.

A job uploads its working dir (the repository, less the spec's `excludes`) and runs its entrypoint
there on the cluster's head node; recursa's specs run `python -m recursa.cli ...` with
`PYTHONPATH: platform`, so the job imports the uploaded package rather than an installed one.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import Field
from ray.job_submission import JobStatus, JobSubmissionClient

from recursa.core.config import ConfigError, StrictModel, load_config

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


class JobRuntimeEnv(StrictModel):
    """The `runtime_env` of a Ray job: the directory uploaded as its working dir, and its environment."""

    working_dir: str = "."  # relative paths resolve against the directory `recursa submit` runs in
    # Left out of the upload: run outputs, environments, caches and large data.
    excludes: list[str] = Field(default_factory=lambda: [
        ".git", ".venv/", "runs/", "data/", "bench/results/", "**/__pycache__/", "*.egg-info/",
    ])
    env_vars: dict[str, str] = Field(default_factory=dict)
    pip: list[str] | None = None  # packages installed for the job, on top of the cluster's


class JobSpec(StrictModel):
    """A Ray job spec (`jobs/<name>.yaml`), submitted by `recursa submit`."""

    entrypoint: str = Field(min_length=1)  # e.g. "python -m recursa.cli train gift --config jobs/configs/gift_ppo.yaml"
    runtime_env: JobRuntimeEnv = JobRuntimeEnv()
    entrypoint_num_cpus: float | None = Field(None, ge=0.0)
    entrypoint_num_gpus: float | None = Field(None, ge=0.0)
    entrypoint_memory: int | None = Field(None, ge=0)  # bytes
    metadata: dict[str, str] = Field(default_factory=dict)
    submission_id: str | None = None  # Ray picks one when unset; a used id is refused by the cluster


def load_job_spec(path: str | Path) -> tuple[JobSpec, Path]:
    """Validate a job spec and return it with its working dir, resolved against the current directory.

    What the entrypoint runs must reach the cluster: a script (`python <script>`) and the `--config`
    file must be inside the working dir; a module (`python -m <module>`) must be there too, on the
    job's PYTHONPATH (e.g. `platform`), or be installed.
    """
    spec = load_config(path, JobSpec)
    working_dir = Path(spec.runtime_env.working_dir).resolve()
    if not working_dir.is_dir():
        raise ConfigError(f"runtime_env.working_dir: not a directory: {working_dir}")
    args = shlex.split(spec.entrypoint)
    module = _entrypoint_module(args)
    if module is not None and not _module_reachable(module, working_dir, spec.runtime_env.env_vars.get("PYTHONPATH", "")):
        raise ConfigError(f"entrypoint: module {module} not found in the working dir {working_dir} "
                          "(nor on its PYTHONPATH) and not installed")
    for role, name in _entrypoint_files(args).items():
        file = (working_dir / name).resolve()
        if not file.is_file() or not file.is_relative_to(working_dir):
            raise ConfigError(f"entrypoint: {role} {name} not found in the working dir {working_dir}")
    return spec, working_dir


def _is_python(args: list[str]) -> bool:
    return len(args) > 1 and Path(args[0]).name.startswith("python")


def _entrypoint_module(args: list[str]) -> str | None:
    """The module of a `python -m <module> ...` entrypoint."""
    if _is_python(args) and args[1] == "-m" and len(args) > 2:
        return args[2]
    return None


def _module_reachable(module: str, working_dir: Path, pythonpath: str) -> bool:
    """Whether `python -m module` finds the module in the job: under the working dir (the job's
    current directory) or an entry of its PYTHONPATH there, else installed where it is submitted from."""
    import importlib.util

    for root in [working_dir, *(working_dir / entry for entry in pythonpath.split(os.pathsep) if entry)]:
        base = root.joinpath(*module.split("."))
        if base.with_suffix(".py").is_file() or (base / "__main__.py").is_file():
            return True
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def _entrypoint_files(args: list[str]) -> dict[str, str]:
    """The files an entrypoint names: its Python script and its --config."""
    files = {}
    if _is_python(args) and not args[1].startswith("-"):
        files["script"] = args[1]
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            files["config"] = args[i + 1]
        elif arg.startswith("--config="):
            files["config"] = arg.removeprefix("--config=")
    return files


def auth_headers() -> dict[str, str]:
    """The cluster's auth token as an `Authorization: Bearer` header, or {} when there is no token.

    Looked up where Ray itself looks (Ray's token loader): the RAY_AUTH_TOKEN variable, the file named
    by RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token. Ray's client adds the header only when this
    process has RAY_AUTH_MODE=token; recursa sends it regardless.
    """
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]  # compiled; its stub lacks it

    return AuthenticationTokenLoader.instance().get_token_for_http_header(ignore_auth_mode=True)


@contextmanager
def job_server(address: str) -> Iterator[JobSubmissionClient]:
    """A client of the job server (the dashboard) at `address`; its failures become ConfigErrors.

    `address` wins over RAY_ADDRESS, which Ray's client would otherwise prefer.
    """
    from ray.exceptions import AuthenticationError

    previous = os.environ.get("RAY_API_SERVER_ADDRESS")
    os.environ["RAY_API_SERVER_ADDRESS"] = address
    try:
        client = JobSubmissionClient(address, headers=auth_headers())
        yield client
    except ConnectionError as error:
        raise ConfigError(f"address: cannot reach the Ray job server at {address}: {_first_line(error)}") from None
    except AuthenticationError as error:
        raise ConfigError(f"address: {_first_line(error)} (token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
                          "or ~/.ray/auth_token)") from None
    except RuntimeError as error:  # the job server's answer to a bad request, e.g. an unknown job id
        raise ConfigError(f"job: {_first_line(error)}") from None
    finally:
        if previous is None:
            os.environ.pop("RAY_API_SERVER_ADDRESS", None)
        else:
            os.environ["RAY_API_SERVER_ADDRESS"] = previous


def submit(client: JobSubmissionClient, spec: JobSpec, working_dir: Path) -> str:
    """Submit the spec's entrypoint with its runtime env and resources; return the submission id."""
    runtime_env: dict[str, Any] = {"working_dir": str(working_dir), "excludes": spec.runtime_env.excludes}
    if spec.runtime_env.env_vars:
        runtime_env["env_vars"] = spec.runtime_env.env_vars
    if spec.runtime_env.pip:
        runtime_env["pip"] = spec.runtime_env.pip
    return client.submit_job(
        entrypoint=spec.entrypoint,
        runtime_env=runtime_env,
        entrypoint_num_cpus=spec.entrypoint_num_cpus,
        entrypoint_num_gpus=spec.entrypoint_num_gpus,
        entrypoint_memory=spec.entrypoint_memory,
        metadata=spec.metadata or None,
        submission_id=spec.submission_id,
    )


def follow(client: JobSubmissionClient, job_id: str, write: Callable[[str], object]) -> JobStatus:
    """Pass the job's logs to `write` as they come until it ends; return its final status."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(tail())
    while not (status := client.get_job_status(job_id)).is_terminal():  # the stream may close first
        time.sleep(0.5)
    return status


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
