"""Ray jobs: job specs are validated before anything is sent, every shipped spec names an entrypoint
and config that exist, and a job submitted to a locally started head (token authentication on)
succeeds and its logs can be read."""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from local_head import ray_head  # noqa: F401  (fixture)
from recursa.core.config import ConfigError
from recursa.core.jobs import auth_headers, load_job_spec

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def run_main(recursa_cli, monkeypatch, tmp_path):
    """`recursa ARGS` run in tmp_path: (exit code, stderr)."""
    monkeypatch.chdir(tmp_path)
    return recursa_cli


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("entrypoint: python jobs/run.py\nresources: {CPU: 1}\n", "resources: unknown key"),
        ("entrypoint: python jobs/run.py\nentrypoint_num_cpus: -1\n", "entrypoint_num_cpus"),
        ("entrypoint: python jobs/run.py\nruntime_env:\n  workdir: .\n", "runtime_env.workdir"),
        ("entrypoint: python jobs/missing.py\n", "entrypoint: script jobs/missing.py"),
        ("entrypoint: python jobs/run.py --config jobs/configs/missing.yaml\n", "entrypoint: config jobs/configs/missing.yaml"),
        ("entrypoint: python ../outside.py\n", "entrypoint: script ../outside.py"),
        ("entrypoint: python jobs/run.py\nruntime_env:\n  working_dir: nowhere\n", "runtime_env.working_dir"),
        ("entrypoint: python -m nowhere.cli train\n", "entrypoint: module nowhere.cli not found"),
        ("entrypoint: python -m recursa.cli train gift --config jobs/configs/missing.yaml\n",
         "entrypoint: config jobs/configs/missing.yaml"),
    ],
    ids=["unknown-key", "negative-cpus", "unknown-runtime-env-key", "missing-script", "missing-config",
         "script-outside-working-dir", "missing-working-dir", "missing-module", "module-with-missing-config"],
)
def test_bad_spec_exits_2_naming_the_field_before_contacting_a_cluster(run_main, tmp_path, spec, field):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "run.py").write_text("print('hi')\n")
    (tmp_path.parent / "outside.py").write_text("print('hi')\n")
    (tmp_path / "bad.yaml").write_text(spec)
    code, stderr = run_main(["submit", "bad.yaml", "--address", "http://127.0.0.1:1"])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {field}"), lines[0]


def test_unreachable_job_server_exits_2_naming_the_address(run_main):
    code, stderr = run_main(["jobs", "list", "--address", "http://127.0.0.1:1"])
    assert code == 2 and stderr.startswith("error: address: cannot reach the Ray job server at http://127.0.0.1:1")


