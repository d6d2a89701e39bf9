"""Held-out evaluation of an LLM agent on an action environment: accuracy, reward, format errors."""

from __future__ import annotations

from pathlib import Path

from recursa.llm.actions import BaseEnvironment, Trajectory, run_episodes
from recursa.llm.agent import LLMAgent
from recursa.llm.config import LLMModelSettings
from recursa.llm.models import load_causal_lm

SAMPLE_ERRORS = 5


def held_out_episodes(model, tokenizer, env_class: type[BaseEnvironment], episodes: int, seed: int,
                      max_new_tokens: int | None = None) -> list[Trajectory]:
    """Greedy episodes on `episodes` problems drawn with `seed` (kept apart from training seeds);
    actions of at most `max_new_tokens` (default: the environment's `answer_tokens`)."""
    agent = LLMAgent(model, tokenizer, max_new_tokens=max_new_tokens or env_class.answer_tokens)
    return sorted(run_episodes(env_class, agent, env_class.sample_problems(episodes, seed)), key=lambda t: t.index)


def summarize(trajectories: list[Trajectory]) -> dict:
    """success_rate (= accuracy: the problem solved), mean_reward (episode return), format_error_rate
    (malformed or unknown actions per action), mean_steps, the reward components, and a few failed
    episodes as samples."""
    steps = sum(len(t.steps) for t in trajectories)
    failures = [t for t in trajectories if not t.success][:SAMPLE_ERRORS]
    success_rate = sum(t.success for t in trajectories) / len(trajectories)
    return {
        "components": reward_components(trajectories),
        "episodes": len(trajectories),
        "success_rate": success_rate,
        "accuracy": success_rate,
        "mean_reward": sum(t.total_reward for t in trajectories) / len(trajectories),
        "format_error_rate": sum(t.format_errors for t in trajectories) / max(steps, 1),
        "mean_steps": steps / len(trajectories),
        "sample_errors": [{"task": t.task, "actions": [s.output.strip() for s in t.steps],
                           "last_observation": t.steps[-1].observation if t.steps else ""} for t in failures],
    }


def reward_components(trajectories: list[Trajectory]) -> dict[str, float]:
    """The mean per episode of each reward component the environment reported (summed over steps);
    a format error counts as `malformed`."""
    totals: dict[str, float] = {}
    for step in (step for t in trajectories for step in t.steps):
        for name, value in step.info.items():
            if isinstance(value, (int, float)):
                totals[name] = totals.get(name, 0.0) + float(value)
    return {name: total / len(trajectories) for name, total in sorted(totals.items())}


def evaluate_adapter(settings: LLMModelSettings, adapter: str | Path | None, env_class: type[BaseEnvironment],
                     episodes: int, seed: int) -> dict:
    """The held-out summary of the base model with `adapter` (None: the base model alone)."""
    model, tokenizer = load_causal_lm(settings, adapter=adapter, trainable=False)
    return summarize(held_out_episodes(model, tokenizer, env_class, episodes, seed))
