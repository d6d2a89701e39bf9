"""The A/B router: which registered version answers a request, by configured weights, the same
version for the same user every time; and the record of each decision served, with its version.

Plain Python under the Serve app, so that the split and the records are tested without a server.
A user id is hashed (SHA-256, stable across processes and machines, unlike Python's `hash`) onto
[0, 1) and falls in one version's share of the weights; requests without a user draw at random.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from datetime import datetime, timezone

import sqlalchemy as sa

from recursa.decisions.tables import create_tables, served_decisions


class Router:
    """Picks a version per request from `weights` ({version id: weight}, any positive scale)."""

    def __init__(self, weights: Mapping[str, float], seed: int | None = None) -> None:
        if not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError(f"routes need non-negative weights, not all 0: {dict(weights)}")
        total = sum(weights.values())
        self.versions = sorted(weights)  # a fixed order, so a user's bucket does not depend on dict order
        self.bounds, running = [], 0.0
        for version in self.versions:
            running += weights[version] / total
            self.bounds.append(running)
        self.rng = random.Random(seed)

    def route(self, user_id: str | None = None) -> str:
        """The version for this user (sticky), or a weighted draw without one."""
        point = self.rng.random() if user_id is None else _unit_hash(user_id)
        return next((v for v, bound in zip(self.versions, self.bounds) if point < bound), self.versions[-1])


def _unit_hash(text: str) -> float:
    """A stable point in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


class ServedDecisions:
    """Records each decision served, with the version that made it, in recursa_served_decisions."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_tables(engine)

    def record(self, agent_type: str, version_id: str, prompt: str, completion: str, *,
               user_id: str | None = None, request_id: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(served_decisions), [{
                "agent_type": agent_type.upper(), "version_id": version_id, "user_id": user_id,
                "request_id": request_id, "prompt": _storable(prompt), "completion": _storable(completion),
                "created_at": datetime.now(timezone.utc)}])

    def counts(self, agent_type: str) -> dict[str, int]:
        """Decisions served per version."""
        t = served_decisions.c
        statement = sa.select(t.version_id, sa.func.count()).where(t.agent_type == agent_type.upper()) \
            .group_by(t.version_id)
        with self.engine.connect() as conn:
            return {version: int(count) for version, count in conn.execute(statement)}


def _storable(text: str) -> str:
    """Text PostgreSQL stores: it refuses NUL characters, which a model's raw output may hold."""
    return text.replace("\x00", "\ufffd")