def test_a_module_entrypoint_is_found_on_the_jobs_pythonpath(run_main, tmp_path):
    """`python -m pkg.job` runs in the job's working dir with the spec's PYTHONPATH: a module there
    is found although nothing installs it here."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "job.py").write_text("print('hi')\n")
    (tmp_path / "spec.yaml").write_text("entrypoint: python -m pkg.job\n")
    with pytest.raises(ConfigError, match=r"module pkg\.job not found"):
        load_job_spec(tmp_path / "spec.yaml")
    (tmp_path / "spec.yaml").write_text("entrypoint: python -m pkg.job\nruntime_env:\n  env_vars: {PYTHONPATH: src}\n")
    spec, working_dir = load_job_spec(tmp_path / "spec.yaml")
    assert working_dir == tmp_path and spec.entrypoint == "python -m pkg.job"


SPECS = sorted((REPO / "jobs").glob("*.yaml"))


def test_every_job_is_a_recursa_command_without_a_shim():
    assert {p.stem for p in SPECS} >= {"quickstart", "llm_demo", "train_gift", "train_fc", "train_llm", "tune_gift",
                                       "tune_fc", "eval_gift", "eval_bfcl", "eval_llm"}
    assert not list((REPO / "jobs").glob("*.py"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_spec_runs_a_recursa_command_with_an_existing_config(recursa_cli, monkeypatch, path):
    monkeypatch.chdir(REPO)  # specs are submitted from the repository root
    spec, working_dir = load_job_spec(path)  # raises if the module or --config is missing
    args = shlex.split(spec.entrypoint)
    assert working_dir == REPO and args[:3] == ["python", "-m", "recursa.cli"]
    assert args[3:5] == path.stem.split("_", 1)  # jobs/train_gift.yaml runs `recursa train gift`
    assert spec.runtime_env.env_vars.get("PYTHONPATH") == "platform"  # the uploaded recursa runs
    assert {"runs/", ".venv/", "bench/results/"} <= set(spec.runtime_env.excludes)
    if path.stem.startswith(("train_", "tune_")):
        assert "--config" in args
    code, stderr = recursa_cli([*args[3:], "--help"])  # the command and every option it is given exist
    assert code == 0, stderr


def test_spec_from_elsewhere_names_the_working_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"entrypoint: config jobs/configs/gift_ppo\.yaml not found in the working dir"):
        load_job_spec(REPO / "jobs" / "train_gift.yaml")


def test_auth_token_comes_from_ray_auth_token_path(monkeypatch, tmp_path):
    from ray._raylet import AuthenticationTokenLoader

    token = secrets.token_hex(32)
    (tmp_path / "token").write_text(token)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # sent even where Ray's client would not send it
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    AuthenticationTokenLoader.instance().reset_cache()
    try:
        assert auth_headers() == {"authorization": f"Bearer {token}"}
    finally:
        monkeypatch.undo()
        AuthenticationTokenLoader.instance().reset_cache()


# --- a job on a locally started head ------------------------------------------------------------


def _recursa(args: list[str], env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "recursa"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.fault
def test_job_on_a_local_head_succeeds_and_its_logs_can_be_read(ray_head, tmp_path):  # noqa: F811
    address, env = ray_head
    with pytest.raises(urllib.error.HTTPError) as refused:  # the job server requires the token
        urllib.request.urlopen(f"{address}/api/jobs/", timeout=10)
    assert refused.value.code == 401

    spec = tmp_path / "hello.yaml"
    spec.write_text(f"entrypoint: python tests/job_hello.py\n"
                    f"runtime_env:\n  working_dir: {REPO}\n  env_vars: {{PYTHONPATH: platform}}\n"
                    f"metadata: {{test: fault}}\n")
    submitted = _recursa(["submit", str(spec), "--address", address], env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = re.search(r"submitted (\S+)", submitted.stdout).group(1)
    assert "hello from recursa job" in submitted.stdout  # streamed while it ran
    assert submitted.stdout.rstrip().endswith(f"{job_id}: SUCCEEDED")
    uploaded = re.search(r"recursa imported from (\S+)", submitted.stdout).group(1)
    assert not uploaded.startswith(str(REPO)), uploaded  # the job ran the uploaded copy of the package

    logs = _recursa(["jobs", "logs", job_id, "--address", address], env)
    assert logs.returncode == 0 and "hello from recursa job" in logs.stdout, logs.stderr
    status = _recursa(["jobs", "status", job_id, "--address", address], env)
    assert status.returncode == 0 and f"{job_id}: SUCCEEDED" in status.stdout
    listed = _recursa(["jobs", "list", "--address", address], {**env, "COLUMNS": "200"})
    assert listed.returncode == 0 and job_id in listed.stdout


@pytest.mark.fault
def test_a_recursa_command_runs_as_a_job_as_the_shipped_specs_run_it(ray_head, tmp_path):  # noqa: F811
    address, env = ray_head
    spec = tmp_path / "doctor.yaml"
    # This venv's python by path: the head's PATH may lead elsewhere (a cluster's image has one python).
    spec.write_text(f"entrypoint: {BIN / 'python'} -m recursa.cli doctor --json\n"
                    f"runtime_env:\n  working_dir: {REPO}\n  env_vars: {{PYTHONPATH: platform}}\n")
    submitted = _recursa(["submit", str(spec), "--address", address], env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert '"cpus"' in submitted.stdout and submitted.stdout.rstrip().endswith("SUCCEEDED")


@pytest.mark.fault
def test_failed_job_exits_1_with_its_status(ray_head, tmp_path):  # noqa: F811
    address, env = ray_head
    spec = tmp_path / "fail.yaml"
    spec.write_text(f"entrypoint: python -c \"import sys; print('failing on purpose'); sys.exit(3)\"\n"
                    f"runtime_env:\n  working_dir: {tmp_path}\n")
    submitted = _recursa(["submit", str(spec), "--address", address], env)
    assert submitted.returncode == 1, submitted.stdout + submitted.stderr
    assert "failing on purpose" in submitted.stdout and submitted.stdout.rstrip().endswith("FAILED")
