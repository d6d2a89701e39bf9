"""Tune scaling on this machine: trials per hour and env steps per second with 1, 2 and 4 concurrent
PPO trials of the gift policy, and the PBT-versus-default comparison of a `recursa tune gift` run.

For each concurrency k, the same `--trials` trials (the `base` config of `--config`, no search, BC off)
each train for `--steps` env steps under a Tuner with `max_concurrent_trials=k`; each trial asks for
(Ray's CPUs)/k CPUs. Wall time runs from `Tuner.fit()` to its return, so trial start-up counts.
Trials per hour = trials / wall; env steps per second = the steps all trials sampled / wall.

The PBT comparison is read from a finished run's tune_report.json (`--pbt-run runs/gift_pbt`, made
by `recursa tune gift --config jobs/configs/gift_pbt.yaml`); without one the JSON says so.

    PYTHONPATH=platform .venv/bin/python bench/tune_scaling.py [--steps 4000] [--trials 4] [--out FILE] [--quick]

About 5 minutes with the defaults on 2 cores; prints a table and writes JSON (default
bench/results/tune_scaling.json).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import ray
from ray import tune
from ray.rllib.algorithms.ppo import PPO
from rich.console import Console
from rich.table import Table

from recursa.core.config import TrialScheduling, load_config
from recursa.core.tune import run_config
from recursa.gift.config import TuneGiftConfig
from recursa.gift.pbt import ENV_STEPS, base_ppo_config

console = Console()


def run_concurrently(config: TuneGiftConfig, concurrency: int, trials: int, steps: int, storage: Path) -> dict:
    """`trials` trials of the base config, `concurrency` at a time, each to `steps` env steps."""
    cpus = ray.cluster_resources()["CPU"] / concurrency
    config = config.model_copy(update={"resources": config.resources.model_copy(update={"cpus": cpus})})
    tuner = tune.Tuner(
        PPO,
        param_space=base_ppo_config(config, None).debugging(seed=tune.randint(0, 10_000)),
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=concurrency),
        run_config=run_config(storage, f"concurrency_{concurrency}", TrialScheduling(max_failures=0),
                              stop={ENV_STEPS: steps}),
    )
    started = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - started
    env_steps = sum(result.metrics[ENV_STEPS] for result in results)
    return {
        "concurrent_trials": concurrency,
        "cpus_per_trial": cpus,
        "trials": trials,
        "errors": results.num_errors,
        "wall_seconds": wall,
        "trials_per_hour": trials / wall * 3600,
        "env_steps": int(env_steps),
        "env_steps_per_s": env_steps / wall,
    }


def pbt_comparison(run: Path) -> dict:
    """The tune_report.json of a finished `recursa tune gift` run, with the PBT best's gain."""
    path = run / "tune_report.json"
    if not path.is_file():
        return {"missing": f"no {path}; run `recursa tune gift --config jobs/configs/gift_pbt.yaml` first"}
    report = json.loads(path.read_text())
    if report.get("default") is not None:
        report["pbt_best_minus_default"] = report["pbt_best"] - report["default"]
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="jobs/configs/gift_pbt.yaml", help="the tune config whose base trials run")
    parser.add_argument("--steps", type=int, default=4000, help="env steps per trial")
    parser.add_argument("--trials", type=int, default=4, help="trials per concurrency level")
    parser.add_argument("--pbt-run", default="runs/gift_pbt", help="a finished `recursa tune gift` run")
    parser.add_argument("--out", default="bench/results/tune_scaling.json", help="JSON output file")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)

    config = load_config(args.config, TuneGiftConfig)
    base = config.base.model_copy(update={"bc": config.base.bc.model_copy(update={"enabled": False})})
    steps = 400 if args.quick else args.steps
    if args.quick:
        base = base.model_copy(update={"ppo": base.ppo.model_copy(update={"train_batch_size": 200,
                                                                           "minibatch_size": 100})})
    config = config.model_copy(update={"base": base})
    load_before = os.getloadavg()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as storage:
            levels = [run_concurrently(config, k, args.trials, steps, Path(storage)) for k in (1, 2, 4)]
    finally:
        ray.shutdown()
    by_level = {level["concurrent_trials"]: level for level in levels}
    report = {
        "levels": levels,
        "ratios": {
            f"env_steps_per_s_{k}_over_1": by_level[k]["env_steps_per_s"] / by_level[1]["env_steps_per_s"]
            for k in (2, 4)
        },
        "pbt_vs_default": pbt_comparison(Path(args.pbt_run)),
        "settings": {"steps_per_trial": steps, "trials": args.trials, "quick": args.quick, "config": args.config,
                     "train_batch_size": base.ppo.train_batch_size, "model": base.model.model_dump()},
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
                    "ray": ray.__version__},
    }
    table = Table(title="Tune scaling: gift PPO trials")
    for column in ("concurrent", "CPUs/trial", "wall s", "trials/hour", "env steps/s", "errors"):
        table.add_column(column, justify="right")
    for level in levels:
        table.add_row(str(level["concurrent_trials"]), f"{level['cpus_per_trial']:.2f}", f"{level['wall_seconds']:.1f}",
                      f"{level['trials_per_hour']:.0f}", f"{level['env_steps_per_s']:.0f}", str(level["errors"]))
    console.print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
