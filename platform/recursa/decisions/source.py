"""The application's decisions, read where they are: its own table, reflected and never altered.

The connection comes from `--db`, else the `DATABASE_URL` environment variable, else a `.env` file
in the working directory. The table is reflected (SQLAlchemy Core), so the mapping is checked against
the columns the table really has, and every query is built from expressions with bound parameters.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recursa.core.config import ConfigError
from recursa.decisions.config import DecisionsConfig
from recursa.traces.components import COMPONENTS, ComponentScores
from recursa.traces.store import database_url

DATABASE_URL_ENV = "DATABASE_URL"


def resolve_database_url(db: str | None, env_file: str | Path = ".env") -> str:
    """`--db`, else $DATABASE_URL, else DATABASE_URL in a `.env` file; ConfigError naming `db` if none."""
    if db:
        return db
    if os.environ.get(DATABASE_URL_ENV):
        return os.environ[DATABASE_URL_ENV]
    path = Path(env_file)
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() == DATABASE_URL_ENV:
                return value.strip().strip("'\"")
    raise ConfigError(f"db: give --db, set {DATABASE_URL_ENV}, or put {DATABASE_URL_ENV}=... in {path}")


def open_engine(url: str) -> sa.Engine:
    """An engine for a SQLite path or URL, or a PostgreSQL URL; a bad URL is a ConfigError naming `db`."""
    try:
        return sa.create_engine(database_url(url))
    except ValueError as error:
        raise ConfigError(f"db: {error}") from None


@dataclass(frozen=True)
class Decision:
    """One row of the application's table, read through the mapping."""

    id: str
    agent_type: str
    state: Any
    decision: Any
    model_version: str | None = None
    user_id: str | None = None
    feedback: str | None = None
    created_at: datetime | None = None
    scores: ComponentScores = field(default_factory=ComponentScores)

    @property
    def observed(self) -> dict[str, float]:
        """The outcome components observed so far."""
        return {name: value for name in COMPONENTS if (value := getattr(self.scores, name)) is not None}


class DecisionSource:
    """The decisions table named by a config, reflected from the database at `engine`."""

    def __init__(self, engine: sa.Engine, config: DecisionsConfig) -> None:
        self.engine, self.config = engine, config
        try:
            self.table = sa.Table(config.table, sa.MetaData(), schema=config.schema_name, autoload_with=engine)
        except sa.exc.NoSuchTableError:
            raise ConfigError(f"table: no table {config.table!r} in {_safe_url(engine)}") from None
        except sa.exc.OperationalError as error:
            raise ConfigError(f"db: cannot connect: {str(error.orig).strip().splitlines()[0]}") from None
        self.columns: dict[str, sa.Column] = {}
        for role, name in config.columns.model_dump().items():
            if name is None:
                continue
            if name not in self.table.c:
                raise ConfigError(f"columns.{role}: no column {name!r} in table {config.table!r} "
                                  f"(it has {', '.join(self.table.c.keys())})")
            self.columns[role] = self.table.c[name]

    def read(self, agent_type: str | None = None, *, ids: list[str] | None = None) -> Iterator[Decision]:
        """The decisions of `agent_type` (all when None), oldest first; only `ids` when given."""
        statement = sa.select(*self.columns.values())
        if agent_type is not None:
            statement = statement.where(sa.func.upper(self.columns["agent_type"]) == agent_type.upper())
        if ids is not None:
            statement = statement.where(sa.cast(self.columns["id"], sa.String).in_(ids))
        order = [self.columns["created_at"]] if "created_at" in self.columns else []
        statement = statement.order_by(*order, self.columns["id"])
        with self.engine.connect() as conn:
            for row in conn.execute(statement):
                yield self._decision(row._mapping)

    def _decision(self, row: Any) -> Decision:
        values = {role: row[column.name] for role, column in self.columns.items()}
        scores = {name: None if values.get(name) is None else float(values[name]) for name in COMPONENTS}
        try:
            components = ComponentScores(**scores)
        except ValueError:
            raise ValueError(f"decision {values['id']}: outcome components must lie in [-1, 1], got {scores}") from None
        return Decision(
            id=str(values["id"]), agent_type=str(values["agent_type"]),
            state=_json(values["state"]), decision=_json(values["decision"]),
            model_version=_text(values.get("model_version")), user_id=_text(values.get("user_id")),
            feedback=_text(values.get("feedback")) or None, created_at=values.get("created_at"), scores=components)


def _json(value: Any) -> Any:
    """A JSON column's value: PostgreSQL's JSON types arrive decoded, JSON text is decoded here."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _safe_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
