"""`recursa tune report`: the leaderboard of a tune run directory, whichever search made it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from recursa.core.config import ConfigError


def load_leaderboard(run_dir: Path) -> pd.DataFrame:
    """The leaderboard of a PBT (runs/<name>/pbt) or ASHA (runs/<name>/asha) run, read from Tune's files."""
    if (run_dir / "pbt").is_dir():
        from recursa.gift.pbt import gift_leaderboard

        return gift_leaderboard(run_dir)
    if (run_dir / "asha").is_dir():
        from recursa.fc.asha import fc_leaderboard

        return fc_leaderboard(run_dir)
    raise ConfigError(f"run: no Tune experiment (pbt/ or asha/) under {run_dir}")


# Short headers, so that a leaderboard fits 120 columns.
HEADERS = {"env_runners/episode_return_mean": "return", "num_env_steps_sampled_lifetime": "env steps",
           "entropy_coeff": "entropy", "clip_param": "clip", "gae_lambda": "lambda",
           "experiment": "run", "hidden_size": "hidden", "function_accuracy": "function_acc",
           "execution_reward": "exec_reward", "ast_accuracy": "ast_acc"}


STATUS = {"TERMINATED": "done", "RUNNING": "running", "PENDING": "pending", "PAUSED": "paused", "ERROR": "error"}


def print_leaderboard(table: pd.DataFrame, console: Console, title: str) -> None:
    """The leaderboard as a table, floats to 3 significant digits."""
    view = Table(title=f"Leaderboard: {title}")
    for column in table.columns:
        header = HEADERS.get(column, column)
        view.add_column(header, justify="left" if column in ("trial", "status") else "right", no_wrap=True,
                        min_width=len(header))
    for row in table.assign(status=table["status"].map(STATUS).fillna(table["status"])).itertuples(index=False):
        view.add_row(*(_cell(value) for value in row))
    console.print(view)


def _cell(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return str(int(value)) if value.is_integer() and abs(value) >= 1000 else f"{value:.3g}"
    return str(value)
