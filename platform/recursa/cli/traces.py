"""`recursa traces`: import, label, inspect and export agent traces."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from recursa.cli.app import console, traces_app
from recursa.cli.common import (
    MAPPING_HELP,
    agent_format,
    check_dataset_path,
    decision_source,
    known_agent_type,
    trace_store,
)
from recursa.core.config import ConfigError

if TYPE_CHECKING:
    from recursa.decisions.records import ExportFilters

DB_OPTION_HELP = "Trace store: a SQLite file or a postgresql://user:password@host:port/db URL."
DEFAULT_TRACE_DB = "runs/traces.db"


class RecordFormat(str, Enum):
    """The training records `recursa traces export --format` writes (see recursa.decisions.records)."""

    sft = "sft"
    kto = "kto"
    dpo = "dpo"
    grpo = "grpo"


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


@traces_app.command("import-sessions")
def traces_import_sessions(
    directory: Path = typer.Argument(..., help="Agent checkpoints: JSON files with sessions (role/content "
                                     "history), task state and token and cost counters (docs/traces-and-rewards.md)."),
    db: str = typer.Option(DEFAULT_TRACE_DB, "--db", help=DB_OPTION_HELP),
) -> None:
    """Import agent conversation logs as traces, one per user turn; print statistics per agent and tool."""
    from rich.table import Table

    from recursa.traces.sessions import read_sessions, session_stats

    if not directory.is_dir():
        raise ConfigError(f"directory: not a directory: {directory}")
    try:
        traces = read_sessions(directory)
    except ValueError as error:
        raise ConfigError(f"directory: {error}") from None
    with trace_store(db) as store:
        added = store.add_many(traces)
        console.print(f"imported {added} new traces ({len(traces)} read) into {store.url}")
    table = Table("agent", "sessions", "traces", "unanswered", "tool", "calls", "success", title="sessions")
    for agent, row in session_stats(traces).items():
        tools = list(row["tools"].items()) or [("-", {"calls": 0, "success_rate": None})]
        for i, (name, tool) in enumerate(tools):
            first = (agent, str(row["sessions"]), str(row["traces"]), str(row["unanswered"])) if i == 0 else ("",) * 4
            rate = "-" if tool["success_rate"] is None else f"{tool['success_rate']:.0%}"
            table.add_row(*first, name, str(tool["calls"]), rate)
    console.print(table)


@traces_app.command("export")
def traces_export(
    out: Path = typer.Option(..., "--out", help="Output file: .jsonl or .parquet."),
    db: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP + " With --format: the application's "
                                  "database (default $DATABASE_URL, else ./.env); else default runs/traces.db."),
    agent_type: str | None = typer.Option(None, "--agent-type", help="Only this agent type."),
    fmt: RecordFormat | None = typer.Option(None, "--format", help="Training records of an agent type's rewarded "
                                            "decisions (sft, kto, dpo or grpo) instead of raw traces."),
    mapping: Path | None = typer.Option(None, "--mapping", help="With --format: " + MAPPING_HELP),
    min_reward: float | None = typer.Option(None, "--min-reward", help="Only traces rewarded at least this."),
    labelled: bool = typer.Option(False, "--labelled", help="Only labelled traces."),
    with_feedback: bool = typer.Option(False, "--with-feedback", help="Only traces with user feedback."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many traces: the oldest "
                                     "(raw traces) or the most recent decisions (--format)."),
    threshold: float = typer.Option(0.5, "--threshold", help="kto, dpo: a decision rewarded at least this is good."),
    since: str | None = typer.Option(None, "--since", help="Created at or after this ISO 8601 time (UTC if no zone)."),
    until: str | None = typer.Option(None, "--until", help="Created before this ISO 8601 time (UTC if no zone)."),
) -> None:
    """Export traces as a dataset file that `datasets.load_dataset` reads; with --format, the training
    records (prompt/completion) of an agent type's rewarded decisions, for `recursa train llm`."""
    check_dataset_path(out)
    if fmt is not None:
        if agent_type is None:
            raise ConfigError("agent-type: --format exports the decisions of one agent type: give --agent-type")
        from recursa.decisions.records import ExportFilters

        _export_decision_records(out, db, mapping, agent_type, fmt,
                                 ExportFilters(min_reward, with_feedback, limit, threshold))
        return
    filters = dict(agent_type=agent_type, min_reward=min_reward, labelled_only=labelled,
                   with_feedback_only=with_feedback, limit=limit,
                   since=_iso_time("since", since), until=_iso_time("until", until))
    with trace_store(db or DEFAULT_TRACE_DB) as store:
        write = store.export_jsonl if out.suffix == ".jsonl" else store.export_parquet
        console.print(f"wrote {write(out, **filters)} traces to {out}")


