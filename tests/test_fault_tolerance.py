"""Gift PPO survives faults on a local multi-node cluster (`ray.cluster_utils.Cluster`): a worker
node killed mid-run, an env runner's process killed mid-run. Training goes on with the surviving
env runner, the lost one is restarted (on a new node when its own is gone), gets the current
weights, and samples again.

Each scenario runs in a child process (tests/fault_scenarios.py), for three reasons: a process
holds one `ray.init`, and the slow tests of the same pytest run hold theirs (conftest's
`ray_session`); the child's RAY_TMPDIR is a private directory, so the Cluster's address file
(`ray_current_cluster`), sessions and sockets stay out of /tmp/ray, where `address="auto"` and the
other Ray instances on the machine would find them; and the child leads its own process group,
killed at the end, so no node it started outlives the test, even when it overruns its time limit.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 300  # a bound on a hung cluster, not a performance check


def run_scenario(name: str, tmp_path: Path) -> dict:
    """Run `tests/fault_scenarios.py name` with its own Ray temp dir and token; its JSON result."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rf", dir="/tmp"))  # short: Ray's socket paths have a limit
    (temp_dir / "token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # nothing of another Ray instance
    env.update(RAY_TMPDIR=str(temp_dir), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(temp_dir / "token"),
               RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "platform"), env.get("PYTHONPATH")])))
    result, log = tmp_path / "result.json", tmp_path / "scenario.log"
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, str(REPO / "tests" / "fault_scenarios.py"), name, str(result)],
                                 env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        code = child.wait(timeout=TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        code = "killed at the time limit"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # whatever is left of the child's cluster
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert code == 0, f"scenario {name}: exit {code}\n" + log.read_text()[-5000:]
    return json.loads(result.read_text())


def assert_training_went_on(result: dict) -> None:
    """Every iteration sampled and reported returns; the iteration after the fault ran on one env
    runner; at the end both are healthy and act with the learner's weights."""
    iterations = result["iterations"]
    steps = [iteration["env_steps"] for iteration in iterations]
    assert all(before < after for before, after in itertools.pairwise(steps)), steps
    assert all(math.isfinite(iteration["return"]) for iteration in iterations), iterations
    healthy = [iteration["healthy"] for iteration in iterations]
    assert healthy[:3] == [2, 2, 1] and healthy[-1] == 2, f"healthy env runners after each iteration: {healthy}"
    assert len(result["after"]) == 2 and all(runner["current_weights"] for runner in result["after"]), result["after"]


@pytest.mark.fault
def test_ppo_finishes_after_a_worker_node_is_killed(tmp_path):
    result = run_scenario("node_loss", tmp_path)
    assert {runner["node"] for runner in result["before"]} == {result["head"], result["lost"]}
    assert_training_went_on(result)
    assert {runner["node"] for runner in result["after"]} == {result["head"], result["replacement"]}


@pytest.mark.fault
def test_killed_env_runner_is_replaced_and_training_goes_on(tmp_path):
    result = run_scenario("runner_kill", tmp_path)
    assert_training_went_on(result)
    after = {runner["pid"] for runner in result["after"]}
    assert result["killed"] not in after and len(after) == 2
    assert {runner["node"] for runner in result["after"]} == {runner["node"] for runner in result["before"]}
