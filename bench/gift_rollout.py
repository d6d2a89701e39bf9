"""Rollout throughput on the gift environment: RLlib env runners beside bare loops.

Measures env steps per second four ways, one after the other in one run:

- ``bare_env``: one ``GiftRecommendationEnv`` stepped in a plain Python loop with random valid
  actions (the env's own cost: tools, observation encoding, resets);
- ``bare_env_trm``: the same loop, but each action is sampled from the masked logits of the
  TRM policy (``TRMPolicyModule`` built from ``trm_module_spec(config)`` with the env's spaces,
  ``forward_exploration`` on a batch of one, no gradients) - what a single process can do;
- ``rllib_1_runner`` / ``rllib_2_runners``: a PPO algorithm from ``build_ppo_config`` with 1 or
  2 remote env runners (``--envs-per-runner`` vectorised envs each), timed over
  ``env_runner_group.foreach_env_runner(lambda r: r.sample(num_timesteps=N / runners))``
  after one warm-up sample. No training happens. The episodes are returned to the driver, as
  in PPO's own sampling, and the steps are counted from them.

A CPU check runs last, right after the RLlib runs: the work two busy processes do beside one
(2.0 on two real cores). Some VMs give two CPUs for a few seconds and then about one; there
the 2-runner figure cannot beat the 1-runner one, and the check says so.

The bare loops run in this process with ``--torch-threads`` threads (default 1, what Ray gives
an env runner that asks for less than one CPU; the runners' own count is recorded). Ray is
started once, locally, with 2 CPUs. Figures are noisy when something else uses the CPUs.

Run (about a minute with the defaults; ``--quick``, a smoke run, takes half that, mostly Ray start-up):

    .venv/bin/python bench/gift_rollout.py [--steps 4000] [--envs-per-runner 4] [--out FILE] [--quick]

Prints a table and writes the figures as JSON (``--out``, default
``runs/bench/gift_rollout.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform as _platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import ray
import torch
from ray.rllib.core.columns import Columns
from rich.console import Console
from rich.table import Table

from recursa.gift.config import TrainGiftConfig
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.module import observation_batch
from recursa.gift.ppo import build_ppo_config, trm_module_spec

console = Console()


def _timed_loop(env: GiftRecommendationEnv, choose, steps: int, warmup: int) -> dict:
    """Step `env` with actions from `choose(obs)`, resetting at episode ends; time `steps` steps."""
    obs, _ = env.reset(seed=0)
    episodes = 0

    def run(n: int) -> None:
        nonlocal obs, episodes
        for _ in range(n):
            obs, _, terminated, truncated, _ = env.step(choose(obs))
            if terminated or truncated:
                obs, _ = env.reset()
                episodes += 1

    run(warmup)
    episodes = 0
    start = time.perf_counter()
    run(steps)
    seconds = time.perf_counter() - start
    return {"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds, "episodes": episodes}


def bench_bare_env(config: TrainGiftConfig, steps: int, warmup: int) -> dict:
    """Random valid actions: the env's own cost per step."""
    env = GiftRecommendationEnv(config.env.model_dump())
    rng = np.random.default_rng(0)
    try:
        return _timed_loop(env, lambda obs: int(rng.choice(np.flatnonzero(obs["action_mask"]))), steps, warmup)
    finally:
        env.close()


def bench_bare_env_trm(config: TrainGiftConfig, steps: int, warmup: int) -> dict:
    """Actions sampled from the TRM policy's masked logits, one observation at a time."""
    env = GiftRecommendationEnv(config.env.model_dump())
    spec = trm_module_spec(config)
    spec.observation_space = env.observation_space
    spec.action_space = env.action_space
    module = spec.build()
    module.eval()

    def choose(obs: dict) -> int:
        logits = module.forward_exploration(observation_batch(obs))[Columns.ACTION_DIST_INPUTS][0]
        return int(torch.distributions.Categorical(logits=logits).sample())

    try:
        with torch.no_grad():
            result = _timed_loop(env, choose, steps, warmup)
    finally:
        env.close()
    result["parameters"] = sum(p.numel() for p in module.parameters())
    return result


