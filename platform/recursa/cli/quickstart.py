"""`recursa quickstart`: the gift pipeline end to end at laptop scale (`make demo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from recursa.cli.app import app, console
from recursa.core.config import load_config
from recursa.gift.config import TrainGiftConfig


@app.command("quickstart")
def quickstart(
    config: Path | None = typer.Option(None, "--config", help="Override the quickstart config (YAML)."),
) -> None:
    """Everything at laptop scale: data, BC + PPO on Ray, held-out evaluation, results table."""
    settings = load_config(config, TrainGiftConfig) if config else None
    from recursa.core.runtime import init_ray
    from recursa.gift.quickstart import QUICKSTART, run_quickstart

    settings = settings or QUICKSTART
    init_ray()
    run_quickstart(settings, console)
