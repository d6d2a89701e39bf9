"""RL fine-tuning of the tool-calling TRM by execution: RLlib PPO on `FunctionCallingEnv`.

PPO starts from a supervised model directory; rollouts are one-step episodes on generated
examples (a seed the supervised run never used). Before and after, the greedy policy is scored
on held-out generated examples with the same reward (0.5 AST + 0.5 execution), and the result
is saved as a model directory that `recursa eval bfcl` and `recursa infer fc` load.

A run is runs/<name>/: config.yaml, checkpoints/iter_NNNN (RLlib's, each with the progress up to
it; `--resume` continues from the newest), rl_report.json and the fine-tuned model directory.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from recursa.core.config import ConfigError, dump_config, load_config
from recursa.core.training import check_run_dir
from recursa.fc.artifact import save_fc_model
from recursa.fc.config import TrainFCRLConfig
from recursa.fc.env import FunctionCallingEnv
from recursa.fc.module import FunctionCallerModule
from recursa.fc.tokenizer import load_tokenizer

FC_ENV_ID = "recursa/FunctionCalling-v0"
register_env(FC_ENV_ID, lambda env_config: FunctionCallingEnv(env_config))
TRAIN_SEED, HELD_OUT_SEED = 2_000_003, 3_000_017
KEEP_CHECKPOINTS = 2
PROGRESS = "progress.json"  # beside RLlib's state in each checkpoint: the figures the report needs


def greedy_action(module: FunctionCallerModule, observation: dict[str, np.ndarray]) -> np.ndarray:
    """The policy's likeliest action for one observation."""
    batch = {Columns.OBS: {k: torch.from_numpy(v)[None] for k, v in observation.items()}}
    with torch.no_grad():
        inputs = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    distribution = module.get_inference_action_dist_cls().from_logits(inputs)
    return distribution.to_deterministic().sample()[0].numpy()


def greedy_reward(module: FunctionCallerModule, env: FunctionCallingEnv, episodes: int) -> float:
    """Mean reward of the greedy action over the env's first `episodes` examples."""
    rewards = []
    for index in range(min(episodes, len(env.examples))):
        observation, _ = env.reset(options={"index": index})
        rewards.append(env.step(greedy_action(module, observation))[1])
    return float(np.mean(rewards))


def build_ppo_config(config: TrainFCRLConfig, model_config: dict, env_config: dict) -> PPOConfig:
    """PPO on `FunctionCallerModule` (`model_config`: its trunk, vocabulary and starting weights)."""
    ppo, runners = config.ppo, config.runners
    return (
        PPOConfig()
        .environment(FC_ENV_ID, env_config=env_config)
        .env_runners(num_env_runners=runners.num_env_runners, num_envs_per_env_runner=runners.num_envs_per_env_runner,
                     num_cpus_per_env_runner=runners.num_cpus_per_env_runner, rollout_fragment_length="auto")
        .learners(num_learners=0)
        .training(lr=ppo.lr, train_batch_size_per_learner=ppo.train_batch_size, minibatch_size=ppo.minibatch_size,
                  num_epochs=ppo.num_epochs, entropy_coeff=ppo.entropy_coeff, gamma=1.0, lambda_=1.0,
                  grad_clip=ppo.grad_clip)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=FunctionCallerModule, model_config=model_config))
        .debugging(seed=config.seed)
    )


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint (each is renamed into place only once written)."""
    done = sorted(checkpoints.glob("iter_*"))
    return done[-1] if done else None


def save_checkpoint(algo, checkpoints: Path, iteration: int, progress: dict) -> Path:
    """RLlib's checkpoint and the progress up to it, written aside and renamed into place; keeps the newest few."""
    staging = checkpoints / f".staging_{iteration:04d}"
    shutil.rmtree(staging, ignore_errors=True)
    algo.save_to_path(str(staging.resolve()))
    (staging / PROGRESS).write_text(json.dumps(progress))
    final = checkpoints / f"iter_{iteration:04d}"
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in sorted(checkpoints.glob("iter_*"))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old)
    return final


def prepare_run(config: TrainFCRLConfig, resume: bool) -> Path:
    """runs/<name>/ with config.yaml; resuming needs a checkpoint there and the same starting model."""
    run_dir = Path(config.runs_dir) / config.name
    checkpoints = run_dir / "checkpoints"
    check_run_dir(run_dir, resume, started=("checkpoints/iter_*",), resumable_from="checkpoints/iter_*")
    if resume and load_config(run_dir / "config.yaml", TrainFCRLConfig).checkpoint != config.checkpoint:
        raise ConfigError("resume: checkpoint must match the saved run's config.yaml")
    checkpoints.mkdir(parents=True, exist_ok=True)
    dump_config(config, run_dir / "config.yaml")
    return run_dir


def finetune_fc(config: TrainFCRLConfig, resume: bool = False) -> dict:
    """PPO from the model directory `config.checkpoint`; returns the held-out reward before and after.
    Ray must be running."""
    model_dir = Path(config.checkpoint)
    if not (model_dir / "model.json").is_file():
        raise ConfigError(f"checkpoint: no tool-calling model (model.json) at {model_dir}")
    run_dir = prepare_run(config, resume)
    checkpoints = run_dir / "checkpoints"
    out_dir = Path(config.out) if config.out else run_dir / "model"
    settings = json.loads((model_dir / "model.json").read_text())
    tokenizer = load_tokenizer(model_dir / "tokenizer")  # now: the source may change during the run
    model_config = {"trm": settings["trm"], "vocab_size": settings["vocab_size"], "embedding": settings.get("embedding"),
                    "init_from": str(model_dir.resolve())}
    env_config = {"tokenizer_dir": str((model_dir / "tokenizer").resolve()), "examples": config.data.examples,
                  "seed": TRAIN_SEED}
    held_out = config.data.held_out
    held_out_env = FunctionCallingEnv({**env_config, "examples": held_out, "seed": HELD_OUT_SEED})
    algo = build_ppo_config(config, model_config, env_config).build_algo()
    try:
        latest = latest_checkpoint(checkpoints) if resume else None
        if latest is not None:
            algo.restore_from_path(str(latest.resolve()))
            progress = json.loads((latest / PROGRESS).read_text())
        else:
            progress = {"held_out_reward_before": greedy_reward(algo.get_module(), held_out_env, held_out),
                        "return_mean_per_iteration": []}
        for iteration in range(algo.iteration + 1, config.iterations + 1):
            result = algo.train()
            progress["return_mean_per_iteration"].append(
                float(result.get("env_runners", {}).get("episode_return_mean", math.nan)))
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                save_checkpoint(algo, checkpoints, iteration, progress)
        module = algo.get_module()
        after = greedy_reward(module, held_out_env, held_out)
        module.caller.no_call_bias = float(settings.get("no_call_bias", 0.0))
        save_fc_model(module.caller, tokenizer, out_dir, extra={"finetuned_from": str(model_dir)})
    finally:
        algo.stop()
    report = {"held_out_reward_before": progress["held_out_reward_before"], "held_out_reward_after": after,
              "iterations": config.iterations, "lr": config.ppo.lr, "entropy_coeff": config.ppo.entropy_coeff,
              "env_steps": config.iterations * config.ppo.train_batch_size,
              "return_mean_per_iteration": progress["return_mean_per_iteration"], "model": str(out_dir)}
    (run_dir / "rl_report.json").write_text(json.dumps(report, indent=2))
    return report
