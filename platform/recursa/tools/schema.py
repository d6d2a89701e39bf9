"""Function schemas: what a tool offers to a model and what a model calls.

A function has typed parameters (nested for objects, an element type for arrays). Schemas are
read liberally (OpenAI wrappers, JSON-schema "object", BFCL "dict", xLAM flat maps) by
`function_from_json_schema` and written in the OpenAI style by `function_to_json_schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
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


# Type names of every dialect (Python, JSON schema, BFCL), lower-cased, to the internal types.
_TYPE_NAMES: dict[str, str] = {
    "str": "string", "string": "string", "text": "string",
    "int": "integer", "integer": "integer", "long": "integer",
    "float": "float", "number": "float", "double": "float",
    "bool": "boolean", "boolean": "boolean",
    "list": "array", "array": "array", "tuple": "array", "set": "array", "sequence": "array",
    "dict": "object", "object": "object", "mapping": "object",
}
_NONE_NAMES = frozenset({"none", "nonetype", "null"})
# Internal types to JSON-schema types; "any" is written as a schema without "type".
_JSON_TYPES: dict[str, str] = {
    "string": "string", "integer": "integer", "float": "number", "boolean": "boolean",
    "array": "array", "object": "object",
}
_ITEMS_NAME = "items"  # the name given to the element spec of an array



# ---------------------------------------------------------------------------------------------
# Types


def _split_top_level(text: str, sep: str) -> list[str]:
    """`text` split on `sep` where it is not inside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[({":
            depth += 1
        elif char in "])}":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _parse_type(type_: Any) -> tuple[str, ParamSpec | None, bool]:
    """(internal type, element spec of an array, marked optional) of a type in any dialect.

    Accepts "List[int]", "str, optional", "Optional[str]", "int | None", "integer", and
    JSON-schema type lists such as ["string", "null"]. Unknown types become "any".
    """
    if isinstance(type_, list):
        names = [str(t) for t in type_ if str(t).lower() not in _NONE_NAMES]
        return _parse_type(names[0]) if names else ("any", None, False)
    if not isinstance(type_, str) or not type_.strip():
        return "any", None, False
    head, *qualifiers = _split_top_level(type_, ",")
    ptype, items, optional = _parse_type_expression(head)
    return ptype, items, optional or any("optional" in q.lower() for q in qualifiers)


def _parse_type_expression(expr: str) -> tuple[str, ParamSpec | None, bool]:
    """Like `_parse_type`, for one expression without ", optional" qualifiers."""
    alternatives = _split_top_level(expr, "|")
    name, args = ("union", alternatives) if len(alternatives) > 1 else _generic(expr)
    if name in ("optional", "union"):
        present = [arg for arg in args if arg.lower() not in _NONE_NAMES]
        ptype, items, _ = _parse_type_expression(present[0]) if len(present) == 1 else ("any", None, False)
        return ptype, items, name == "optional" or len(present) < len(args)
    ptype = _TYPE_NAMES.get(name, "any")
    return ptype, _element_spec(args) if ptype == "array" else None, False


def _generic(expr: str) -> tuple[str, list[str]]:
    """("list", ["int"]) for "typing.List[int]": the lower-cased base name and its arguments."""
    base, bracket, rest = expr.partition("[")
    name = base.strip().rsplit(".", 1)[-1].lower()
    args = _split_top_level(rest.rsplit("]", 1)[0], ",") if bracket else []
    return name, [arg for arg in args if arg and arg != "..."]


def _element_spec(args: list[str]) -> ParamSpec | None:
    """The element spec of List[X] / Tuple[X, X]; None when absent or mixed (Tuple[str, int])."""
    specs = [_param_from_type_string(arg) for arg in args]
    return specs[0] if specs and all(spec == specs[0] for spec in specs) else None


def _param_from_type_string(type_: str) -> ParamSpec:
    """An array element spec from a Python-style type string such as "Dict[str, Any]"."""
    ptype, items, _ = _parse_type(type_)
    return ParamSpec(name=_ITEMS_NAME, type=ptype, items=items)


# ---------------------------------------------------------------------------------------------
# Parameters and functions


def _param(name: str, spec: Mapping[str, Any], required: bool) -> ParamSpec:
    """One parameter from its spec in any dialect (JSON schema, BFCL, xLAM flat map)."""
    ptype, items, _ = _parse_type(spec.get("type"))
    properties = spec.get("properties")
    if isinstance(spec.get("items"), Mapping):
        items = _param(_ITEMS_NAME, spec["items"], required=True)
    if "type" not in spec:  # a schema without a type may still show what it is
        ptype = "object" if isinstance(properties, Mapping) else "array" if items else "any"
    enum = spec.get("enum")
    return ParamSpec(
        name=name,
        type=ptype,
        description=str(spec.get("description") or ""),
        required=required,
        default=spec.get("default"),
        enum=list(enum) if isinstance(enum, (list, tuple)) else None,
        items=items if ptype == "array" else None,
        properties=_object_params(properties, spec.get("required"))
        if ptype == "object" and isinstance(properties, Mapping) else None,
    )


def _marked_optional(spec: Mapping[str, Any]) -> bool:
    """Whether a parameter spec says it is optional ("str, optional", optional: true, ...)."""
    return spec.get("optional") is True or spec.get("required") is False or _parse_type(spec.get("type"))[2]


def _object_params(properties: Mapping[str, Any], required: Any) -> list[ParamSpec]:
    """The fields of a JSON-schema object.

    With a "required" list, exactly those are required; without one (nested BFCL dicts),
    a field is required unless it has a default or is marked optional.
    """
    def is_required(name: str, spec: Mapping[str, Any]) -> bool:
        if isinstance(required, list):
            return name in required
        return "default" not in spec and not _marked_optional(spec)

    return [_param(name, spec, is_required(name, spec)) for name, spec in properties.items()]


def _flat_params(params: Mapping[str, Any]) -> list[ParamSpec]:
    """xLAM's flat map {name: spec}: a parameter is required unless marked optional."""
    return [_param(name, spec, not _marked_optional(spec)) for name, spec in params.items()]


def _is_json_schema(params: Mapping[str, Any]) -> bool:
    """Whether `parameters` is a JSON-schema object rather than an xLAM flat map.

    In a flat map every value is a parameter spec (a dict), so a string "type", a "required"
    list, or "properties" that is not itself a spec, means JSON schema.
    """
    properties = params.get("properties")
    return (
        isinstance(params.get("type"), str)
        or isinstance(params.get("required"), list)
        or (isinstance(properties, Mapping) and not isinstance(properties.get("type"), str))
    )


def function_from_json_schema(d: Mapping[str, Any]) -> FunctionSpec:
    """A function from its schema: OpenAI style (optionally in a {"type": "function"} wrapper),
    BFCL ("dict" parameters), or xLAM (flat parameter map)."""
    if d.get("type") == "function" and isinstance(d.get("function"), Mapping):
        d = d["function"]
    params = d.get("parameters") or {}
    if _is_json_schema(params):
        parameters = _object_params(params.get("properties") or {}, params.get("required"))
    else:
        parameters = _flat_params(params)
    return FunctionSpec(name=d["name"], description=str(d.get("description") or ""), parameters=parameters)


def _param_schema(param: ParamSpec) -> dict[str, Any]:
    """The JSON schema of one parameter."""
    schema: dict[str, Any] = {}
    if param.type != "any":
        schema["type"] = _JSON_TYPES[param.type]
    if param.description:
        schema["description"] = param.description
    if param.enum is not None:
        schema["enum"] = param.enum
    if param.default is not None:
        schema["default"] = param.default
    if param.items is not None:
        schema["items"] = _param_schema(param.items)
    if param.properties is not None:
        schema.update(_object_schema(param.properties))
    return schema


def _object_schema(params: list[ParamSpec]) -> dict[str, Any]:
    """The JSON schema of an object with these fields."""
    return {
        "type": "object",
        "properties": {p.name: _param_schema(p) for p in params},
        "required": [p.name for p in params if p.required],
    }


def function_to_json_schema(fn: FunctionSpec) -> dict[str, Any]:
    """The OpenAI-style schema {"name", "description", "parameters": {"type": "object", ...}}."""
    return {"name": fn.name, "description": fn.description, "parameters": _object_schema(fn.parameters)}


_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "float": (int, float), "boolean": bool, "array": list, "object": dict,
}


def arguments_fit(arguments: dict[str, Any], spec: FunctionSpec) -> bool:
    """Whether `arguments` has every required parameter of `spec`, no other keys, and values of the right types."""
    if any(p.required and p.name not in arguments for p in spec.parameters):
        return False
    return all((param := spec.param(name)) is not None and _value_fits(value, param)
               for name, value in arguments.items())


def _value_fits(value: Any, param: ParamSpec) -> bool:
    if param.enum is not None and value not in param.enum:
        return False
    if param.type == "any":
        return True
    if isinstance(value, bool) and param.type != "boolean":
        return False  # JSON true is no number
    return isinstance(value, _PYTHON_TYPES[param.type])
