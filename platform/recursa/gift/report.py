"""The results table and the quickstart's report.json."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

_SHORT_TOOL_NAMES = {"price_comparison": "price", "inventory_check": "stock", "review_analysis": "reviews",
                     "trend_analysis": "trend", "budget_optimizer": "budget"}
REPORT_KEYS = ("mean_reward", "normalized_to_oracle", "tool_calls_per_episode", "tool_usage")


def print_results(results: dict, console: Console, title: str = "Gift recommendation, held-out users") -> None:
    """One row per policy: reward with its 95% interval, share of oracle, tool use."""
    table = Table(title=f"{title} (tool columns: calls per episode)")
    tools = list(results["policy"]["tool_usage"])
    for column in ("policy", "reward", "95% CI", "/oracle", "tools", *(_SHORT_TOOL_NAMES.get(t, t) for t in tools)):
        table.add_column(column, justify="left" if column == "policy" else "right")
    rows = [("TRM", results["policy"]), *results["baselines"].items()]
    for name, summary in rows:
        low, high = summary["ci95"]
        table.add_row(
            name,
            f"{summary['mean_reward']:.3f}",
            f"{low:.3f}-{high:.3f}",
            f"{summary['normalized_to_oracle']:.2f}",
            f"{summary['tool_calls_per_episode']:.2f}",
            *(f"{summary['tool_usage'].get(tool, 0.0):.2f}" for tool in tools),
        )
    console.print(table)


def print_comparison(comparison: dict, names: list[str], candidates: int, console: Console) -> None:
    """Two policies on the same users, and their paired difference."""
    table = Table(title=f"Two gift policies, {candidates} candidates, the same held-out users")
    for column in ("policy", "reward", "95% CI", "tools"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, key in zip(names, ("first", "second")):
        summary = comparison[key]
        low, high = summary["ci95"]
        table.add_row(name, f"{summary['mean_reward']:.3f}", f"{low:.3f}-{high:.3f}",
                      f"{summary['tool_calls_per_episode']:.2f}")
    difference = comparison["difference"]
    low, high = difference["ci95"]
    table.add_row("second - first (paired)", f"{difference['mean']:+.3f}", f"{low:+.3f} to {high:+.3f}",
                  f"wins {difference['second_wins']:.0%}, losses {difference['second_loses']:.0%}")
    console.print(table)


def training_summary(metrics: pd.DataFrame, window: int = 3) -> dict[str, float]:
    """The sampled episode return and the policy's entropy over PPO: means of the first and the
    last `window` iterations (whether RL improved on the warm start it was given)."""
    first, last = metrics.head(window), metrics.tail(window)
    return {"return_first": float(first["episode_return_mean"].mean()),
            "return_last": float(last["episode_return_mean"].mean()),
            "entropy_first": float(first["entropy"].mean()), "entropy_last": float(last["entropy"].mean())}


def quickstart_report(results: dict, env_steps: int, wall_seconds: float, num_env_runners: int, params: int,
                      train: dict[str, float]) -> dict:
    """report.json in the documented shape: the four summary keys per policy, then run facts."""

    def pick(summary: dict) -> dict:
        return {key: summary[key] for key in REPORT_KEYS}

    return {
        "policy": pick(results["policy"]),
        "baselines": {name: pick(summary) for name, summary in results["baselines"].items()},
        "env_steps": int(env_steps),
        "wall_seconds": float(wall_seconds),
        "num_env_runners": int(num_env_runners),
        "model": {"name": "trm", "params": int(params)},
        "train": train,
    }
