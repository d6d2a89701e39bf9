"""`recursa rewards`, `recursa registry` and `recursa ab`: decision agents from an application's database."""

from __future__ import annotations

from pathlib import Path

import typer

from recursa.cli.app import console, rewards_app
from recursa.cli.common import DECISIONS_DB_HELP, MAPPING_HELP, decision_source, known_agent_type
from recursa.core.config import ConfigError


@rewards_app.command("calculate")
def rewards_calculate(
    agent_type: str = typer.Option(..., "--agent-type", help="FILER, PRIORITIZER, LIBRARIAN, STORER, RETRIEVER, "
                                   "or one the mapping adds."),
    db: str | None = typer.Option(None, "--db", help=DECISIONS_DB_HELP),
    mapping: Path | None = typer.Option(None, "--mapping", help=MAPPING_HELP),
    pending: bool = typer.Option(False, "--pending", help="Only decisions without a reward (default: also "
                                 "rescore those whose outcomes changed since)."),
    recompute: bool = typer.Option(False, "--recompute", help="Rescore every decision with the current weights "
                                   "(after a weight change)."),
) -> None:
    """Compute the component reward (immediate, delayed, strategic) of an agent type's decisions and store
    it, with the weights used, in recursa_rewards beside the application's table; idempotent."""
    from recursa.decisions.rewards import calculate_rewards

    if pending and recompute:
        raise ConfigError("recompute: --pending and --recompute exclude each other")
    source = decision_source(db, mapping)
    agent_type = known_agent_type(source.config, agent_type)
    try:
        run = calculate_rewards(source, agent_type, pending_only=pending, recompute=recompute)
    except ValueError as error:
        raise ConfigError(f"columns: {error}") from None
    console.print(f"{agent_type}: {run.computed} rewards computed, {run.unchanged} up to date, "
                  f"{run.unobserved} decisions without outcomes yet")
    if run.other_weights:
        console.print(f"{run.other_weights} stored rewards use other weights than {source.config.weights_for(agent_type)}: "
                      "run with --recompute to rescore them")
