"""Serving what was trained, as the README describes it:

- `make serve` after a (small) quickstart exports the policy and answers POST /gift/recommend, and
  exports again only when the policy is newer than the export (slow);
- `recursa serve` on a model its replicas cannot load exits 1 with one line instead of waiting on
  a replica restart loop (slow);
- `serve deploy` to a running cluster (a locally started head with token authentication): serve/llm.yaml
  with absolute paths answers OpenAI's client and is shut down again, without the token the deploy
  is refused, and an application whose model is missing fails instead of restarting (fault).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import openai
import pytest
import requests
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


def _gift_config(export_dir: str, port: int) -> dict:
    """serve/gift.yaml with its model at `export_dir` and the proxy on `port`."""
    config = yaml.safe_load((REPO / "serve" / "gift.yaml").read_text())
    config["http_options"]["port"] = port
    config["applications"][0]["args"]["export_dir"] = export_dir
    return config


@pytest.mark.fault
def test_serve_deploy_of_a_missing_model_fails_instead_of_restarting(ray_head, tmp_path):  # noqa: F811
    address, env = ray_head
    with_token = {**env, "RAY_AUTH_MODE": "token"}
    missing = tmp_path / "never_exported"
    config = _gift_config(str(missing), free_ports(1)[0])
    config["applications"][0]["runtime_env"] = {"env_vars": {"PYTHONPATH": str(REPO / "platform")}}
    (tmp_path / "gift.yaml").write_text(yaml.safe_dump(config))

    deployed = _serve(["deploy", str(tmp_path / "gift.yaml"), "-a", address], with_token, tmp_path)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    deadline = time.monotonic() + 240
    while (gift := _applications(address, with_token, tmp_path).get("gift", {})).get("status") != "DEPLOY_FAILED":
        assert gift.get("status") != "RUNNING", gift
        assert time.monotonic() < deadline, f"gift is {gift.get('status')}, not DEPLOY_FAILED, after 240 s"
        time.sleep(2)
    assert str(missing) in yaml.safe_dump(gift), gift  # the replica's error names the path
    shut = _serve(["shutdown", "-a", address, "-y"], with_token, tmp_path)
    assert shut.returncode == 0, shut.stdout + shut.stderr


def _local_ray_env(tmp_path: Path) -> dict:
    """What `recursa serve` needs to start a Ray of its own here: this checkout's recursa, a fresh
    local instance (never another one on this machine) and a token file of its own."""
    (tmp_path / "token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "PYTHONPATH": str(REPO / "platform"), "RAY_ADDRESS": "local", "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(tmp_path / "token")}


@pytest.mark.slow
def test_recursa_serve_exits_with_one_line_when_replicas_cannot_load_the_model(tmp_path):
    corrupt = tmp_path / "gift_export"
    corrupt.mkdir()
    (corrupt / "policy.json").write_text("{}")
    (corrupt / "policy.int8.onnx").write_text("not an ONNX model")  # present, so only a replica finds out
    (tmp_path / "gift.yaml").write_text(yaml.safe_dump(_gift_config(str(corrupt), free_ports(1)[0])))
    served = subprocess.run([str(BIN / "recursa"), "serve", "--config", "gift.yaml"], cwd=tmp_path,
                            env=_local_ray_env(tmp_path), capture_output=True, text=True, timeout=300)
    errors = [line for line in served.stderr.splitlines() if line.startswith("error:")]
    assert served.returncode == 1 and len(errors) == 1, served.stderr[-3000:]
    assert errors[0].startswith("error: applications.gift: failed to deploy:") and str(corrupt) in errors[0]
    assert "recursa export trm" in errors[0] and "Traceback" not in served.stderr


def _make(target: str, cwd: Path, *options: str) -> list[str]:
    """`make TARGET` with the repository's Makefile in `cwd`, on this environment's recursa (never
    reinstalled)."""
    return ["make", "-f", str(REPO / "Makefile"), "-C", str(cwd), target, f"BIN={BIN}", "-o", str(BIN / "recursa"),
            *options]


def _stop(process: subprocess.Popen) -> None:
    """Ctrl-C to the process group (make, recursa and the Ray it started), then whatever is left."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=90)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def test_make_serve_without_a_trained_policy_says_to_run_make_demo(tmp_path):
    shutil.copytree(REPO / "serve", tmp_path / "serve")
    made = subprocess.run(_make("serve", tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert made.returncode != 0
    assert "no trained gift policy at runs/quickstart/policy: run `make demo` first" in made.stderr, made.stderr


@pytest.mark.slow
def test_make_serve_after_a_quickstart_answers_gift_recommend(ray_session, tmp_path):
    from rich.console import Console

    from recursa.gift.config import BCSettings, EvalSettings, PPOSettings, TrainGiftConfig
    from recursa.gift.quickstart import run_quickstart

    # What `make demo` writes (runs/quickstart/policy), from a much smaller budget.
    run_quickstart(TrainGiftConfig(name="quickstart", runs_dir=str(tmp_path / "runs"), iterations=1, checkpoint_every=1,
                                   bc=BCSettings(episodes=200, epochs=1), eval=EvalSettings(users=20),
                                   ppo=PPOSettings(train_batch_size=500, minibatch_size=250, num_epochs=1)),
                   Console(file=io.StringIO()))
    port, = free_ports(1)
    (tmp_path / "serve").mkdir()
    config = yaml.safe_load((REPO / "serve" / "gift.yaml").read_text())
    config["http_options"]["port"] = port  # the shipped file otherwise: runs/gift_export, relative
    (tmp_path / "serve" / "gift.yaml").write_text(yaml.safe_dump(config))

    env = _local_ray_env(tmp_path)
    log = tmp_path / "make_serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(_make("serve", tmp_path), cwd=tmp_path, env=env, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 420  # export (held-out report included), Ray start, a replica
        while "serving serve/gift.yaml until Ctrl-C" not in log.read_text():  # printed once the app runs
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        user = {"budget": 80.0, "age": 35, "occasion": "birthday", "relationship": "friend", "interests": ["books"]}
        answer = requests.post(f"http://127.0.0.1:{port}/gift/recommend", json={"user": user, "seed": 1}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "gift-trm" and len(body["candidates"]) == 8
        assert {item["item_id"] for item in body["recommendations"]} <= set(body["candidates"])
        assert all(call["ok"] for call in body["tool_calls"])
    finally:
        _stop(server)
    output = log.read_text()
    assert "recursa export trm --checkpoint runs/quickstart/policy --quantize int8 --out runs/gift_export" in output
    assert f"gift: http://127.0.0.1:{port}/gift" in output, output[-3000:]

    plan = subprocess.run(_make("serve", tmp_path, "-n"), capture_output=True, text=True, timeout=60)
    assert "recursa serve" in plan.stdout and "export trm" not in plan.stdout  # the export is up to date
    policy = tmp_path / "runs" / "quickstart" / "policy" / "policy.safetensors"
    os.utime(policy, (time.time() + 5, time.time() + 5))  # `make demo` ran again
    plan = subprocess.run(_make("serve", tmp_path, "-n"), capture_output=True, text=True, timeout=60)
    assert "export trm" in plan.stdout
