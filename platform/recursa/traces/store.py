"""A store of agent traces in SQLite (a file, the default) or PostgreSQL (a URL), one schema for both.

The fields that are filtered on or updated after the episode (agent type, time, reward, label,
feedback, token counts, cost) are columns; everything else of the trace is one JSON document.
Each field has exactly one home, so updating a label is a single-row UPDATE.

Built on SQLAlchemy Core rather than sqlite3 and psycopg side by side: one `Table` definition
serves both dialects, filters are written once as expressions, every value is a bound parameter
by construction, and `create_all` makes schema creation idempotent. PostgreSQL is reached
through psycopg 3 (SQLAlchemy's `postgresql+psycopg` dialect).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recursa.traces.models import ExecutionTrace

DEFAULT_DB = Path("runs/traces.db")

# The trace fields kept as columns; the rest of the trace is the JSON document.
COLUMN_FIELDS = ("trace_id", "agent_type", "created_at", "reward", "label", "feedback",
                 "tokens_in", "tokens_out", "cost")

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$")
_ID_CHUNK = 500  # ids per IN (...) list, well below SQLite's limit on bound parameters


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored as naive UTC and read back timezone-aware; naive inputs are UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def traces_table(name: str = "traces", metadata: sa.MetaData | None = None) -> sa.Table:
    """The table definition shared by SQLite and PostgreSQL."""
    if not _TABLE_NAME.match(name):
        raise ValueError(f"table name {name!r} must be 1-48 letters, digits or '_', not starting with a digit")
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column("agent_type", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("reward", sa.Float),
        sa.Column("label", sa.Boolean),
        sa.Column("feedback", sa.Text),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Index(f"ix_{name}_created_at", "created_at"),
        sa.Index(f"ix_{name}_agent_type_created_at", "agent_type", "created_at"),
    )


def database_url(target: str | Path) -> sa.URL:
    """A SQLAlchemy URL from a SQLite path, `sqlite:///PATH` or `postgresql://...`.

    ValueError names the scheme of any other URL.
    """
    text = str(target)
    if "://" not in text:
        return sa.URL.create("sqlite", database=text)
    scheme, rest = text.split("://", 1)
    if scheme.lower() == "sqlite":
        text = "sqlite://" + rest
    elif scheme.lower() in ("postgresql", "postgres", "postgresql+psycopg"):
        text = "postgresql+psycopg://" + rest
    else:
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}: use a SQLite path, sqlite:///PATH or postgresql://..."
        )
    try:
        return sa.make_url(text)
    except (ValueError, sa.exc.ArgumentError) as exc:
        raise ValueError(f"invalid {scheme} URL: {exc}") from None


class TraceStore:
    """Agent traces in SQLite or PostgreSQL, filtered by agent, time, reward, label and feedback.

    `TraceStore("runs/traces.db")` opens (and creates) a SQLite file;
    `TraceStore("postgresql://user:pw@host:5432/db")` a PostgreSQL database.
    `table` names the table, so that several stores can share one database.
    """

    def __init__(self, url: str | Path = DEFAULT_DB, *, table: str = "traces") -> None:
        db_url = database_url(url)
        if db_url.get_backend_name() == "sqlite" and db_url.database not in (None, "", ":memory:"):
            Path(db_url.database).parent.mkdir(parents=True, exist_ok=True)
        self._table = traces_table(table)
        self._engine = sa.create_engine(db_url)
        self._table.metadata.create_all(self._engine, checkfirst=True)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def table_name(self) -> str:
        return self._table.name

    def __repr__(self) -> str:
        return f"TraceStore({self.url!r}, table={self.table_name!r})"

    def add(self, trace: ExecutionTrace) -> bool:
        """Store a trace; False (and nothing changed) if its trace_id is already stored."""
        return self.add_many([trace]) == 1

    def add_many(self, traces: Iterable[ExecutionTrace]) -> int:
        """Store traces in one transaction, skipping ids already stored; returns how many were new."""
        batch = {trace.trace_id: trace for trace in traces}
        column = self._table.c.trace_id
        with self._engine.begin() as conn:
            ids = list(batch)
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start:start + _ID_CHUNK]
                for stored in conn.scalars(sa.select(column).where(column.in_(chunk))):
                    del batch[stored]
            if batch:
                conn.execute(sa.insert(self._table), [_to_row(trace) for trace in batch.values()])
        return len(batch)

    def get(self, trace_id: str) -> ExecutionTrace | None:
        """The trace with this id, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(self._table).where(self._table.c.trace_id == trace_id)).first()
        return None if row is None else _from_row(row)

    def set_label(self, trace_id: str, label: bool | None) -> None:
        """A person's judgement: good (True), bad (False), or None to clear it."""
        self._update(trace_id, label=label)

    def set_reward(self, trace_id: str, reward: float | None) -> None:
        """The reward engine's score (None clears it)."""
        self._update(trace_id, reward=reward)

    def set_feedback(self, trace_id: str, feedback: str | None) -> None:
        """Free-text feedback from a user (None clears it)."""
        self._update(trace_id, feedback=feedback)

    def query(
        self,
        *,
        agent_type: str | None = None,
        min_reward: float | None = None,
        labelled_only: bool = False,
        with_feedback_only: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[ExecutionTrace]:
        """Traces matching every given filter, oldest first.

        `min_reward` keeps traces scored at least that much (unscored ones are left out);
        `since` is inclusive and `until` exclusive; naive datetimes are UTC.
        """
        t = self._table.c
        conditions = []
        if agent_type is not None:
            conditions.append(t.agent_type == agent_type)
        if min_reward is not None:
            conditions.append(t.reward >= min_reward)
        if labelled_only:
            conditions.append(t.label.is_not(None))
        if with_feedback_only:
            conditions.append(t.feedback.is_not(None))
        if since is not None:
            conditions.append(t.created_at >= since)
        if until is not None:
            conditions.append(t.created_at < until)
        return self._select(conditions, limit)

    def unlabelled(self, limit: int | None = None, *, agent_type: str | None = None) -> list[ExecutionTrace]:
        """Traces no one has labelled yet, oldest first."""
        conditions = [self._table.c.label.is_(None)]
        if agent_type is not None:
            conditions.append(self._table.c.agent_type == agent_type)
        return self._select(conditions, limit)

    def stats(self) -> dict[str, Any]:
        """Counts, mean reward, tokens and cost: in total and per agent type."""
        t = self._table.c
        summary = [
            sa.func.count().label("traces"),
            sa.func.count(t.label).label("labelled"),
            sa.func.count(sa.case((t.label.is_(True), 1))).label("good"),
            sa.func.count(sa.case((t.label.is_(False), 1))).label("bad"),
            sa.func.count(t.feedback).label("with_feedback"),
            sa.func.count(t.reward).label("with_reward"),
            sa.func.avg(t.reward).label("mean_reward"),
            sa.func.coalesce(sa.func.sum(t.tokens_in), 0).label("tokens_in"),
            sa.func.coalesce(sa.func.sum(t.tokens_out), 0).label("tokens_out"),
            sa.func.coalesce(sa.func.sum(t.cost), 0.0).label("cost"),
        ]
        by_agent = sa.select(t.agent_type, *summary).group_by(t.agent_type).order_by(t.agent_type)
        with self._engine.connect() as conn:
            total = conn.execute(sa.select(*summary)).one()
            groups = conn.execute(by_agent).all()
        return {
            "total": _summary(total),
            "by_agent_type": {row.agent_type: _summary(row) for row in groups},
        }

    def export_jsonl(self, path: str | Path, **filters: Any) -> int:
        """Write the traces matching `filters` (see `query`) as JSON lines; returns the count."""
        from recursa.traces.export import write_jsonl

        return write_jsonl(self.query(**filters), path)

    def export_parquet(self, path: str | Path, **filters: Any) -> int:
        """Write the traces matching `filters` (see `query`) as Parquet; returns the count."""
        from recursa.traces.export import write_parquet

        return write_parquet(self.query(**filters), path)

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _select(self, conditions: list[sa.ColumnElement[bool]], limit: int | None) -> list[ExecutionTrace]:
        t = self._table.c
        statement = sa.select(self._table).where(*conditions).order_by(t.created_at, t.trace_id).limit(limit)
        with self._engine.connect() as conn:
            return [_from_row(row) for row in conn.execute(statement)]

    def _update(self, trace_id: str, **values: Any) -> None:
        statement = sa.update(self._table).where(self._table.c.trace_id == trace_id).values(**values)
        with self._engine.begin() as conn:
            if conn.execute(statement).rowcount == 0:
                raise KeyError(f"no trace with id {trace_id!r}")


def _to_row(trace: ExecutionTrace) -> dict[str, Any]:
    columns = {name: getattr(trace, name) for name in COLUMN_FIELDS}
    return {**columns, "trace": trace.model_dump(mode="json", exclude=set(COLUMN_FIELDS))}


def _from_row(row: sa.Row) -> ExecutionTrace:
    fields = row._mapping
    return ExecutionTrace.model_validate({**fields["trace"], **{name: fields[name] for name in COLUMN_FIELDS}})


def _summary(row: sa.Row) -> dict[str, Any]:
    values = dict(row._mapping)
    values.pop("agent_type", None)
    mean = values["mean_reward"]
    return {**values, "mean_reward": None if mean is None else float(mean),
            "tokens_in": int(values["tokens_in"]), "tokens_out": int(values["tokens_out"]),
            "cost": float(values["cost"])}
