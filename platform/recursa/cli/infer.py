"""`recursa infer`: run a trained tool caller on new queries."""

from __future__ import annotations

from pathlib import Path

import typer

from recursa.cli.app import infer_app
from recursa.cli.common import fc_model_dir
from recursa.core.config import ConfigError


@infer_app.command("fc")
def infer_fc(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A model directory (runs/<name>/model) or its run."),
    tools: Path | None = typer.Option(None, "--tools", help="JSON list of function schemas (OpenAI style)."),
    query: str | None = typer.Option(None, "--query", help="The user's request."),
    interactive: bool = typer.Option(False, "--interactive", help="Read queries from the terminal."),
    batch: Path | None = typer.Option(None, "--batch", help="JSONL of {query, tools} (or FCExample) lines."),
) -> None:
    """Print the function calls the model makes, as JSON."""
    model_dir = fc_model_dir(checkpoint)
    from recursa.fc.infer import run_batch, run_interactive, run_one

    if batch is not None:
        if not batch.is_file():
            raise ConfigError(f"batch: file not found: {batch}")
        run_batch(model_dir, batch)
        return
    if tools is None or not tools.is_file():
        raise ConfigError(f"tools: a JSON file of function schemas is required (got {tools})")
    if interactive:
        run_interactive(model_dir, tools)
    elif query:
        run_one(model_dir, tools, query)
    else:
        raise ConfigError("query: give --query, --interactive or --batch")
