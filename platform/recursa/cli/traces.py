"""`recursa traces`: import, label, inspect and export agent traces."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path

import typer

from recursa.cli.app import console, traces_app
from recursa.cli.common import check_dataset_path, trace_store
from recursa.core.config import ConfigError

DB_OPTION_HELP = "Trace store: a SQLite file or a postgresql://user:password@host:port/db URL."


@traces_app.command("import")
def traces_import(
    source: Path = typer.Argument(..., help="JSON lines of traces (exported records or ExecutionTrace JSON)."),
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
) -> None:
    """Add the traces of a JSONL file to the store; ids already stored are skipped."""
    if not source.is_file():
        raise ConfigError(f"source: file not found: {source}")
    from recursa.traces.export import read_jsonl

    with trace_store(db) as store:
        try:
            added = store.add_many(read_jsonl(source))
        except ValueError as error:
            raise ConfigError(f"source: {error}") from None
        console.print(f"imported {added} new traces into {store.url}")


@traces_app.command("export")
def traces_export(
    out: Path = typer.Option(..., "--out", help="Output file: .jsonl or .parquet (one row per trace)."),
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
    agent_type: str | None = typer.Option(None, "--agent-type", help="Only this agent type."),
    min_reward: float | None = typer.Option(None, "--min-reward", help="Only traces rewarded at least this."),
    labelled: bool = typer.Option(False, "--labelled", help="Only labelled traces."),
    with_feedback: bool = typer.Option(False, "--with-feedback", help="Only traces with user feedback."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many traces, oldest first."),
    since: str | None = typer.Option(None, "--since", help="Created at or after this ISO 8601 time (UTC if no zone)."),
    until: str | None = typer.Option(None, "--until", help="Created before this ISO 8601 time (UTC if no zone)."),
) -> None:
    """Export traces as a dataset file that `datasets.load_dataset` reads."""
    check_dataset_path(out)
    filters = dict(agent_type=agent_type, min_reward=min_reward, labelled_only=labelled,
                   with_feedback_only=with_feedback, limit=limit,
                   since=_iso_time("since", since), until=_iso_time("until", until))
    with trace_store(db) as store:
        write = store.export_jsonl if out.suffix == ".jsonl" else store.export_parquet
        console.print(f"wrote {write(out, **filters)} traces to {out}")


@traces_app.command("stats")
def traces_stats(db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP)) -> None:
    """Counts, labels, rewards, tokens and cost, per agent type."""
    from rich.table import Table

    with trace_store(db) as store:
        stats = store.stats()
    table = Table("agent type", "traces", "labelled", "good", "bad", "feedback", "mean reward",
                  "tokens in", "tokens out", "cost", title=f"traces in {store.url}")
    rows = [*stats["by_agent_type"].items(), ("total", stats["total"])]
    for name, row in rows:
        mean = "-" if row["mean_reward"] is None else f"{row['mean_reward']:.3f}"
        table.add_row(name, *(str(row[key]) for key in ("traces", "labelled", "good", "bad", "with_feedback")),
                      mean, str(row["tokens_in"]), str(row["tokens_out"]), f"{row['cost']:.4f}")
    console.print(table)


@traces_app.command("label")
def traces_label(
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
    agent_type: str | None = typer.Option(None, "--agent-type", help="Only this agent type."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many traces."),
) -> None:
    """Label unlabelled traces good or bad in the terminal, with optional feedback; saved as you go."""
    from recursa.traces.labeller import label_interactively

    with trace_store(db) as store:
        counts = label_interactively(store, console, agent_type=agent_type, limit=limit)
    console.print(f"good {counts['good']}, bad {counts['bad']}, skipped {counts['skipped']}")


class DatasetFormat(str, Enum):
    """What `recursa traces dataset` writes: KTO records, or DPO pairs made from them."""

    kto = "kto"
    dpo = "dpo"


@traces_app.command("dataset")
def traces_dataset(
    out: Path = typer.Option(..., "--out", help="The records: .jsonl or .parquet."),
    fmt: DatasetFormat = typer.Option(DatasetFormat.kto, "--format",
                                      help="kto: (prompt, completion, label); dpo: (prompt, chosen, rejected), "
                                           "each good completion of a prompt against each bad one."),
    db: str = typer.Option("runs/traces.db", "--db", help=DB_OPTION_HELP),
    agent_type: str | None = typer.Option(None, "--agent-type", help="Only this agent type."),
    threshold: float = typer.Option(0.5, "--threshold", help="Unlabelled traces are good when the reward "
                                    "engine scores them at least this (hand labels always win)."),
    labelled_only: bool = typer.Option(False, "--labelled", help="Only hand-labelled traces."),
) -> None:
    """Build a KTO training file (`data.records_path` of a kto config), or DPO pairs, from stored traces."""
    from recursa.llm.datasets import dpo_records, trace_records, write_records
    from recursa.traces.engine import RewardEngine

    check_dataset_path(out)
    with trace_store(db) as store:
        stored = store.query(agent_type=agent_type, labelled_only=labelled_only)
    engine = RewardEngine.default()
    records = trace_records(stored, labels=[engine.binary_label(t, threshold) for t in stored])
    good = sum(r["label"] for r in records)
    if fmt is DatasetFormat.dpo:
        pairs = dpo_records(records)
        write_records(pairs, out)
        console.print(f"{out}: {len(pairs)} pairs from {good} good and {len(records) - good} bad completions")
        return
    write_records(records, out)
    console.print(f"{out}: {len(records)} records ({good} good, {len(records) - good} bad)")


def _iso_time(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{field}: not an ISO 8601 date or time: {value!r}") from None
