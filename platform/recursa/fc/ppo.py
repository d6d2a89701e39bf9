"""RL fine-tuning of the tool-calling TRM by execution: RLlib PPO on `FunctionCallingEnv`.

PPO starts from a supervised model directory; rollouts are one-step episodes on generated
examples (a seed the supervised run never used). Before and after, the greedy policy is scored
on held-out generated examples with the same reward (0.5 AST + 0.5 execution), and the result
is saved as a model directory that `recursa eval bfcl` and `recursa infer fc` load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from recursa.fc.artifact import save_fc_model
from recursa.fc.env import FunctionCallingEnv
from recursa.fc.module import FunctionCallerModule
from recursa.fc.tokenizer import load_tokenizer

FC_ENV_ID = "recursa/FunctionCalling-v0"
register_env(FC_ENV_ID, lambda env_config: FunctionCallingEnv(env_config))
TRAIN_SEED, HELD_OUT_SEED = 2_000_003, 3_000_017


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


def finetune_fc(model_dir: Path, out_dir: Path, iterations: int = 20, examples: int = 4000,
                held_out: int = 300, lr: float = 1e-5, entropy_coeff: float = 0.0) -> dict:
    """PPO from `model_dir`; returns the held-out reward before and after. Ray must be running."""
    settings = json.loads((model_dir / "model.json").read_text())
    tokenizer = load_tokenizer(model_dir / "tokenizer")  # now: the source may change during the run
    env_config = {"tokenizer_dir": str((model_dir / "tokenizer").resolve()), "examples": examples, "seed": TRAIN_SEED}
    model_config = {"trm": settings["trm"], "vocab_size": settings["vocab_size"], "init_from": str(model_dir.resolve())}
    config = (
        PPOConfig()
        .environment(FC_ENV_ID, env_config=env_config)
        .env_runners(num_env_runners=1, num_envs_per_env_runner=4, rollout_fragment_length="auto")
        .learners(num_learners=0)
        .training(lr=lr, train_batch_size_per_learner=256, minibatch_size=64, num_epochs=2,
                  entropy_coeff=entropy_coeff, gamma=1.0, lambda_=1.0, grad_clip=1.0)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=FunctionCallerModule, model_config=model_config))
    )
    held_out_env = FunctionCallingEnv({**env_config, "examples": held_out, "seed": HELD_OUT_SEED})
    algo = config.build_algo()
    try:
        before = greedy_reward(algo.get_module(), held_out_env, held_out)
        history = [float(algo.train().get("env_runners", {}).get("episode_return_mean", float("nan")))
                   for _ in range(iterations)]
        module = algo.get_module()
        after = greedy_reward(module, held_out_env, held_out)
        module.caller.no_call_bias = float(settings.get("no_call_bias", 0.0))
        save_fc_model(module.caller, tokenizer, out_dir, extra={"finetuned_from": str(model_dir)})
    finally:
        algo.stop()
    report = {"held_out_reward_before": before, "held_out_reward_after": after, "iterations": iterations,
              "lr": lr, "entropy_coeff": entropy_coeff,
              "env_steps": iterations * 256, "return_mean_per_iteration": history}
    (out_dir / "rl_report.json").write_text(json.dumps(report, indent=2))
    return report
