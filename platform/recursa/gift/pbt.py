"""`recursa tune gift`: population-based training of the gift policy's PPO hyperparameters.

A run is one directory, runs/<name>/:
- config.yaml; bc_module/ (the behaviour-cloning warm start every trial begins from, when enabled);
- pbt/: Tune's experiment, one directory per trial with its checkpoints, progress.csv, result.json
  and TensorBoard events; default/: the base config trained alone to the same env-step budget;
- best/policy: the best trial's final policy (loadable by `recursa eval gift` and `recursa export trm`);
- leaderboard.csv and tune_report.json (mean held-out reward of the PBT best and of the default).
PBT clones a trial from another's checkpoint with the donor's config (TRM depth included, as the
weights fit any depth) and perturbs the PPO hyperparameters.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
from ray import tune
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.tune import CheckpointConfig
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.utils import flatten_dict

from recursa.core.config import dump_config
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
from recursa.gift.bc import behaviour_cloning
from recursa.gift.config import TuneGiftConfig
from recursa.gift.evaluate import evaluate_policy, load_policy_module, module_policy
from recursa.gift.policy_io import save_policy
from recursa.gift.ppo import build_ppo_config, trm_model_config

METRIC = "env_runners/episode_return_mean"
ENV_STEPS = "num_env_steps_sampled_lifetime"
# PPO's config keys for the searched hyperparameters (search field -> key in the config dict Tune sees;
# PPOConfig.training takes the same names, but `lambda_`).
PPO_KEYS = {"lr": "lr", "entropy_coeff": "entropy_coeff", "clip_param": "clip_param", "gamma": "gamma",
            "gae_lambda": "lambda"}
TRAINING_ARGS = {**PPO_KEYS, "gae_lambda": "lambda_"}
LEADERBOARD_COLUMNS = {"T": "_model_config/T", "n": "_model_config/n", **PPO_KEYS}


def base_ppo_config(config: TuneGiftConfig, load_state_path: str | None) -> PPOConfig:
    """The base config's PPO with the trial resources from the tune config (the learner runs in the
    trial's own process, which takes the larger of the two CPU settings)."""
    resources = config.resources
    return (build_ppo_config(config.train_config(), load_state_path)
            .resources(num_cpus_for_main_process=resources.cpus)
            .learners(num_cpus_per_learner=resources.cpus, num_gpus_per_learner=resources.gpus))


def population_space(config: TuneGiftConfig, load_state_path: str | None) -> PPOConfig:
    """The base PPO config with every searched hyperparameter and the TRM depth sampled per trial."""
    search = config.search
    space = base_ppo_config(config, load_state_path)
    space.training(**{TRAINING_ARGS[field]: sample(getattr(search, field)) for field in PPO_KEYS})
    space.rl_module(model_config={**trm_model_config(config.train_config()),
                                  "T": tune.choice(search.T), "n": tune.choice(search.n)})
    return space


def pbt_scheduler(config: TuneGiftConfig) -> PopulationBasedTraining:
    """PBT on the mean episode return, perturbing the PPO hyperparameters within their ranges."""
    ranges = {PPO_KEYS[field]: getattr(config.search, field) for field in PPO_KEYS}

    def within_ranges(trial_config: dict) -> dict:
        # PBT perturbs by factors of 0.8 and 1.2 without looking at the range: gamma must stay <= 1.
        for key, search in ranges.items():
            trial_config[key] = min(max(trial_config[key], search.low), search.high)
        return trial_config

    return PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=config.pbt.perturbation_interval,
        quantile_fraction=config.pbt.quantile_fraction,
        resample_probability=config.pbt.resample_probability,
        hyperparam_mutations={key: sample(search) for key, search in ranges.items()},
        custom_explore_fn=within_ranges,
        synch=False,
    )


def _tuner(config: TuneGiftConfig, run_dir: Path, name: str, space: PPOConfig, samples: int,
           scheduler=None) -> tune.Tuner:
    checkpoints = CheckpointConfig(checkpoint_frequency=config.pbt.perturbation_interval, checkpoint_at_end=True,
                                   num_to_keep=config.pbt.keep_checkpoints)
    return tune.Tuner(
        PPO,
        param_space=space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", num_samples=samples, scheduler=scheduler,
                                    search_alg=seeded_search(config.seed, config.trials.max_concurrent_trials)),
        run_config=run_config(run_dir, name, config.trials, stop={ENV_STEPS: config.env_steps_per_trial},
                              checkpoint=checkpoints),
    )


