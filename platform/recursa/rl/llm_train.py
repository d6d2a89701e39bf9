"""`recursa train llm`: LoRA training of a causal LM on Ray Train, by reward-weighted SFT, KTO or GRPO.

One run is one directory, runs/<name>/: config.yaml (as resolved; `--resume` continues the run
with it), records.parquet (sft, kto), reference/ (KTO or GRPO after SFT), ray_train/ (Ray Train's
checkpoints: the adapter, optimizer, scheduler and progress), adapter/ (the final adapter),
metrics.jsonl and metrics.parquet (every epoch or iteration), learning_curve.png, and report.json
(held-out evaluation).
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import ray.train
import torch
from ray.train import Checkpoint

from recursa.config import ConfigError, TrainLLMConfig, dump_config, load_config
from recursa.data.llm_datasets import kto_records, read_records, sft_records, write_records
from recursa.envs.actions import BaseEnvironment, NoisyAgent, resolve_action_env, run_episodes
from recursa.models.llm import merge_into_base, save_adapter
from recursa.rl.llm_eval import evaluate_adapter
from recursa.rl.plots import plot_llm_curves
from recursa.runtime import fit_on_ray_train

ADAPTER_DIR = "adapter"
STATE_FILE = "trainer_state.pt"
METRICS_LOG = "metrics.jsonl"
REFERENCE_DIR = "reference"  # KTO or GRPO after SFT: the SFT adapter merged into the base


def action_env(config: TrainLLMConfig) -> type[BaseEnvironment]:
    """The configured environment class; a bad name is a config error naming `data.env`."""
    try:
        return resolve_action_env(config.data.env)
    except ValueError as error:
        raise ConfigError(f"data.env: {error}") from None


def training_records(config: TrainLLMConfig) -> list[dict]:
    """SFT or KTO records: from `data.records_path`, else from episodes of the environment's expert."""
    if config.data.records_path:
        try:
            return read_records(config.data.records_path)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"data.records_path: {error}") from None
    env_class = action_env(config)
    expert = env_class.expert()
    if expert is None:
        raise ConfigError(f"data.env: {config.data.env} has no expert agent; give data.records_path")
    if config.data.expert_noise:
        expert = NoisyAgent(expert, config.data.expert_noise, seed=config.data.seed)
    problems = env_class.sample_problems(config.data.expert_episodes, config.data.seed)
    trajectories = list(run_episodes(env_class, expert, problems))
    if config.method == "kto":
        return kto_records(trajectories)
    return sft_records(trajectories, min_reward=config.training.min_reward)


def prepare_llm_run(config: TrainLLMConfig, resume: bool) -> Path:
    """The run directory with config.yaml (and records.parquet for sft and kto)."""
    run_dir = (Path(config.runs_dir) / config.name).resolve()
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"resume: nothing to resume at {run_dir}")
        return run_dir
    if (run_dir / ADAPTER_DIR).exists() or (run_dir / "ray_train").exists():
        raise ConfigError(f"name: run {run_dir} exists; pass --resume or pick another name")
    # Ray workers run elsewhere: local paths are made absolute (a hub id stays as it is).
    if Path(config.model.path).exists():
        config.model.path = str(Path(config.model.path).resolve())
    elif config.model.path.startswith((".", "/")) or config.model.path.count("/") > 1:
        raise ConfigError(f"model.path: not found: {config.model.path}")
    if config.init_adapter:
        if not (Path(config.init_adapter) / "adapter_config.json").is_file():
            raise ConfigError(f"init_adapter: no adapter_config.json in {config.init_adapter}")
        config.init_adapter = str(Path(config.init_adapter).resolve())
    action_env(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.method in ("kto", "grpo") and config.init_adapter and config.reference == "init_adapter":
        merge_into_base(config.init_adapter, run_dir / REFERENCE_DIR)
        config.model.path, config.init_adapter = str(run_dir / REFERENCE_DIR), None
    dump_config(config, run_dir / "config.yaml")
    if config.method in ("sft", "kto"):
        records = training_records(config)
        if not records:
            raise ConfigError("data: no training records (check data.records_path or training.min_reward)")
        write_records(records, run_dir / "records.parquet")
    return run_dir


def save_checkpoint(directory: Path, model, tokenizer, optimizer, scheduler, progress: dict) -> Checkpoint:
    """Adapter (safetensors) and, from this run only, optimizer, scheduler and progress."""
    save_adapter(model, tokenizer, directory / ADAPTER_DIR)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "progress": progress},
               directory / STATE_FILE)
    return Checkpoint.from_directory(str(directory))


def restore_checkpoint(checkpoint: Checkpoint | None, model, optimizer, scheduler) -> dict:
    """Load a checkpoint written by `save_checkpoint` into model, optimizer and scheduler; its progress."""
    if checkpoint is None:
        return {}
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    with checkpoint.as_directory() as directory:
        directory = Path(directory)
        set_peft_model_state_dict(model, load_file(directory / ADAPTER_DIR / "adapter_model.safetensors"))
        # Optimizer and scheduler states were written by this run, not downloaded: torch.load is fine.
        state = torch.load(directory / STATE_FILE, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["progress"]


def log_metrics(run_dir: str | Path, metrics: dict) -> None:
    """Append one report to the run's metrics.jsonl."""
    with (Path(run_dir) / METRICS_LOG).open("a") as log:
        log.write(json.dumps(metrics) + "\n")


def report(run_dir: str | Path, metrics: dict, checkpoint_state: tuple | None) -> None:
    """Report one epoch or iteration to Ray Train (with a checkpoint on rank 0) and log it in the run.

    metrics.jsonl keeps every report; Ray Train keeps only the newest checkpoints and their metrics.
    `checkpoint_state` is (model, tokenizer, optimizer, scheduler, progress), given on rank 0 only.
    """
    if checkpoint_state is None:
        ray.train.report(metrics)
        return
    log_metrics(run_dir, metrics)
    with tempfile.TemporaryDirectory() as tmp:
        ray.train.report(metrics, checkpoint=save_checkpoint(Path(tmp), *checkpoint_state))


def train_llm(config: TrainLLMConfig, resume: bool = False) -> Path:
    """Train, keep the final adapter in runs/<name>/adapter, evaluate it on held-out problems."""
    started = time.perf_counter()
    run_dir = prepare_llm_run(config, resume)
    config = load_config(run_dir / "config.yaml", TrainLLMConfig)
    loop = importlib.import_module(f"recursa.rl.llm_{config.method}").train_loop
    result = fit_on_ray_train(loop, config, config.workers, run_dir, config.method, resume)
    adapter = run_dir / ADAPTER_DIR
    shutil.rmtree(adapter, ignore_errors=True)
    with result.checkpoint.as_directory() as directory:
        shutil.copytree(Path(directory) / ADAPTER_DIR, adapter)
    metrics = pd.read_json(run_dir / METRICS_LOG, lines=True)
    metrics.to_parquet(run_dir / "metrics.parquet", index=False)
    plot_llm_curves(metrics, run_dir / "learning_curve.png", f"{config.method}: {config.name}")
    evaluation = evaluate_adapter(config.model, adapter, action_env(config), config.data.eval_episodes,
                                  config.data.eval_seed)
    report = {"method": config.method, "adapter": str(adapter), "eval": evaluation,
              "train": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
              "wall_seconds": time.perf_counter() - started}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return adapter
