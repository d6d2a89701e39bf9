"""What a tool is: a name, a description, a typed argument model and a callable."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# JSON-schema keywords whose values are data, not schemas: never strip titles inside them.
_DATA_KEYWORDS = frozenset({"default", "const", "enum", "examples"})


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call. Failures are results too, never exceptions.

    `output` is shared with the registry's cache: treat it as read-only.
    """

    tool: str
    ok: bool
    output: Any
    error: str | None
    latency_s: float
    cached: bool


@dataclass(frozen=True)
class Tool:
    """A callable an agent can use, with the schema its arguments must satisfy.

    `fn` is called with the validated arguments as keyword arguments. Set
    `cacheable=False` for tools whose result may change between identical calls
    (side effects, live data).
    """

    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[..., Any]
    cacheable: bool = True

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.match(self.name):
            raise ValueError(
                f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'"
            )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, without validation."""
        return self.fn(*args, **kwargs)

    def openai_schema(self) -> dict[str, Any]:
        """The tool as an OpenAI function-calling declaration."""
        parameters = _without_titles(self.args_model.model_json_schema())
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    cacheable: bool = True,
) -> Any:
    """Build a Tool from a typed function; usable as `@tool` or `@tool(name=...)`.

    Arguments are validated against the function's signature and type hints
    (`Annotated[int, Field(ge=0)]` adds constraints); unknown arguments are
    rejected. The description defaults to the function's docstring.
    """

    def build(func: Callable[..., Any]) -> Tool:
        tool_name = name or func.__name__
        return Tool(
            name=tool_name,
            description=description or inspect.getdoc(func) or "",
            args_model=_args_model(func, tool_name),
            fn=func,
            cacheable=cacheable,
        )

    return build if fn is None else build(fn)


def _args_model(func: Callable[..., Any], tool_name: str) -> type[BaseModel]:
    """A pydantic model with one field per parameter of `func`."""
    hints = get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args and **kwargs cannot be described")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), default)
    model_name = "".join(part.capitalize() for part in re.split(r"[_-]", tool_name)) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def _without_titles(node: Any) -> Any:
    """A copy of a JSON schema without pydantic's generated 'title' entries."""
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: value if key in _DATA_KEYWORDS else _without_titles(value)
        for key, value in node.items()
        # A string under "title" is an annotation; a dict there is a property named "title".
        if not (key == "title" and isinstance(value, str))
    }
