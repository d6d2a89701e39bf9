"""A function-calling example, the unit every reader produces and every model consumes.

An example
is a query, the functions offered, and the calls expected (none when no function fits).
BFCL-style ground truth (several acceptable values per argument) rides along when present.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recursa.tools.schema import FunctionCall, FunctionSpec

# BFCL ground truth: one entry per expected call, {function: {param: [acceptable values]}},
# where "" among the values means the parameter may be omitted.
PossibleAnswer = dict[str, dict[str, list[Any]]]


class FCExample(BaseModel):
    """A query, the functions offered, and the expected calls (empty: no call fits)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    query: str
    functions: list[FunctionSpec]
    calls: list[FunctionCall] = Field(default_factory=list)
    possible_answers: list[PossibleAnswer] | None = None
    source: str = "generated"
    category: str | None = None
