"""recursa's own tables, beside the application's (which recursa never alters): the rewards it
computed (with the weights used), the registered model versions, and the decisions it served."""

from __future__ import annotations

import sqlalchemy as sa

from recursa.traces.store import UTCDateTime

metadata = sa.MetaData()

rewards = sa.Table(
    "recursa_rewards", metadata,
    sa.Column("decision_id", sa.String(128), primary_key=True),
    sa.Column("agent_type", sa.String(64), nullable=False, index=True),
    sa.Column("reward", sa.Float, nullable=False),  # in [0, 1]
    sa.Column("raw", sa.Float, nullable=False),  # the weighted mean in [-1, 1] it comes from
    sa.Column("components", sa.JSON, nullable=False),  # the observed components used
    sa.Column("weights", sa.JSON, nullable=False),  # the weights used
    sa.Column("computed_at", UTCDateTime(), nullable=False),
)

model_versions = sa.Table(
    "recursa_model_versions", metadata,
    sa.Column("version_id", sa.String(128), primary_key=True),
    sa.Column("agent_type", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("base", sa.Text, nullable=False),  # the base model (`model.path`)
    sa.Column("adapter", sa.Text),  # a LoRA adapter directory on top of the base, or None
    sa.Column("gguf", sa.Text),  # a GGUF export, or None
    sa.Column("metrics", sa.JSON, nullable=False),  # the evaluation at registration
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

served_decisions = sa.Table(
    "recursa_served_decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_type", sa.String(64), nullable=False),
    sa.Column("version_id", sa.String(128), nullable=False),
    sa.Column("user_id", sa.String(128)),
    sa.Column("request_id", sa.String(128)),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("completion", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_recursa_served_agent_version", "agent_type", "version_id"),
)


def create_tables(engine: sa.Engine) -> None:
    """Create recursa's tables where missing (idempotent); the application's are left as they are."""
    metadata.create_all(engine, checkfirst=True)
