"""`recursa tune fc`: ASHA over the tool-calling TRM's size, learning rate, depth and supervision steps.

Every trial is a Ray Train run (`recursa.fc.train.train_loop`) of the base config with the trial's
sample; its per-epoch dev metrics reach Tune through Ray Train's TuneReportCallback, and ASHA stops
weak trials after `grace_period` epochs. A run is one directory, runs/<name>/: config.yaml, the shared
data/ and tokenizer/, asha/ (Tune's experiment: per trial its progress.csv, result.json and TensorBoard
events, and its Ray Train checkpoints under asha/ray_train/<trial id>), best/model (the best trial's EMA weights), leaderboard.csv and
tune_report.json.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pandas as pd
import ray
from ray import tune
from ray.tune.integration.ray_train import CHECKPOINT_PATH_KEY, TuneReportCallback
from ray.tune.schedulers import ASHAScheduler

from recursa.core.config import ConfigError, dump_config, load_config
from recursa.core.runtime import torch_trainer
from recursa.core.tune import (
    check_experiment,
    finished,
    leaderboard,
    require_gpus,
    restore_or_create,
    run_config,
    sample,
    seeded_search,
)
from recursa.fc.config import TrainFCConfig, TuneFCConfig
from recursa.fc.train import export_checkpoint, prepare_run, train_loop

TRIAL_DRIVER_MEMORY = 256 * 1024**2
METRICS = ("exact_match", "ast_accuracy", "function_accuracy", "execution_reward")
# Searched settings: trial config key -> (section, field) of TrainFCConfig.
SEARCHED = {"hidden_size": ("model", "hidden_size"), "T": ("model", "T"), "n": ("model", "n"),
            "lr": ("training", "lr"), "n_sup": ("training", "n_sup")}


def trial_config(trial: dict) -> TrainFCConfig:
    """The base config with a trial's sampled settings."""
    settings = copy.deepcopy(trial["base"])
    for key, (section, field) in SEARCHED.items():
        settings[section][field] = trial[key]
    return TrainFCConfig.model_validate(settings)


def fc_trial(trial: dict) -> None:
    """One ASHA trial on Ray Train; checkpoints under asha/ray_train/<trial id>, where a restarted
    trial resumes from."""
    run_dir, config = Path(trial["run_dir"]), trial_config(trial)
    trainer = torch_trainer(train_loop, config, config.workers, run_dir, run_dir / "asha" / "ray_train",
                            tune.get_context().get_trial_id(), callbacks=[TuneReportCallback()])
    trainer.fit()


def search_space(config: TuneFCConfig, run_dir: Path) -> dict:
    """The trial config: the base config, the shared run directory, and the sampled settings."""
    search = config.search
    return {
        "base": config.train_config().model_dump(mode="json"),
        "run_dir": str(run_dir),
        "hidden_size": tune.choice(search.hidden_size),
        "T": tune.choice(search.T),
        "n": tune.choice(search.n),
        "lr": sample(search.lr),
        "n_sup": tune.choice(search.n_sup),
    }


def _max_concurrent(config: TuneFCConfig) -> int:
    """As many trials as the cluster's CPUs fit (each trial's Ray Train workers reserve their own)."""
    if config.trials.max_concurrent_trials:
        return config.trials.max_concurrent_trials
    workers = config.base.workers
    per_trial = workers.num_workers * workers.cpus_per_worker
    return max(1, int(ray.cluster_resources().get("CPU", 1) // per_trial))


def tune_fc(config: TuneFCConfig, resume: bool = False) -> dict:
    """Run ASHA, export the best trial's model, write the leaderboard and tune_report.json; return the
    report. Ray must be initialised."""
    started = time.perf_counter()
    require_gpus(config.base.workers.use_gpu, "base.workers.use_gpu")
    _require_state_api()
    check_experiment((Path(config.runs_dir) / config.name).resolve() / "asha", resume)
    run_dir = prepare_run(config.train_config(), resume)
    if not resume:
        dump_config(config, run_dir / "config.yaml")
    metric = config.asha.metric
    # Epochs, not Tune's iterations: a trial restored after an interruption resumes its Ray Train run
    # from the last epoch's checkpoint while Tune counts its iterations from zero again.
    scheduler = ASHAScheduler(time_attr="epoch", max_t=config.base.training.epochs,
                              grace_period=config.asha.grace_period, reduction_factor=config.asha.reduction_factor)
    # The trial only waits on its Ray Train workers, which reserve the CPUs (or GPUs): it takes no CPU.
    trainable = tune.with_resources(fc_trial, {"CPU": 0, "memory": TRIAL_DRIVER_MEMORY})
    tuner = restore_or_create(run_dir / "asha", trainable, lambda: tune.Tuner(
        trainable,
        param_space=search_space(config, run_dir),
        tune_config=tune.TuneConfig(metric=metric, mode="max", num_samples=config.asha.num_samples,
                                    scheduler=scheduler, search_alg=seeded_search(config.seed, _max_concurrent(config))),
        run_config=run_config(run_dir, "asha", config.trials),
    ))
    results = finished(tuner.fit(), run_dir / "asha", config.asha.num_samples)
    best = results.get_best_result(metric=metric, mode="max", scope="last")
    dev = {key: best.metrics[key] for key in METRICS}
    export_checkpoint(trial_config(best.config), run_dir, best.metrics[CHECKPOINT_PATH_KEY], run_dir / "best" / "model",
                      extra={"dev": dev})
    fc_leaderboard(run_dir).to_csv(run_dir / "leaderboard.csv", index=False)
    report = {
        "metric": metric,
        "best": best.metrics[metric],
        "best_trial": Path(best.path).name,
        "best_config": {key: best.config[key] for key in SEARCHED},
        "best_dev": dev,
        "epochs_trained": int(best.metrics["epoch"]),
        "trials": config.asha.num_samples,
        "wall_seconds": time.perf_counter() - started,
    }
    (run_dir / "tune_report.json").write_text(json.dumps(report, indent=2))
    return report


def _require_state_api() -> None:
    """Ray Train frees the workers of a trial ASHA stops through Ray's state API (the dashboard):
    without it they would hold their CPUs and the next trials would wait forever."""
    from ray.util.state import list_actors

    try:
        list_actors(address=ray.get_runtime_context().gcs_address, limit=1, raise_on_missing_output=False)
    except Exception as error:  # the state API raises several kinds when the dashboard is missing
        raise ConfigError("ray: ASHA needs Ray's state API: a cluster started with its dashboard, and "
                          f"RAY_ADDRESS naming it when several run on this machine ({error})".splitlines()[0]) from None


def fc_leaderboard(run_dir: Path) -> pd.DataFrame:
    """The ASHA trials, best last reported metric first (stopped trials show the epochs they ran)."""
    metric = load_config(run_dir / "config.yaml", TuneFCConfig).asha.metric
    others = [m for m in ("exact_match", "ast_accuracy", "function_accuracy") if m != metric]
    return leaderboard(run_dir / "asha", [metric, *others, "epoch"], {k: k for k in SEARCHED})
