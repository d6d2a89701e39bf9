"""Search spaces, experiment settings and leaderboards shared by the Tune runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import ray
from ray import tune
from ray.tune import CheckpointConfig, ExperimentAnalysis, FailureConfig, ResultGrid, RunConfig
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.utils import flatten_dict

from recursa.core.config import ConfigError, SearchRange, TrialScheduling


class TuneInterrupted(RuntimeError):
    """A Tune run stopped before every trial finished (Ctrl-C, or the driver lost); `--resume` goes on."""


def seeded_search(seed: int, max_concurrent: int | None) -> BasicVariantGenerator:
    """Random search whose samples are the same for the same seed, at most `max_concurrent` trials at
    a time (TuneConfig's max_concurrent_trials does not apply to a search algorithm passed in)."""
    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0)


def finished(results: ResultGrid, experiment: Path, trials: int) -> ResultGrid:
    """The results once all `trials` ended (terminated or errored), else TuneInterrupted.

    Read from the experiment state Tune saved: after Ctrl-C, the trials in memory are stopped and
    look terminated, while the saved state keeps them running (and `--resume` goes on from there).
    """
    ended = sum(trial.status in ("TERMINATED", "ERROR") for trial in ExperimentAnalysis(str(experiment)).trials)
    if ended < trials:
        raise TuneInterrupted(f"{trials - ended} of {trials} trials in {experiment} did not finish; "
                              "run the same command with --resume to go on")
    return results


def sample(search: SearchRange) -> tune.search.sample.Domain:
    """Tune's uniform or log-uniform distribution over the range."""
    return tune.loguniform(search.low, search.high) if search.log else tune.uniform(search.low, search.high)


def run_config(run_dir: Path, name: str, trials: TrialScheduling, stop: dict | None = None,
               checkpoint: CheckpointConfig | None = None) -> RunConfig:
    """Tune's RunConfig: the experiment under run_dir/name (TensorBoard events in each trial's directory)."""
    return RunConfig(name=name, storage_path=str(run_dir.resolve()), stop=stop,
                     checkpoint_config=checkpoint or CheckpointConfig(),
                     failure_config=FailureConfig(max_failures=trials.max_failures), verbose=1)


def require_gpus(gpus: float, field: str) -> None:
    """A config error when GPUs are asked for and the cluster has none."""
    if gpus and not ray.cluster_resources().get("GPU"):
        raise ConfigError(f"{field}: {gpus} GPUs asked for, but the Ray cluster has none")


def check_experiment(experiment: Path, resume: bool) -> None:
    """Resuming needs a Tune experiment at `experiment`; a new run must not overwrite one."""
    if resume and not tune.Tuner.can_restore(str(experiment)):
        raise ConfigError(f"resume: no Tune experiment to resume at {experiment}")
    if not resume and experiment.exists():
        raise ConfigError(f"name: {experiment} exists; pass --resume or pick another name")


def restore_or_create(experiment: Path, trainable, create) -> tune.Tuner:
    """`Tuner.restore` the experiment if it was started (finished trials are not run again), else `create()`."""
    if tune.Tuner.can_restore(str(experiment)):
        return tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
    return create()


def leaderboard(experiment: Path, metrics: list[str], columns: dict[str, str]) -> pd.DataFrame:
    """One row per trial of a Tune experiment: its status, the config values in `columns` (column
    name -> flattened config key) and the last reported `metrics`, best first by metrics[0]."""
    analysis = ExperimentAnalysis(str(experiment.resolve()))
    rows = []
    for trial in analysis.trials:
        config = flatten_dict(trial.config, delimiter="/")
        result = flatten_dict(trial.last_result or {}, delimiter="/")
        rows.append({
            "trial": trial.trial_id,
            "status": trial.status,
            **{name: config.get(key) for name, key in columns.items()},
            **{metric: result.get(metric, float("nan")) for metric in metrics},
        })
    table = pd.DataFrame(rows)
    return table.sort_values(metrics[0], ascending=False, na_position="last").reset_index(drop=True) if rows else table
