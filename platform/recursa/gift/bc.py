"""Behaviour-cloning warm start: expert episodes to Parquet, then supervised pre-training.

Why not RLlib's offline path (BC/MARWIL over recorded episodes)? RLlib records episodes by
running an RLModule on env runners, and our expert is not a function of the observation: it
reads the environment's hidden utilities. Recording it would mean faking an RLModule around
env internals, and RLlib's offline pipeline spins up Ray Data for a few thousand transitions.
So the expert is rolled out in-process, its episodes are stored as Parquet (one row per step),
and the same `TRMPolicyModule` that PPO trains is fitted to them with cross-entropy on the
masked logits plus a value regression on the discounted return, then saved with
`save_to_path`, where PPO's `on_algorithm_init` loads it from (`gift.ppo.load_policy_weights`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ray.rllib.core.columns import Columns
from rich.progress import track

from recursa.gift.config import TrainGiftConfig
from recursa.gift.env import GiftRecommendationEnv
from recursa.gift.policies import Policy, carrying_state, expert_policy
from recursa.gift.ppo import trm_module_spec


def record_episodes(env: GiftRecommendationEnv, policy: Policy, episodes: int, gamma: float, seed: int) -> pd.DataFrame:
    """Roll out a policy; one row per step with observation, mask, action, reward and return."""
    rows = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        steps, done = [], False
        while not done:
            action = policy(env, observation)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            steps.append((observation, action, reward))
            observation, done = next_observation, terminated or truncated
        discounted = 0.0
        for t, (obs, action, reward) in reversed(list(enumerate(steps))):
            discounted = reward + gamma * discounted
            rows.append({
                "episode_id": episode, "t": t, "action": int(action), "reward": float(reward),
                "return": discounted, "observations": obs["observations"].ravel().tolist(),
                "action_mask": obs["action_mask"].tolist(),
            })
    return pd.DataFrame(rows).sort_values(["episode_id", "t"], ignore_index=True)


def _tensors(episodes: pd.DataFrame, token_shape: tuple[int, int], sequences: bool) -> dict[str, torch.Tensor]:
    """The steps as tensors, one row per step, or with `sequences` one row per episode padded to
    the longest ([episodes, steps, ...], for a module with recurrent state); `valid` marks real steps."""
    flat = {
        "observations": torch.tensor(np.stack(episodes["observations"]), dtype=torch.float32).view(-1, *token_shape),
        "action_mask": torch.tensor(np.stack(episodes["action_mask"]), dtype=torch.float32),
        "action": torch.tensor(episodes["action"].to_numpy(), dtype=torch.long),
        "return": torch.tensor(episodes["return"].to_numpy(), dtype=torch.float32),
        "valid": torch.ones(len(episodes), dtype=torch.bool),
    }
    if not sequences:
        return flat
    episode, step = (torch.tensor(episodes[column].to_numpy()) for column in ("episode_id", "t"))
    shape = (int(episode.max()) + 1, int(step.max()) + 1)
    padded = {key: value.new_zeros((*shape, *value.shape[1:])) for key, value in flat.items()}
    for key, value in flat.items():
        padded[key][episode, step] = value
    return padded


def _module_batch(module, data: dict[str, torch.Tensor], rows) -> dict:
    """A module batch of the given rows, starting each episode from the learned state if the module carries one."""
    batch: dict = {Columns.OBS: {"observations": data["observations"][rows], "action_mask": data["action_mask"][rows]}}
    if module.recursion == "across_steps":
        observations = batch[Columns.OBS]["observations"]
        y, z = module.trm.initial_carry(observations.shape[0], observations.shape[2])
        batch[Columns.STATE_IN] = {"y": y, "z": z}
    return batch


def behaviour_cloning(config: TrainGiftConfig, run_dir: Path) -> tuple[Path, dict[str, float]]:
    """Record expert episodes, fit the TRM policy to them; return the saved module path and metrics."""
    env = GiftRecommendationEnv(config.env.model_dump())
    episodes = record_episodes(env, expert_policy, config.bc.episodes, config.ppo.gamma, seed=config.seed)
    episodes.to_parquet(run_dir / "expert_episodes.parquet", index=False)
    spec = trm_module_spec(config)
    spec.observation_space, spec.action_space = env.observation_space, env.action_space
    env.close()
    torch.manual_seed(config.seed)  # the module's initial weights: a run is repeatable from its seed
    module = spec.build()
    token_shape = spec.observation_space["observations"].shape
    sequences = module.recursion == "across_steps"
    metrics = fit_policy(module, _tensors(episodes, token_shape, sequences), config)
    if config.bc.value_warmup_episodes:
        env = GiftRecommendationEnv(config.env.model_dump())
        own = record_episodes(env, sampling_policy(module, config.seed), config.bc.value_warmup_episodes,
                              config.ppo.gamma, seed=config.seed + config.bc.episodes)
        env.close()
        metrics |= fit_value_head(module, _tensors(own, token_shape, sequences))
    path = (run_dir / "bc_module").resolve()
    module.save_to_path(path)
    return path, metrics


def fit_policy(module, data: dict[str, torch.Tensor], config: TrainGiftConfig) -> dict[str, float]:
    """Cross-entropy on the expert's actions plus value regression; returns final accuracy and loss.
    `data` rows are steps or (for a module with recurrent state) whole episodes, batched to about
    `bc.batch_size` steps."""
    settings = config.bc
    optimizer = torch.optim.AdamW(module.parameters(), lr=settings.lr)
    size = len(data["action"])
    steps_per_row = float(data["valid"].sum()) / size
    rows_per_batch = max(1, round(settings.batch_size / steps_per_row))
    steps_per_epoch = max(1, size // rows_per_batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    module.train()
    for _ in track(range(settings.epochs), description="behaviour cloning"):
        correct, seen, total_loss = 0, 0, 0.0
        order = torch.randperm(size, generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * rows_per_batch:(step + 1) * rows_per_batch]
            batch = _module_batch(module, data, index)
            out = module.forward_train(batch)
            valid = data["valid"][index]
            logits = out[Columns.ACTION_DIST_INPUTS][valid]
            values = module.compute_values(batch, embeddings=out[Columns.EMBEDDINGS])[valid]
            actions = data["action"][index][valid]
            loss = torch.nn.functional.cross_entropy(logits, actions) + \
                0.5 * torch.nn.functional.mse_loss(values, data["return"][index][valid])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), config.ppo.grad_clip)
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(-1) == actions).sum())
            total_loss += float(loss.detach()) * len(actions)
            seen += len(actions)
    module.eval()
    return {"bc_accuracy": correct / seen, "bc_loss": total_loss / seen, "bc_transitions": int(data["valid"].sum())}


def sampling_policy(module, seed: int) -> Policy:
    """The module's stochastic policy, sampled as PPO's env runners sample it (its recurrent state,
    if any, carried through each episode)."""
    generator = torch.Generator().manual_seed(seed)
    logits = carrying_state(module.step_logits)
    return lambda env, observation: int(torch.multinomial(torch.softmax(logits(env, observation), -1), 1,
                                                          generator=generator))


def fit_value_head(module, data: dict[str, torch.Tensor]) -> dict[str, float]:
    """The value head refitted, trunk frozen, to the cloned policy's own discounted returns by least
    squares. Fitted on the expert's returns, it would expect more than the clone earns, and PPO's
    first advantages would mark most sampled actions as worse than expected."""
    batch = _module_batch(module, data, slice(None))
    valid, returns = data["valid"], data["return"][data["valid"]]
    with torch.no_grad():
        features = module.forward_train(batch)[Columns.EMBEDDINGS][valid]
        design = torch.cat([features, torch.ones(len(features), 1)], dim=1)
        before = module.compute_values(batch, embeddings=features)
        solution = torch.linalg.lstsq(design, returns[:, None]).solution.squeeze(-1)
        module.value_head.weight.copy_(solution[:-1][None])
        module.value_head.bias.copy_(solution[-1:])
        after = module.compute_values(batch, embeddings=features)
    return {"value_warmup_transitions": len(features),
            "value_mse_before_warmup": float(torch.mean((before - returns) ** 2)),
            "value_mse_after_warmup": float(torch.mean((after - returns) ** 2))}
