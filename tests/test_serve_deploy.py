"""`serve deploy` to a running cluster, as the README describes it: serve/llm.yaml (with absolute
paths and a free port) is deployed with Ray's own CLI to a locally started head with token
authentication, answers OpenAI's client, and is shut down again; without the token the deploy is
refused."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import openai
import pytest
import yaml

from local_head import (
    BIN,
    free_ports,
    ray_head,  # noqa: F401  (fixture)
)

REPO = Path(__file__).resolve().parents[1]


def _serve(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "serve"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _applications(address: str, env: dict, cwd: Path) -> dict:
    status = _serve(["status", "-a", address], env, cwd)
    assert status.returncode == 0, status.stdout + status.stderr
    return yaml.safe_load(status.stdout).get("applications") or {}


def _wait_for_status(address: str, env: dict, cwd: Path, wanted: str | None, timeout_s: float = 240) -> None:
    """Poll `serve status` until the llm application has status `wanted` (None: no such application)."""
    deadline = time.monotonic() + timeout_s
    while (status := _applications(address, env, cwd).get("llm", {}).get("status")) != wanted:
        assert status not in ("DEPLOY_FAILED", "UNHEALTHY"), _applications(address, env, cwd)
        assert time.monotonic() < deadline, f"llm is {status}, not {wanted}, after {timeout_s} s"
        time.sleep(2)


def _cluster_config(model: Path, port: int) -> dict:
    """serve/llm.yaml as it would be deployed on a cluster: an absolute model path (no adapters) and
    one small replica, replicas importing this checkout's recursa."""
    config = yaml.safe_load((REPO / "serve" / "llm.yaml").read_text())
    config["http_options"]["port"] = port
    app = config["applications"][0]
    app["args"].update(model=str(model), adapters={}, max_new_tokens=8)
    app["runtime_env"] = {"env_vars": {"PYTHONPATH": str(REPO / "platform")}}
    deployment = app["deployments"][0]
    del deployment["autoscaling_config"]
    deployment.update(num_replicas=1, ray_actor_options={"num_cpus": 0.5})
    return config


@pytest.mark.fault
def test_serve_deploy_to_a_running_cluster(ray_head, tiny_llm, tmp_path):  # noqa: F811
    address, env = ray_head
    http_port, = free_ports(1)
    config = tmp_path / "llm.yaml"
    config.write_text(yaml.safe_dump(_cluster_config(tiny_llm, http_port)))
    with_token = {**env, "RAY_AUTH_MODE": "token"}  # Ray's CLIs then send the token in RAY_AUTH_TOKEN_PATH

    refused = _serve(["deploy", str(config), "-a", address], {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"},
                     tmp_path)
    assert refused.returncode != 0 and "Authentication required" in refused.stderr, refused.stdout + refused.stderr
    assert _applications(address, with_token, tmp_path) == {}

    deployed = _serve(["deploy", str(config), "-a", address], with_token, tmp_path)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    _wait_for_status(address, with_token, tmp_path, "RUNNING")

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{http_port}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["recursa-llm"]
    completion = client.completions.create(model="recursa-llm", prompt="Question: 2 + 3\nAnswer:", max_tokens=4)
    assert completion.model == "recursa-llm" and isinstance(completion.choices[0].text, str)
    assert 1 <= completion.usage.completion_tokens <= 4

    shut = _serve(["shutdown", "-a", address, "-y"], with_token, tmp_path)
    assert shut.returncode == 0, shut.stdout + shut.stderr
    _wait_for_status(address, with_token, tmp_path, None)  # deleted asynchronously
