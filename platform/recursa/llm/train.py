"""`recursa train llm`: LoRA training of a causal LM on Ray Train, by reward-weighted SFT, KTO or GRPO.

One run is one directory, runs/<name>/: config.yaml (as resolved; `--resume` continues the run
with it), records.parquet (sft, kto, offline_grpo), reference/ (KTO or GRPO after SFT), ray_train/ (Ray Train's
checkpoints: the adapter, optimizer, scheduler and progress), adapter/ (the final adapter),
metrics.jsonl and metrics.parquet (every epoch or iteration), learning_curve.png, and report.json
(held-out evaluation, when there is an environment to play).
"""

from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path

import pandas as pd

from recursa.core.config import ConfigError, dump_config, load_config
from recursa.core.plots import plot_llm_curves
from recursa.core.runtime import fit_on_ray_train
from recursa.core.sources import portable_name, resolve_model
from recursa.core.training import check_run_dir
from recursa.llm import grpo, grpo_offline, kto, sft
from recursa.llm.actions import BaseEnvironment, NoisyAgent, resolve_action_env, run_episodes
from recursa.llm.agent import prompt_text
from recursa.llm.checkpoints import ADAPTER_DIR, METRICS_LOG
from recursa.llm.config import TrainLLMConfig
from recursa.llm.datasets import kto_records, read_records, sft_records, write_records
from recursa.llm.evaluate import evaluate_adapter
from recursa.llm.models import load_tokenizer, merge_into_base

TRAIN_LOOPS = {"sft": sft.train_loop, "kto": kto.train_loop, "grpo": grpo.train_loop,
               "offline_grpo": grpo_offline.train_loop}
# The methods trained on records (from a file, or the expert's episodes), and the columns they read.
RECORD_COLUMNS = {"sft": ("prompt", "completion"), "kto": ("prompt", "completion", "label"),
                  "offline_grpo": ("prompt", "completions", "rewards")}
REFERENCE_DIR = "reference"  # KTO or GRPO after SFT: the SFT adapter merged into the base


def action_env(config: TrainLLMConfig) -> type[BaseEnvironment]:
    """The configured environment class; a bad name, or none, is a config error naming `data.env`."""
    if config.data.env is None:
        raise ConfigError(f"data.env: {config.method} needs an environment here (sft, kto and offline_grpo "
                          "train without one on data.records_path)")
    try:
        return resolve_action_env(config.data.env)
    except ValueError as error:
        raise ConfigError(f"data.env: {error}") from None


def plays_episodes(config: TrainLLMConfig) -> bool:
    """Whether the run has an environment: for its training data (GRPO, or no records file) and its
    held-out evaluation. Without one it trains on `data.records_path` alone."""
    return config.data.env is not None or config.method == "grpo" or not config.data.records_path


def training_records(config: TrainLLMConfig) -> list[dict]:
    """SFT or KTO records: from `data.records_path`, else from episodes of the environment's expert."""
    if config.data.records_path:
        try:
            return read_records(config.data.records_path)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"data.records_path: {error}") from None
    if config.method == "offline_grpo":
        raise ConfigError("data.records_path: offline_grpo trains on groups of rewarded completions: give their file")
    env_class = action_env(config)
    expert = env_class.expert()
    if expert is None:
        raise ConfigError(f"data.env: {config.data.env} has no expert agent; give data.records_path")
    if config.data.expert_noise:
        expert = NoisyAgent(expert, config.data.expert_noise, seed=config.data.seed)
    problems = env_class.sample_problems(config.data.expert_episodes, config.data.seed)
    # The expert's steps record the prompts the model will see: chat tasks rendered by its tokenizer.
    render = partial(prompt_text, load_tokenizer(config.model.path))
    trajectories = list(run_episodes(env_class, expert, problems, render=render))
    if config.method == "kto":
        return kto_records(trajectories)
    return sft_records(trajectories, min_reward=config.training.min_reward)


def prepare_llm_run(config: TrainLLMConfig, resume: bool) -> Path:
    """The run directory with config.yaml (and records.parquet for the methods trained on records)."""
    run_dir = (Path(config.runs_dir) / config.name).resolve()
    check_run_dir(run_dir, resume, started=(ADAPTER_DIR, "ray_train"), resumable_from="config.yaml")
    if resume:
        return run_dir
    # Ray workers run elsewhere: local paths are made absolute (a hub id or a model name stays as it is).
    resolve_model(config.model.path)
    config.model.path = portable_name(config.model.path)
    if config.init_adapter:
        if not (Path(config.init_adapter) / "adapter_config.json").is_file():
            raise ConfigError(f"init_adapter: no adapter_config.json in {config.init_adapter}")
        config.init_adapter = str(Path(config.init_adapter).resolve())
    if plays_episodes(config):
        action_env(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.method in ("kto", "grpo", "offline_grpo") and config.init_adapter and config.reference == "init_adapter":
        merge_into_base(config.init_adapter, run_dir / REFERENCE_DIR)
        config.model.path, config.init_adapter = str(run_dir / REFERENCE_DIR), None
    dump_config(config, run_dir / "config.yaml")
    if config.method in RECORD_COLUMNS:
        records = training_records(config)
        if not records:
            raise ConfigError("data: no training records (check data.records_path or training.min_reward)")
        missing = [column for column in RECORD_COLUMNS[config.method] if column not in records[0]]
        if missing:
            raise ConfigError(f"data.records_path: {config.method} records need the columns "
                              f"{', '.join(RECORD_COLUMNS[config.method])}; missing {', '.join(missing)}")
        write_records(records, run_dir / "records.parquet")
    return run_dir


def train_llm(config: TrainLLMConfig, resume: bool = False) -> Path:
    """Train, keep the final adapter in runs/<name>/adapter, evaluate it on held-out problems."""
    started = time.perf_counter()
    run_dir = prepare_llm_run(config, resume)
    config = load_config(run_dir / "config.yaml", TrainLLMConfig)
    loop = TRAIN_LOOPS[config.method]
    result = fit_on_ray_train(loop, config, config.workers, run_dir, config.method, resume)
    adapter = run_dir / ADAPTER_DIR
    shutil.rmtree(adapter, ignore_errors=True)
    with result.checkpoint.as_directory() as directory:
        shutil.copytree(Path(directory) / ADAPTER_DIR, adapter)
    metrics = pd.read_json(run_dir / METRICS_LOG, lines=True)
    metrics.to_parquet(run_dir / "metrics.parquet", index=False)
    plot_llm_curves(metrics, run_dir / "learning_curve.png", f"{config.method}: {config.name}")
    evaluation = evaluate_adapter(config.model, adapter, action_env(config), config.data.eval_episodes,
                                  config.data.eval_seed) if config.data.env is not None else None
    report = {"method": config.method, "adapter": str(adapter), "eval": evaluation,
              "train": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
              "wall_seconds": time.perf_counter() - started}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return adapter
