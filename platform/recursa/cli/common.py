"""Helpers several command groups share: configs sized for the cluster, model directories, the trace store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recursa.core.config import ConfigError

if TYPE_CHECKING:
    from recursa.core.hardware import Config
    from recursa.decisions.config import DecisionsConfig
    from recursa.decisions.formats import DecisionFormat
    from recursa.decisions.source import DecisionSource
    from recursa.traces.store import TraceStore


def check_dataset_path(out: Path) -> None:
    if out.suffix not in (".jsonl", ".parquet"):
        raise ConfigError(f"out: must end in .jsonl or .parquet, got {out.name!r}")


def trace_store(db: str) -> TraceStore:
    """Open the trace store; a bad URL or an unreachable database is a ConfigError."""
    from sqlalchemy.exc import OperationalError

    from recursa.traces.store import TraceStore

    try:
        return TraceStore(db)
    except ValueError as error:
        raise ConfigError(f"db: {error}") from None
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0]
        raise ConfigError(f"db: cannot open the trace store: {reason}") from None


DECISIONS_DB_HELP = ("The application's database (SQLite path or postgresql://... URL); default: $DATABASE_URL, "
                     "else DATABASE_URL in ./.env.")
MAPPING_HELP = "Decisions config (table, columns, weights, formats); default: the conventional names."


def decision_source(db: str | None, mapping: Path | None) -> DecisionSource:
    """The application's decisions table, by the mapping; every problem is a ConfigError naming its field."""
    from recursa.core.config import load_config
    from recursa.decisions.config import DecisionsConfig
    from recursa.decisions.source import DecisionSource, open_engine, resolve_database_url

    config = load_config(mapping, DecisionsConfig)
    return DecisionSource(open_engine(resolve_database_url(db)), config)


def known_agent_type(config: DecisionsConfig, agent_type: str) -> str:
    """The agent type, upper-cased; a ConfigError naming `agent-type` when the config does not know it."""
    if agent_type.upper() not in config.agent_types():
        raise ConfigError(f"agent-type: unknown agent type {agent_type!r}; known: {', '.join(config.agent_types())}")
    return agent_type.upper()


def agent_format(config: DecisionsConfig, agent_type: str) -> DecisionFormat:
    """The prompt format of an agent type; a ConfigError naming `formats.TYPE` when it cannot be had."""
    from recursa.decisions.formats import resolve_format

    try:
        return resolve_format(agent_type, config.formats)
    except ValueError as error:
        raise ConfigError(f"formats.{agent_type.upper()}: {error}") from None


def fc_model_dir(checkpoint: Path) -> Path:
    """The tool caller at `checkpoint` (its directory, its int8 export, or its run)."""
    from recursa.core.artifact import open_artifact

    return open_artifact(checkpoint, expect=("fc-model", "fc-int8")).path


def sized_for_cluster(settings: Config) -> Config:
    """Fill the fields the config left unset from the hardware profile of the Ray cluster in use."""
    from recursa.core.hardware import cluster_hardware, profile_for, with_profile

    return with_profile(settings, profile_for(*cluster_hardware()))
