"""Fault-tolerance scenarios for tests/test_fault_tolerance.py, one per process:
`python tests/fault_scenarios.py SCENARIO RESULT.json` starts a `ray.cluster_utils.Cluster` of two
one-CPU nodes, trains the gift PPO on it with one env runner per node, breaks something mid-run,
trains on and writes what it saw to RESULT.json. Progress goes to stderr.

The caller provides the environment: RAY_TMPDIR (a private directory for the cluster's sessions,
sockets and address file) and token authentication (RAY_AUTH_MODE, RAY_AUTH_TOKEN_PATH).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np
import ray
from ray.cluster_utils import Cluster
from ray.rllib.core import DEFAULT_MODULE_ID

from recursa.core.config import RunnerSettings
from recursa.core.trm import TRMConfig
from recursa.gift.config import BCSettings, PPOSettings, TrainGiftConfig
from recursa.gift.ppo import build_ppo_config
from recursa.gift.train import iteration_metrics

# One CPU per node and per env runner: each node holds exactly one runner, and a runner that
# loses its node can only come back on a new one. Port 0: no clash with other Ray instances.
NODE = dict(num_cpus=1, object_store_memory=100 * 1024**2, dashboard_agent_listen_port=0)
CONFIG = TrainGiftConfig(
    model=TRMConfig(hidden_size=16, num_heads=2),
    ppo=PPOSettings(train_batch_size=200, minibatch_size=50, num_epochs=1),
    bc=BCSettings(enabled=False),
    runners=RunnerSettings(num_env_runners=2, num_envs_per_env_runner=1, num_cpus_per_env_runner=1),
)
MAX_RECOVERY_ITERATIONS = 60


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def runners(algo) -> list[dict]:
    """Node and process of every healthy remote env runner, and whether it acts with the learner's weights."""
    learner = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
    found = algo.env_runner_group.foreach_env_runner(
        lambda runner: (ray.get_runtime_context().get_node_id(), os.getpid(), runner.module.get_state()),
        local_env_runner=False,
    )
    return [{"node": node, "pid": pid,
             "current_weights": weights.keys() == learner.keys()
             and all(np.array_equal(weights[key], learner[key]) for key in learner)}
            for node, pid, weights in found]


def train(algo) -> dict:
    """One PPO iteration: what it reports, and the env runners healthy after it."""
    row = iteration_metrics(algo.train())
    healthy = algo.env_runner_group.num_healthy_remote_workers()
    log(f"iteration {row['iteration']:.0f}: {row['env_steps']:.0f} env steps, {healthy} healthy env runners")
    return {"env_steps": row["env_steps"], "return": row["episode_return_mean"], "healthy": healthy}


def train_until_recovered(algo) -> list[dict]:
    """Iterations until both env runners are healthy (at most MAX_RECOVERY_ITERATIONS), then one more."""
    iterations = [train(algo)]
    while iterations[-1]["healthy"] < 2 and len(iterations) < MAX_RECOVERY_ITERATIONS:
        iterations.append(train(algo))
    log("both env runners healthy" if iterations[-1]["healthy"] == 2 else "gave up waiting for the env runner")
    return [*iterations, train(algo)]


def node_loss(cluster: Cluster, algo) -> dict:
    """Two iterations; the worker node crashes (all its processes SIGKILLed); one iteration on the
    head's env runner alone; a new node joins; iterations until its env runner is back; one more."""
    before = runners(algo)
    iterations = [train(algo), train(algo)]
    lost = next(iter(cluster.worker_nodes))
    cluster.remove_node(lost, allow_graceful=False)
    log("worker node killed")
    iterations.append(train(algo))
    replacement = cluster.add_node(**NODE)
    log("replacement node added")
    iterations += train_until_recovered(algo)
    return {"head": cluster.head_node.node_id, "lost": lost.node_id, "replacement": replacement.node_id,
            "before": before, "after": runners(algo), "iterations": iterations}


def runner_kill(cluster: Cluster, algo) -> dict:
    """Two iterations; one env runner's process is SIGKILLed; iterations until it is back; one more."""
    before = runners(algo)
    iterations = [train(algo), train(algo)]
    os.kill(before[0]["pid"], signal.SIGKILL)  # an actor of this scenario's own cluster
    log(f"env runner process {before[0]['pid']} killed")
    iterations += train_until_recovered(algo)
    return {"killed": before[0]["pid"], "before": before, "after": runners(algo), "iterations": iterations}


SCENARIOS = {"node_loss": node_loss, "runner_kill": runner_kill}


def main(scenario: str, result_path: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.connect()
        algo = build_ppo_config(CONFIG).build_algo()
        log("cluster up, algorithm built")
        try:
            result = SCENARIOS[scenario](cluster, algo)
        finally:
            algo.stop()
    finally:
        ray.shutdown()
        cluster.shutdown()
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
