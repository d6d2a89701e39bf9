"""`recursa train gift`: (behaviour cloning, then) PPO with checkpoints, metrics and curves.

A run is one directory, runs/<name>/: config.yaml, checkpoints/ (iter_NNNN and `latest`),
policy/ (the final weights as safetensors), metrics.parquet, TensorBoard events under tb/,
learning_curve.png and train_report.json.
Checkpoints are written to a temporary directory and renamed into place, so a run killed
mid-save keeps its previous checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.progress import Progress
from tensorboardX import SummaryWriter

from recursa.core.config import ConfigError, dump_config, load_config
from recursa.core.plots import plot_learning_curve
from recursa.core.training import check_run_dir
from recursa.gift.bc import behaviour_cloning
from recursa.gift.config import TrainGiftConfig
from recursa.gift.evaluate import module_policy
from recursa.gift.halting import fit_halting, observations_met
from recursa.gift.monitoring import HeldOutCurve, wandb_run
from recursa.gift.policy_io import save_policy
from recursa.gift.ppo import build_ppo_config

KEEP_CHECKPOINTS = 3


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    metrics: pd.DataFrame
    env_steps: int
    wall_seconds: float
    bc: dict


def iteration_metrics(result: dict) -> dict[str, float]:
    """The per-iteration figures we keep, from an RLlib new-stack result dict."""
    runners = result.get("env_runners", {})
    gift = runners.get("gift", {})
    calls = gift.get("calls", {})
    row = {
        "iteration": result["training_iteration"],
        "env_steps": runners.get("num_env_steps_sampled_lifetime", 0),
        "episode_return_mean": runners.get("episode_return_mean", float("nan")),
        "episode_len_mean": runners.get("episode_len_mean", float("nan")),
        "utility": gift.get("utility", float("nan")),
        "tool_cost": gift.get("tool_cost", float("nan")),
        "tool_calls": gift.get("tool_calls", float("nan")),
        "tool_success_rate": gift.get("tool_success_rate", float("nan")),
        "time_this_iter_s": result.get("time_this_iter_s", float("nan")),
    }
    row.update({f"calls_{tool}": value for tool, value in calls.items()})
    learner = result.get("learners", {}).get("default_policy", {})
    for key in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "bc_kl", "bc_kl_weight", "entropy_alpha",
                "entropy_target"):
        row[key] = learner.get(key, float("nan"))
    return {key: float(value) for key, value in row.items()}


def _progress_line(row: dict[str, float]) -> str:
    line = f"PPO return {row['episode_return_mean']:.3f}"
    return f"{line}, held-out {row['eval_to_oracle']:.3f} of oracle" if "eval_to_oracle" in row else line


def _save_checkpoint(algo, checkpoints: Path, iteration: int) -> Path:
    """Save atomically (temp dir, then rename) and point `latest` at it; keep the newest few."""
    final = checkpoints / f"iter_{iteration:04d}"
    staging = checkpoints / f".staging_{iteration:04d}"
    shutil.rmtree(staging, ignore_errors=True)
    algo.save_to_path(str(staging.resolve()))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    latest = checkpoints / "latest"
    tmp_link = checkpoints / ".latest_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(final.name)
    tmp_link.replace(latest)
    for old in sorted(checkpoints.glob("iter_*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old)
    return final


def _prepare_run(config: TrainGiftConfig, resume: bool) -> Path:
    run_dir = Path(config.runs_dir) / config.name
    check_run_dir(run_dir, resume, started=("checkpoints/latest",), resumable_from="checkpoints/latest")
    if resume:
        saved = load_config(run_dir / "config.yaml", TrainGiftConfig)
        if saved.model != config.model or saved.env != config.env:
            raise ConfigError("resume: env and model must match the saved run's config.yaml")
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    dump_config(config, run_dir / "config.yaml")
    return run_dir


def train_gift(config: TrainGiftConfig, resume: bool = False) -> TrainResult:
    """Train the TRM policy with PPO (after an optional BC warm start). Ray must be initialised."""
    started = time.perf_counter()
    run_dir = _prepare_run(config, resume)
    checkpoints = run_dir / "checkpoints"
    bc_metrics: dict = {}
    load_state_path = None
    if config.bc.enabled and not resume:
        bc_path, bc_metrics = behaviour_cloning(config, run_dir)
        load_state_path = str(bc_path.resolve())
    algo = build_ppo_config(config, load_state_path).build_algo()
    rows: list[dict] = []
    if resume:
        algo.restore_from_path(str((checkpoints / "latest").resolve()))
        if (run_dir / "metrics.parquet").exists():
            rows = pd.read_parquet(run_dir / "metrics.parquet").to_dict("records")
    writer = SummaryWriter(str(run_dir / "tb"))
    every = config.eval.every or 0
    held_out = HeldOutCurve(config) if every else None
    wandb = wandb_run(config, run_dir)
    checkpoint = checkpoints / "latest"
    first = algo.iteration + 1
    try:
        with Progress() as progress:
            task = progress.add_task("PPO", total=config.iterations, completed=first - 1)
            for iteration in range(first, config.iterations + 1):
                row = iteration_metrics(algo.train())
                if held_out and (iteration % every == 0 or iteration == config.iterations):
                    row.update(held_out(algo.get_module()))
                rows.append(row)
                for key, value in row.items():
                    if math.isfinite(value):
                        writer.add_scalar(f"gift/{key}", value, iteration)
                if wandb:
                    wandb.log({key: value for key, value in row.items() if math.isfinite(value)}, step=iteration)
                progress.update(task, advance=1, description=_progress_line(row))
                out_of_time = config.time_budget_s and time.perf_counter() - started > config.time_budget_s
                if iteration % config.checkpoint_every == 0 or iteration == config.iterations or out_of_time:
                    checkpoint = _save_checkpoint(algo, checkpoints, iteration)
                    pd.DataFrame(rows).to_parquet(run_dir / "metrics.parquet", index=False)
                if out_of_time:
                    break
        module = algo.get_module()
        halting, threshold = {}, None
        if config.recursion == "per_step":  # across steps, each step's depth is already one cycle's worth
            halting = fit_halting(module, *observations_met(config.env, module_policy(module),
                                                            config.halting.episodes, config.seed))
            threshold = config.halting.threshold
        save_policy(module, config.env, run_dir / "policy", halting_threshold=threshold)
    finally:
        writer.close()
        if wandb:
            wandb.finish()
        algo.stop()
    metrics = pd.DataFrame(rows)
    plot_learning_curve(metrics, run_dir / "learning_curve.png")
    result = TrainResult(
        run_dir=run_dir,
        checkpoint=checkpoint,
        metrics=metrics,
        env_steps=int(metrics["env_steps"].iloc[-1]) if len(metrics) else 0,
        wall_seconds=time.perf_counter() - started,
        bc=bc_metrics,
    )
    (run_dir / "train_report.json").write_text(json.dumps({
        "checkpoint": str(result.checkpoint), "iterations": len(metrics), "env_steps": result.env_steps,
        "wall_seconds": result.wall_seconds, "final_return_mean": float(metrics["episode_return_mean"].iloc[-1]),
        **bc_metrics, **halting,
    }, indent=2))
    return result
