"""The `recursa` command: bad configs and paths exit 2 with one line naming the field, no
traceback, before Ray starts; `--help` works on every command.

Each error command imports torch and RLlib first (about 3 s of CPU a process, and side by side on
2 cores they are slower, not faster), so the installed console script runs once per command
(`train gift`, `eval gift`) in one module fixture, and further error variants go through
`recursa.cli.main` in this process, the function the console script calls, with Ray's start
replaced by a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RECURSA = Path(sys.executable).parent / "recursa"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "unknown_key.yaml").write_text("ppo:\n  lrr: 0.1\n")
    return root


def _env(ray_tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Never touch the Ray cluster running on this machine: an unreachable address, and a private
    # temp dir that a (wrongly) started local Ray instance would write its session into.
    env["RAY_ADDRESS"] = "127.0.0.1:1"
    env["RAY_TMPDIR"] = str(ray_tmp)
    env["COLUMNS"] = "200"
    return env


ERROR_CASES = {
    "unknown_key": ["train", "gift", "--config", "unknown_key.yaml"],
    "missing_checkpoint": ["eval", "gift", "--checkpoint", "/does/not/exist"],
}


class Outcome:
    def __init__(self, returncode: int, stdout: str, stderr: str, seconds: float, ray_tmp: Path):
        self.returncode, self.stdout, self.stderr, self.seconds = returncode, stdout, stderr, seconds
        self.ray_files = sorted(p.name for p in ray_tmp.iterdir())


@pytest.fixture(scope="module")
def outcomes(workdir) -> dict[str, Outcome]:
    """Run every error case once, each with its own Ray temp dir."""
    results = {}
    for name, args in ERROR_CASES.items():
        ray_tmp = workdir / f"ray_{name}"
        ray_tmp.mkdir()
        start = time.perf_counter()
        proc = subprocess.run(
            [str(RECURSA), *args], cwd=workdir, env=_env(ray_tmp),
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        results[name] = Outcome(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start, ray_tmp)
    return results


def assert_one_line_error(outcome: Outcome, field: str) -> str:
    assert outcome.returncode == 2, (outcome.returncode, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr and "Traceback" not in outcome.stdout
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert field in lines[0], lines[0]
    # validated before Ray: no local Ray session was created, and it took seconds, not a cluster start
    assert outcome.ray_files == [], outcome.ray_files
    assert outcome.seconds < 60, outcome.seconds
    return lines[0]


def test_unknown_key_exits_2_naming_the_field(outcomes):
    line = assert_one_line_error(outcomes["unknown_key"], "ppo.lrr")
    assert "unknown key" in line


def test_missing_checkpoint_exits_2_naming_checkpoint(outcomes):
    line = assert_one_line_error(outcomes["missing_checkpoint"], "checkpoint")
    assert "/does/not/exist" in line


# --- the same path in-process: recursa.cli.main is the console script's entry point ------------


@pytest.fixture
def run_main(recursa_cli, monkeypatch, tmp_path):
    """`recursa ARGS` run in tmp_path, where Ray must not be started: (exit code, stderr)."""
    import recursa.core.runtime

    def no_ray(*args, **kwargs):
        raise AssertionError("init_ray called before the config was validated")

    monkeypatch.setattr(recursa.core.runtime, "init_ray", no_ray)
    monkeypatch.chdir(tmp_path)
    return recursa_cli


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("runners:\n  num_env_runners: -1\n", "runners.num_env_runners"),
        ("ppo:\n  lr: -1\n", "ppo.lr"),
        ("env:\n  split: val\n", "env.split"),
        ("env:\n  num_candidates: 4\n  max_recommendations: 5\n", "max_recommendations"),
    ],
    ids=["runners", "lr", "split", "recommendations"],
)
def test_bad_value_exits_2_naming_the_field(run_main, tmp_path, yaml_text, field):
    (tmp_path / "bad.yaml").write_text(yaml_text)
    code, stderr = run_main(["train", "gift", "--config", "bad.yaml"])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], stderr
    assert "Traceback" not in stderr


def test_missing_config_file_exits_2(run_main):
    code, stderr = run_main(["train", "gift", "--config", "missing.yaml"])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.yaml" in lines[0] and "not found" in lines[0], stderr


def test_quickstart_with_bad_config_exits_2(run_main, tmp_path):
    (tmp_path / "bad.yaml").write_text("ppo:\n  lrr: 1\n")
    code, stderr = run_main(["quickstart", "--config", "bad.yaml"])
    assert code == 2 and stderr.strip() == "error: ppo.lrr: unknown key"


def test_serve_with_an_unknown_mode_exits_2(run_main):
    code, stderr = run_main(["serve", "--config", "serve/recsys.yaml", "--mode", "fast"])
    assert code == 2 and "--mode" in stderr and all(m in stderr for m in ("default", "throughput", "haproxy")), stderr


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [[], ["train", "gift"], ["eval", "gift"], ["data", "gift"], ["quickstart"]],
    ids=["recursa", "train-gift", "eval-gift", "data-gift", "quickstart"],
)
def test_help_works(args, tmp_path):
    result = subprocess.run(
        [str(RECURSA), *args, "--help"], cwd=tmp_path, env=_env(tmp_path),
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "Traceback" not in result.stderr
    if args:
        assert " ".join(args) in result.stdout  # the usage line names the command
    if args == ["data", "gift"]:
        assert "--out" in result.stdout
    if args == ["eval", "gift"]:
        assert "--checkpoint" in result.stdout
    if not args:
        for command in ("train", "eval", "data", "quickstart"):
            assert command in result.stdout
