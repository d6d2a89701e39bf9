"""OpenAI `tools` of a chat request as function specs, checked before any model sees them."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from recursa.serving.schemas import ToolDefinition
from recursa.tools.schema import FunctionSpec, function_from_json_schema


class InvalidRequest(ValueError):
    """A request that cannot be served as sent; the message names the field."""


def offered_functions(tools: Sequence[ToolDefinition]) -> list[FunctionSpec]:
    """The request's tools as function specs; InvalidRequest if one is not a function schema or names repeat."""
    try:
        functions = [function_from_json_schema(t.function.model_dump()) for t in tools]
    except (ValidationError, KeyError, TypeError, ValueError) as error:
        raise InvalidRequest(f"tools: not a function schema: {error}".splitlines()[0]) from None
    if len({f.name for f in functions}) != len(functions):
        raise InvalidRequest("tools: function names must be unique")
    return functions