def _held_out_reward(config: TuneGiftConfig, checkpoint: str | Path, export_to: Path | None = None) -> float:
    base = config.base
    module = load_policy_module(checkpoint)
    if export_to:
        save_policy(module, base.env, export_to)
    return evaluate_policy(base.env, module_policy(module), base.eval.users, base.eval.seed)["mean_reward"]


def tune_gift(config: TuneGiftConfig, resume: bool = False) -> dict:
    """Run PBT (and the default config alone), export the best policy, write the leaderboard and
    tune_report.json; return the report. Ray must be initialised."""
    started = time.perf_counter()
    require_gpus(config.resources.gpus, "resources.gpus")
    run_dir = (Path(config.runs_dir) / config.name).resolve()
    check_experiment(run_dir / "pbt", resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    load_state_path = _warm_start(config, run_dir, resume)
    if not resume:
        dump_config(config, run_dir / "config.yaml")

    pbt = restore_or_create(run_dir / "pbt", PPO, lambda: _tuner(
        config, run_dir, "pbt", population_space(config, load_state_path), config.pbt.population, pbt_scheduler(config)))
    results = finished(pbt.fit(), run_dir / "pbt", config.pbt.population)
    best = results.get_best_result(metric=METRIC, mode="max", scope="last")
    trial_config = flatten_dict(best.config, delimiter="/")
    best_config = {column: trial_config[key] for column, key in LEADERBOARD_COLUMNS.items()}
    _write_best_config(config, best_config, run_dir / "best")
    report = {
        "pbt_best": _held_out_reward(config, best.checkpoint.path, export_to=run_dir / "best" / "policy"),
        "default": None,
        "env_steps_per_trial": config.env_steps_per_trial,
        "population": config.pbt.population,
        "best_trial": Path(best.path).name,
        "best_config": best_config,
        "best_train_return": best.metrics["env_runners"]["episode_return_mean"],
        "eval_users": config.base.eval.users,
    }
    if config.compare_default:
        default = restore_or_create(run_dir / "default", PPO, lambda: _tuner(
            config, run_dir, "default", base_ppo_config(config, load_state_path), 1))
        result = finished(default.fit(), run_dir / "default", 1)[0]
        report["default"] = _held_out_reward(config, result.checkpoint.path)
        report["default_train_return"] = result.metrics["env_runners"]["episode_return_mean"]
    table = gift_leaderboard(run_dir)
    table.to_csv(run_dir / "leaderboard.csv", index=False)
    report["wall_seconds"] = time.perf_counter() - started
    (run_dir / "tune_report.json").write_text(json.dumps(report, indent=2))
    return report


def gift_leaderboard(run_dir: Path) -> pd.DataFrame:
    """The PBT population's trials (and the default run's), best last return first."""
    tables = []
    for name in ("pbt", "default"):
        if (run_dir / name).is_dir():
            table = leaderboard(run_dir / name, [METRIC, ENV_STEPS], LEADERBOARD_COLUMNS)
            tables.append(table.assign(experiment=name))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _warm_start(config: TuneGiftConfig, run_dir: Path, resume: bool) -> str | None:
    """Behaviour cloning once for the whole population (reused when resuming); the weights' path."""
    if not config.base.bc.enabled:
        return None
    if resume and (run_dir / "bc_module").is_dir():
        return str(run_dir / "bc_module")
    path, _ = behaviour_cloning(config.train_config(), run_dir)
    return str(path)


def _write_best_config(config: TuneGiftConfig, best: dict, out: Path) -> None:
    """best/config.yaml: the training config of the best trial (its depth and final hyperparameters,
    by leaderboard column), which `recursa eval gift --checkpoint runs/<name>/best` reads beside the policy."""
    train = config.train_config()
    train.model = train.model.model_copy(update={"T": best["T"], "n": best["n"]})
    train.ppo = train.ppo.model_copy(update={field: best[field] for field in PPO_KEYS})
    out.mkdir(parents=True, exist_ok=True)
    dump_config(train, out / "config.yaml")
