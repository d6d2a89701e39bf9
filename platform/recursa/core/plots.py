"""Learning-curve PNGs from a run's metrics table."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def plot_learning_curve(metrics: pd.DataFrame, out: Path) -> None:
    """Episode return, utility and tool calls against env steps."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(metrics["env_steps"], metrics["episode_return_mean"], label="episode return")
    left.plot(metrics["env_steps"], metrics["utility"], label="utility (normalised)")
    if "eval_to_oracle" in metrics:
        held_out = metrics[["env_steps", "eval_to_oracle"]].dropna()
        left.plot(held_out["env_steps"], held_out["eval_to_oracle"], marker="o", label="held-out, share of oracle")
    left.set_xlabel("env steps")
    left.set_ylabel("mean per episode")
    left.legend()
    right.plot(metrics["env_steps"], metrics["tool_calls"], color="tab:green")
    right.set_xlabel("env steps")
    right.set_ylabel("tool calls per episode")
    figure.suptitle("PPO, TRM policy, gift recommendation")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_llm_curves(metrics: pd.DataFrame, out: Path, title: str) -> None:
    """Each numeric series a LoRA run logged (loss; for GRPO rewards, success, KL) against its step."""
    step = "iteration" if "iteration" in metrics else "epoch"
    series = [name for name in ("loss", "train_reward_mean", "train_success_rate", "eval_success_rate", "kl")
              if name in metrics and metrics[name].notna().any()]
    figure, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3.5), squeeze=False)
    for axis, name in zip(axes[0], series):
        known = metrics[[step, name]].dropna()
        axis.plot(known[step], known[name], marker="o" if len(known) < 12 else None)
        axis.set_xlabel(step)
        axis.set_title(name)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