def _export_decision_records(out: Path, db: str | None, mapping: Path | None, agent_type: str, fmt: RecordFormat,
                             filters: ExportFilters) -> None:
    """The records of an agent type's rewarded decisions that pass `filters`."""
    from recursa.decisions.records import build_records, rewarded_decisions
    from recursa.llm.datasets import write_records

    source = decision_source(db, mapping)
    agent_type = known_agent_type(source.config, agent_type)
    prompt_format = agent_format(source.config, agent_type)
    decisions = rewarded_decisions(source, agent_type, filters)
    records = build_records(decisions, fmt.value, prompt_format, filters.threshold)
    write_records(records, out)
    console.print(f"wrote {len(records)} {fmt.value} records from {len(decisions)} rewarded {agent_type} "
                  f"decisions to {out}")


@traces_app.command("stats")
def traces_stats(
    db: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP + " With --agent-type: the application's "
                                  "database (default $DATABASE_URL, else ./.env); else default runs/traces.db."),
    agent_type: str | None = typer.Option(None, "--agent-type", help="The decisions of this agent type in the "
                                          "application's table: rewards, pending ones, feedback, model versions."),
    mapping: Path | None = typer.Option(None, "--mapping", help="With --agent-type: " + MAPPING_HELP),
) -> None:
    """Counts, labels, rewards, tokens and cost, per agent type; or one decision agent's figures."""
    from rich.table import Table

    if agent_type is not None:
        _decision_stats(db, mapping, agent_type)
        return
    with trace_store(db or DEFAULT_TRACE_DB) as store:
        stats = store.stats()
    table = Table("agent type", "traces", "labelled", "good", "bad", "feedback", "mean reward",
                  "tokens in", "tokens out", "cost", title=f"traces in {store.url}")
    rows = [*stats["by_agent_type"].items(), ("total", stats["total"])]
    for name, row in rows:
        mean = "-" if row["mean_reward"] is None else f"{row['mean_reward']:.3f}"
        table.add_row(name, *(str(row[key]) for key in ("traces", "labelled", "good", "bad", "with_feedback")),
                      mean, str(row["tokens_in"]), str(row["tokens_out"]), f"{row['cost']:.4f}")
    console.print(table)


def _decision_stats(db: str | None, mapping: Path | None, agent_type: str) -> None:
    from rich.table import Table

    from recursa.decisions.rewards import reward_stats

    source = decision_source(db, mapping)
    stats = reward_stats(source, known_agent_type(source.config, agent_type))
    mean = "-" if stats["mean_reward"] is None else f"{stats['mean_reward']:.3f}"
    console.print(f"{stats['agent_type']}: {stats['decisions']} decisions, {stats['rewarded']} rewarded "
                  f"(mean {mean}), {stats['pending']} awaiting a reward, {stats['unobserved']} without outcomes, "
                  f"{stats['with_feedback']} with feedback")
    table = Table("model version", "decisions", "mean reward", title=f"{stats['agent_type']} by model version")
    for version, row in stats["versions"].items():
        table.add_row(version, str(row["decisions"]),
                      "-" if row["mean_reward"] is None else f"{row['mean_reward']:.3f}")
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


@traces_app.command("autolabel")
def traces_autolabel(
    model: Path = typer.Option(..., "--model", help="The learned reward's directory (written by --fit, or by "
                               "LearnedReward.save)."),
    db: str = typer.Option(DEFAULT_TRACE_DB, "--db", help=DB_OPTION_HELP),
    confidence: float = typer.Option(0.9, "--confidence", help="Between 0.5 and 1 (both excluded): label good at this "
                                     "probability or more, bad at 1 - this or less."),
    fit: bool = typer.Option(False, "--fit", help="First fit the learned reward on the store's hand-labelled "
                             "traces and save it to --model."),
    agent_type: str | None = typer.Option(None, "--agent-type", help="Only this agent type."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many unlabelled traces."),
    out: Path | None = typer.Option(None, "--out", help="Write the labels set (trace id, label, probability) "
                                    "as JSON lines, to review them."),
) -> None:
    """Label the unlabelled traces that the learned reward is confident about; the rest are left to people."""
    import json

    from recursa.traces.autolabel import autolabel
    from recursa.traces.learned import LearnedReward

    if not 0.5 < confidence < 1:
        raise ConfigError(f"confidence: must lie between 0.5 and 1 (both excluded), got {confidence}")
    with trace_store(db) as store:
        if fit:
            try:
                reward = LearnedReward().fit(store.query(labelled_only=True, agent_type=agent_type))
            except ValueError as error:
                raise ConfigError(f"fit: {error}") from None
            reward.save(model)
        elif not (model / "model.safetensors").is_file():
            raise ConfigError(f"model: no learned reward in {model} (train one with --fit)")
        else:
            reward = LearnedReward.load(model)
        labels, unsure = autolabel(store, reward, confidence, agent_type=agent_type, limit=limit)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(label.__dict__) + "\n" for label in labels))
    good = sum(label.label for label in labels)
    console.print(f"labelled {good} good and {len(labels) - good} bad; {unsure} left for people "
                  f"(probability between {1 - confidence:.2f} and {confidence:.2f})")


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