def bench_rllib(config: TrainGiftConfig, num_runners: int, steps: int, warmup: int) -> dict:
    """Sampling (no training) through `num_runners` remote env runners of a PPO algorithm."""
    config = config.model_copy(deep=True)
    config.runners.num_env_runners = num_runners
    start = time.perf_counter()
    algo = build_ppo_config(config).build_algo()
    build_s = time.perf_counter() - start
    group = algo.env_runner_group
    per_runner = -(-steps // num_runners)
    per_runner_warmup = max(1, -(-warmup // num_runners))

    # Run on the env runners. Local functions, so that Ray ships them by value even when this
    # file is imported as a module the workers cannot import.
    def timed_sample(runner, num_timesteps: int) -> tuple[list, float]:
        """The runner's episodes for `num_timesteps` steps and the seconds `sample` took."""
        import time as runner_time

        start = runner_time.perf_counter()
        episodes = runner.sample(num_timesteps=num_timesteps, random_actions=False)
        return episodes, runner_time.perf_counter() - start

    def torch_threads(runner) -> int:
        import torch as runner_torch

        return runner_torch.get_num_threads()

    def sample(n: int) -> tuple[list[int], list[float]]:
        """Steps returned by each remote runner for one `sample(num_timesteps=n)` call, and the
        seconds each spent inside `sample` (the rest of the wall time is Ray and transfer)."""
        results = group.foreach_env_runner(lambda runner: timed_sample(runner, n), local_env_runner=False)
        return ([sum(len(episode) for episode in episodes) for episodes, _ in results],
                [seconds for _, seconds in results])

    try:
        runner_threads = group.foreach_env_runner(torch_threads, local_env_runner=False)
        sample(per_runner_warmup)
        start = time.perf_counter()
        counts, inside_s = sample(per_runner)
        seconds = time.perf_counter() - start
    finally:
        algo.stop()
    if len(counts) != num_runners:
        raise RuntimeError(f"expected {num_runners} env runners to answer, got {len(counts)}")
    total = sum(counts)
    return {"steps": total, "steps_by_runner": counts, "seconds": seconds, "steps_per_s": total / seconds,
            "runner_sample_s": inside_s, "build_s": build_s, "runner_torch_threads": runner_threads}


_SPIN_CHUNK = 200_000


def _spin_for(seconds: float) -> list[float]:
    """Pure-Python busy loop for `seconds`; the time each chunk of iterations finished."""
    start = time.perf_counter()
    done: list[float] = []
    while not done or done[-1] < seconds:
        total = 0
        for i in range(_SPIN_CHUNK):
            total += i * i
        done.append(time.perf_counter() - start)
    return done


def cpu_parallel_speedup(alone_s: float, together_s: float) -> dict:
    """Work done by 2 busy processes over 1 (2.0 when two CPUs really run in parallel).

    `burst`: first second of the two; `sustained`: their second half. Some VMs give two CPUs
    for a few seconds, then throttle to about one: then 2 runners cannot beat 1 for long.
    """
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_spin_for, [0.01, 0.01]))  # start both workers before timing
        alone = pool.submit(_spin_for, alone_s).result()
        together = list(pool.map(_spin_for, [together_s, together_s]))
    rate_alone = len(alone) / alone[-1]
    burst = sum(sum(1 for t in done if t < 1.0) for done in together) / 1.0
    half = together_s / 2
    sustained = sum(sum(1 for t in done if half <= t < together_s) for done in together) / half
    return {"burst": burst / rate_alone, "sustained": sustained / rate_alone}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000, help="env steps per measurement")
    parser.add_argument("--envs-per-runner", type=int, default=4, help="num_envs_per_env_runner")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads for the bare loops")
    parser.add_argument("--out", default="runs/bench/gift_rollout.json", help="JSON output file")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)

    steps = 200 if args.quick else args.steps
    warmup = max(20, steps // 10)
    torch.set_num_threads(args.torch_threads)
    config = TrainGiftConfig()
    config.runners.num_envs_per_env_runner = args.envs_per_runner

    results: dict[str, dict] = {}
    with console.status("bare env loop (random valid actions)"):
        results["bare_env"] = bench_bare_env(config, steps, warmup)
    with console.status("bare env + TRM forward loop"):
        results["bare_env_trm"] = bench_bare_env_trm(config, steps, warmup)

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        with console.status("RLlib sampling, 1 env runner"):
            results["rllib_1_runner"] = bench_rllib(config, 1, steps, warmup)
        with console.status("RLlib sampling, 2 env runners"):
            results["rllib_2_runners"] = bench_rllib(config, 2, steps, warmup)
    finally:
        ray.shutdown()
    with console.status("CPU parallelism check (1 vs 2 busy processes)"):
        parallel_speedup = cpu_parallel_speedup(*((0.5, 2.0) if args.quick else (2.0, 8.0)))

    rate = {name: result["steps_per_s"] for name, result in results.items()}
    report = {
        "bare_env_steps_per_s": rate["bare_env"],
        "bare_env_trm_steps_per_s": rate["bare_env_trm"],
        "rllib_1_runner_steps_per_s": rate["rllib_1_runner"],
        "rllib_2_runners_steps_per_s": rate["rllib_2_runners"],
        "ratios": {
            "rllib_2_over_1": _ratio(rate["rllib_2_runners"], rate["rllib_1_runner"]),
            "rllib_2_over_bare_env_trm": _ratio(rate["rllib_2_runners"], rate["bare_env_trm"]),
            "rllib_1_over_bare_env_trm": _ratio(rate["rllib_1_runner"], rate["bare_env_trm"]),
            "bare_env_trm_over_bare_env": _ratio(rate["bare_env_trm"], rate["bare_env"]),
        },
        "details": results,
        "settings": {
            "steps": steps,
            "warmup_steps": warmup,
            "quick": args.quick,
            "num_envs_per_env_runner": args.envs_per_runner,
            "num_cpus_per_env_runner": config.runners.num_cpus_per_env_runner,
            "ray_num_cpus": 2,
            "env": config.env.model_dump(),
            "model": config.model.model_dump(),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "parallel_speedup_2_procs": parallel_speedup,
            "torch_threads": torch.get_num_threads(),
            "runner_torch_threads": results["rllib_2_runners"]["runner_torch_threads"],
            "python": _platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
        },
    }

    table = Table(title=f"gift env rollout, {steps} steps per row")
    for column in ("measurement", "steps", "seconds", "steps/s", "ms/step", "vs bare env+TRM"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    labels = {"bare_env": "env.step, random", "bare_env_trm": "env.step + TRM",
              "rllib_1_runner": "RLlib, 1 runner", "rllib_2_runners": "RLlib, 2 runners"}
    for name, label in labels.items():
        result = results[name]
        table.add_row(label, str(result["steps"]), f"{result['seconds']:.2f}", f"{result['steps_per_s']:.0f}",
                      f"{1000.0 / result['steps_per_s']:.2f}", f"{result['steps_per_s'] / rate['bare_env_trm']:.2f}x")
    console.print(table)
    console.print(f"2 runners / 1 runner: {report['ratios']['rllib_2_over_1']:.2f}x   "
                  f"envs per runner: {args.envs_per_runner}   bare-loop torch threads: {torch.get_num_threads()}   "
                  f"runner torch threads: {report['machine']['runner_torch_threads']}")
    console.print(f"CPU check: 2 busy processes do {parallel_speedup['burst']:.2f}x the work of 1 in their "
                  f"first second, {parallel_speedup['sustained']:.2f}x sustained (2.0 = two real cores; "
                  f"near 1.0 means 2 runners cannot beat 1 here)")

    for name in ("rllib_1_runner", "rllib_2_runners"):
        inside = ", ".join(f"{seconds:.2f}" for seconds in results[name]["runner_sample_s"])
        console.print(f"{labels[name]}: {results[name]['seconds']:.2f} s wall, inside sample() per runner: {inside} s")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
