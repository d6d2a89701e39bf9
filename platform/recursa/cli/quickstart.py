"""`recursa quickstart`: the gift pipeline end to end at laptop scale (`make demo`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from recursa.cli.app import app, console
from recursa.core.config import load_config
from recursa.gift.config import TrainGiftConfig


class Preset(str, Enum):
    """`--preset`: the names of gift.quickstart.PRESETS (default: runs/quickstart/, hard: runs/quickstart-hard/)."""

    default = "default"
    hard = "hard"


@app.command("quickstart")
def quickstart(
    config: Path | None = typer.Option(None, "--config", help="Override the quickstart config (YAML)."),
    preset: Preset = typer.Option(Preset.default, "--preset", help="default, or hard: 24 candidates, per-item "
                                  "tool calls within a budget, noisy tools, hidden preferences."),
) -> None:
    """Everything at laptop scale: data, BC + PPO on Ray, held-out evaluation, results table."""
    settings = load_config(config, TrainGiftConfig) if config else None
    from recursa.core.runtime import init_ray
    from recursa.gift.quickstart import PRESETS, run_quickstart

    settings = settings or PRESETS[preset.value]
    init_ray()
    run_quickstart(settings, console)
