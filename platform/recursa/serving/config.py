"""Serve settings every model deployment shares."""

from __future__ import annotations

from pydantic import Field

from recursa.core.config import StrictModel


class ServeBatching(StrictModel):
    """`@serve.batch` settings of a model deployment (max_batch_size 1 turns batching off)."""

    max_batch_size: int = Field(16, ge=1, le=256)
    batch_wait_timeout_s: float = Field(0.002, ge=0.0, le=1.0)
