"""The `recursa` Typer app, its command groups and the console they print to; `main` turns a
ConfigError into one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from recursa.core.config import ConfigError

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
infer_app = typer.Typer(help="Run trained models on new inputs.", no_args_is_help=True)
export_app = typer.Typer(help="Export trained models for serving (int8 quantization, merged LoRA, ONNX).",
                         no_args_is_help=True)
llm_app = typer.Typer(help="Causal language models with LoRA adapters.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(infer_app, name="infer")
app.add_typer(export_app, name="export")
app.add_typer(llm_app, name="llm")
traces_app = typer.Typer(help="Import, label, inspect and export agent traces.", no_args_is_help=True)
app.add_typer(traces_app, name="traces")
tune_app = typer.Typer(help="Hyperparameter search on Ray Tune: PBT of the gift policy, ASHA of the tool caller.",
                       no_args_is_help=True)
app.add_typer(tune_app, name="tune")
rewards_app = typer.Typer(help="Component rewards of an application's decisions, stored beside its table.",
                          no_args_is_help=True)
app.add_typer(rewards_app, name="rewards")
registry_app = typer.Typer(help="Registered model versions of decision agents.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
decisions_app = typer.Typer(help="Decision agents from an application's database, end to end.", no_args_is_help=True)
app.add_typer(decisions_app, name="decisions")
pipeline_app = typer.Typer(help="A decision agent from its table to a registered version, as one run.",
                           no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
ab_app = typer.Typer(help="A/B comparison of the model versions serving a decision agent.", no_args_is_help=True)
app.add_typer(ab_app, name="ab")
jobs_app = typer.Typer(help="Manage Ray jobs on a cluster (see `recursa submit`).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

# Piped output (CI logs, `make demo | tee`) gets a table wide enough to read.
console = Console() if sys.stdout.isatty() else Console(width=120)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    from recursa.core.tune import TuneInterrupted

    try:
        app(args=argv, standalone_mode=True)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except TuneInterrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        sys.exit(130)
