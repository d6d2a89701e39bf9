"""Helpers several command groups share: configs sized for the cluster, model directories, the trace store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from recursa.core.config import ConfigError

if TYPE_CHECKING:
    from recursa.core.hardware import Config
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


def fc_model_dir(checkpoint: Path) -> Path:
    """The tool caller at `checkpoint` (its directory, its int8 export, or its run)."""
    from recursa.core.artifact import open_artifact

    return open_artifact(checkpoint, expect=("fc-model", "fc-int8")).path


def sized_for_cluster(settings: Config) -> Config:
    """Fill the fields the config left unset from the hardware profile of the Ray cluster in use."""
    from recursa.core.hardware import cluster_hardware, profile_for, with_profile

    return with_profile(settings, profile_for(*cluster_hardware()))
