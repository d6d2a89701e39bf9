"""The internal function-calling schema every reader produces and every model consumes.

A function has typed parameters (nested for objects, an element type for arrays); an example
is a query, the functions offered, and the calls expected (none when no function fits).
BFCL-style ground truth (several acceptable values per argument) rides along when present.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ParamType = Literal["string", "integer", "float", "boolean", "array", "object", "any"]
PARAM_TYPES: tuple[str, ...] = ("string", "integer", "float", "boolean", "array", "object", "any")


class ParamSpec(BaseModel):
    """One parameter: its type, whether it is required, its default and allowed values."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: ParamType = "string"
    description: str = ""
    required: bool = True
    default: Any = None  # meaningful only when required is False
    enum: list[Any] | None = None
    items: ParamSpec | None = None  # element type of an array
    properties: list[ParamSpec] | None = None  # fields of an object


class FunctionSpec(BaseModel):
    """A callable function as offered to the model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: list[ParamSpec] = Field(default_factory=list)

    def param(self, name: str) -> ParamSpec | None:
        """The parameter called `name`, or None."""
        return next((p for p in self.parameters if p.name == name), None)


class FunctionCall(BaseModel):
    """A call: function name and JSON-valued arguments."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


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
