"""Registered model versions of decision agents, in recursa's table beside the application's: what
each version is (a base model, with a LoRA adapter or as a GGUF file) and how it scored when it was
registered, so that what serves, and what an A/B report compares, is named and traceable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from recursa.decisions.tables import create_tables, model_versions


@dataclass(frozen=True)
class ModelVersion:
    """One registered version."""

    version_id: str
    agent_type: str
    name: str
    base: str
    adapter: str | None = None
    gguf: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


class ModelRegistry:
    """Model versions in the database at `engine` (the application's, or any other)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_tables(engine)

    def add(self, version: ModelVersion) -> ModelVersion:
        """Register a version; ValueError if its id is taken (a version is never silently replaced)."""
        row = {**version.__dict__, "agent_type": version.agent_type.upper(),
               "created_at": version.created_at or datetime.now(timezone.utc)}
        with self.engine.begin() as conn:
            if conn.scalar(sa.select(sa.func.count()).where(model_versions.c.version_id == version.version_id)):
                raise ValueError(f"version {version.version_id!r} is already registered")
            conn.execute(sa.insert(model_versions), [row])
        return ModelVersion(**row)

    def get(self, version_id: str) -> ModelVersion:
        """The version with this id; KeyError if none."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(model_versions).where(model_versions.c.version_id == version_id)).first()
        if row is None:
            raise KeyError(f"no registered version {version_id!r}")
        return ModelVersion(**row._mapping)

    def list(self, agent_type: str | None = None) -> list[ModelVersion]:
        """The versions (of one agent type), oldest first."""
        statement = sa.select(model_versions).order_by(model_versions.c.created_at, model_versions.c.version_id)
        if agent_type is not None:
            statement = statement.where(model_versions.c.agent_type == agent_type.upper())
        with self.engine.connect() as conn:
            return [ModelVersion(**row._mapping) for row in conn.execute(statement)]
