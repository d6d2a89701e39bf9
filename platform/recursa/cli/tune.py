"""`recursa tune`: PBT of the gift policy, ASHA of the tool caller, and their leaderboards."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from recursa.cli.app import console, tune_app
from recursa.core.config import load_config
from recursa.fc.config import TuneFCConfig
from recursa.gift.config import TuneGiftConfig


@tune_app.command("gift")
def tune_gift(
    config: Path | None = typer.Option(None, "--config", help="YAML config (jobs/configs/gift_pbt.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Restore the interrupted run; finished trials stay done."),
) -> None:
    """Population-based training of the gift policy's PPO hyperparameters and TRM depth, beside the base config."""
    settings = load_config(config, TuneGiftConfig)
    from recursa.gift.pbt import tune_gift as run

    _run_search(run, settings, resume)


@tune_app.command("fc")
def tune_fc(
    config: Path | None = typer.Option(None, "--config", help="YAML config (jobs/configs/fc_asha.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Restore the interrupted run; finished trials stay done."),
) -> None:
    """ASHA over the tool-calling TRM's size, learning rate, depth and supervision steps; Ray Train trials of the base config."""
    settings = load_config(config, TuneFCConfig)
    from recursa.fc.asha import tune_fc as run

    _run_search(run, settings, resume)


@tune_app.command("report")
def tune_report(run: Path = typer.Argument(..., help="A tune run directory (runs/<name>).")) -> None:
    """Print the leaderboard of a tune run, finished or still going, and its tune_report.json if written."""
    _print_leaderboard(run)
    if (run / "tune_report.json").is_file():
        console.print((run / "tune_report.json").read_text())


def _run_search(run, settings: TuneGiftConfig | TuneFCConfig, resume: bool) -> None:
    """Run a search on the cluster in RAY_ADDRESS (or a local Ray), then print its leaderboard and report."""
    from recursa.core.runtime import init_ray

    init_ray()
    report = run(settings, resume=resume)
    _print_leaderboard(Path(settings.runs_dir) / settings.name)
    console.print(json.dumps(report, indent=2))


def _print_leaderboard(run: Path) -> None:
    from recursa.cli.tune_report import load_leaderboard, print_leaderboard

    print_leaderboard(load_leaderboard(run), console, title=f"{run}")
