"""A Ray head started for a test module: its own process group, free ports, a private temp dir and
token authentication, so that no other Ray instance on the machine is touched. Import the fixture
into a test module with `from local_head import ray_head  # noqa: F401  (fixture)`."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def ray_head():
    """A one-CPU Ray head with its dashboard (the job server, Serve's REST API) and token
    authentication, started by `ray start --block` in its own process group. Yields (dashboard
    address, environment for Ray's CLIs: RAY_AUTH_TOKEN_PATH names the head's token)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))  # short: Ray's socket paths have a limit
    (temp_dir / "token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN")}
    env["RAY_AUTH_TOKEN_PATH"] = str(temp_dir / "token")
    gcs, dashboard, client, agent_http, agent_grpc, runtime_env, metrics, node_manager, objects = free_ports(9)
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--num-cpus=1", "--num-gpus=0",
         f"--object-store-memory={100 * 1024**2}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
         f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent_http}",
         f"--dashboard-agent-grpc-port={agent_grpc}", f"--runtime-env-agent-port={runtime_env}",
         f"--metrics-export-port={metrics}", f"--node-manager-port={node_manager}", f"--object-manager-port={objects}"],
        env={**env, "RAY_AUTH_MODE": "token"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_job_server(address, temp_dir / "token", head)
        yield address, env
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # whatever is left of this head's process group
        subprocess.run(["rm", "-rf", str(temp_dir)], check=False)


def _wait_for_job_server(address: str, token_file: Path, head: subprocess.Popen, timeout_s: float = 180) -> None:
    request = urllib.request.Request(f"{address}/api/jobs/",
                                     headers={"Authorization": f"Bearer {token_file.read_text()}"})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert head.poll() is None, "ray start exited"
        try:
            with urllib.request.urlopen(request, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise TimeoutError(f"no job server at {address} after {timeout_s} s")
