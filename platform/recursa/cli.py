"""The `recursa` command: thin wrappers over the library, grouped by what they act on.

Invalid configs and paths exit 2 with one line naming the field; no tracebacks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from recursa.config import ConfigError, TrainGiftConfig, load_config

app = typer.Typer(
    help="Train small tool-using agents with RL on Ray, and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Generate and convert datasets.", no_args_is_help=True)
train_app = typer.Typer(help="Train policies.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate trained policies.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

# Piped output (CI logs, `make demo | tee`) gets a table wide enough to read.
console = Console() if sys.stdout.isatty() else Console(width=120)


@data_app.command("gift")
def data_gift(
    out: Path = typer.Option(..., "--out", help="Directory for catalog.parquet and users_{train,test}.parquet."),
    items: int = typer.Option(600, min=50, help="Catalog size."),
    users: int = typer.Option(2000, min=20, help="Number of users (20% held out for test)."),
    seed: int = typer.Option(0, help="Seed; the same seed gives the same data."),
) -> None:
    """Generate the synthetic gift catalog and train/test users as Parquet."""
    from recursa.data.gift import generate_gift_data, write_gift_data

    paths = write_gift_data(generate_gift_data(items, users, seed=seed), out)
    for name, path in paths.items():
        console.print(f"{name:8s} {path}")


@train_app.command("gift")
def train_gift(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config (jobs/configs/gift_ppo.yaml)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its latest checkpoint."),
) -> None:
    """Train the TRM gift policy with PPO on RLlib env runners (BC warm start optional)."""
    settings = load_config(config, TrainGiftConfig)
    from recursa.rl.train_gift import train_gift as run
    from recursa.runtime import init_ray

    init_ray()
    result = run(settings, resume=resume)
    console.print(f"run: {result.run_dir}\ncheckpoint: {result.checkpoint}\nenv steps: {result.env_steps}")


@eval_app.command("gift")
def eval_gift(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A checkpoint, its module directory, or a run directory."),
    config: Optional[Path] = typer.Option(None, "--config", help="The run's config (default: next to the checkpoint)."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the held-out episodes."),
    users: int = typer.Option(400, "--users", min=1, help="Held-out users (one episode each)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Evaluate a policy on held-out users beside the random, no-tools, greedy and oracle baselines."""
    if not checkpoint.exists():
        raise ConfigError(f"checkpoint: path does not exist: {checkpoint}")
    settings = load_config(config or _run_config_near(checkpoint), TrainGiftConfig)
    from recursa.rl.evaluate import evaluate_with_baselines, load_policy_module, module_policy
    from recursa.rl.report import print_results

    module = load_policy_module(checkpoint)
    results = evaluate_with_baselines(settings.env, module_policy(module), users, seed)
    print_results(results, console)
    if out:
        out.write_text(json.dumps(results, indent=2))


@app.command("quickstart")
def quickstart(
    config: Optional[Path] = typer.Option(None, "--config", help="Override the quickstart config (YAML)."),
) -> None:
    """Everything at laptop scale: data, BC + PPO on Ray, held-out evaluation, results table."""
    settings = load_config(config, TrainGiftConfig) if config else None
    from recursa.rl.quickstart import QUICKSTART, run_quickstart
    from recursa.runtime import init_ray

    settings = settings or QUICKSTART
    init_ray()
    run_quickstart(settings, console)


def _run_config_near(checkpoint: Path) -> Path | None:
    for parent in [checkpoint, *checkpoint.resolve().parents][:6]:
        if (parent / "config.yaml").is_file():
            return parent / "config.yaml"
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        app(args=argv, standalone_mode=True)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
