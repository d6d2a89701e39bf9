"""Readers from public function-calling formats into `FCExample`s, and JSON-schema conversion.

- xLAM (Salesforce): records with a query, tools and answers, the last two as JSON strings;
  parameters are a flat map with Python-style types ("List[int]", "str, optional").
- ms-swift agent format: records with tools (a JSON string) and messages, the calls being the
  `tool_call` messages.
- BFCL (Berkeley Function Calling Leaderboard): the data shipped in the `bfcl_eval` package,
  with its possible answers.

Function schemas are read liberally (OpenAI wrappers, JSON-schema "object", BFCL "dict",
xLAM flat maps) by `function_from_json_schema`, and written in the OpenAI style by
`function_to_json_schema`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recursa.data.fc.schema import FCExample, FunctionCall, FunctionSpec, ParamSpec, PossibleAnswer

log = logging.getLogger(__name__)

# A file (JSON list, or JSON Lines when the suffix is .jsonl) or records already loaded.
RecordSource = str | os.PathLike | Iterable[Mapping[str, Any] | str]

BFCL_CATEGORIES: tuple[str, ...] = (
    "simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
)
_BFCL_NO_CALL_CATEGORIES = frozenset({"irrelevance", "live_irrelevance"})
BFCL_INSTALL_HINT = "pip install --no-deps bfcl-eval==2026.3.23"

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


@dataclass
class ReadReport:
    """The examples read, and one line per record skipped saying why."""

    examples: list[FCExample] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


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


# ---------------------------------------------------------------------------------------------
# Records


def _load_records(source: RecordSource) -> list[Mapping[str, Any] | str]:
    """Records from a JSON list file, a JSON Lines file (one raw line per record), or as given."""
    if not isinstance(source, (str, os.PathLike)):
        return list(source)
    path = Path(source)
    if path.suffix == ".jsonl":
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    return records


def _json_value(value: Any) -> Any:
    """`value` decoded when it is a JSON string, as is otherwise."""
    return json.loads(value) if isinstance(value, str) else value


def _read_records(source: RecordSource, to_example: Callable[[Mapping[str, Any], int], FCExample],
                  fmt: str) -> ReadReport:
    """Convert every record, skipping (and reporting) those that are malformed."""
    report = ReadReport()
    for index, record in enumerate(_load_records(source)):
        try:
            report.examples.append(to_example(_json_value(record), index))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            report.skipped.append(f"{fmt} record {index}: {type(error).__name__}: {error}")
    if report.skipped:
        log.warning("%s: skipped %d malformed record(s); first: %s",
                    fmt, len(report.skipped), report.skipped[0])
    return report


def _record_id(record: Mapping[str, Any], index: int) -> str:
    """The record's own id, or its position."""
    return str(record.get("id", index))


def _functions(tools: Any) -> list[FunctionSpec]:
    """Functions from a tools list (or its JSON string)."""
    return [function_from_json_schema(tool) for tool in _json_value(tools) or []]


def _call(d: Mapping[str, Any]) -> FunctionCall:
    """A call from {"name", "arguments"}, the arguments possibly a JSON string."""
    return FunctionCall(name=d["name"], arguments=_json_value(d.get("arguments")) or {})


def _xlam_example(record: Mapping[str, Any], index: int) -> FCExample:
    return FCExample(
        id=_record_id(record, index),
        query=record["query"],
        functions=_functions(record.get("tools")),
        calls=[_call(answer) for answer in _json_value(record.get("answers")) or []],
        source="xlam",
    )


def read_xlam_report(source: RecordSource) -> ReadReport:
    """xLAM records as examples, with the malformed records skipped and reported."""
    return _read_records(source, _xlam_example, "xlam")


def read_xlam(source: RecordSource) -> list[FCExample]:
    """xLAM records as examples; malformed records are skipped with a logged warning."""
    return read_xlam_report(source).examples


def _swift_calls(content: Any) -> list[FunctionCall]:
    """The calls in one `tool_call` message: one call, or a list of them."""
    value = _json_value(content)
    return [_call(call) for call in value] if isinstance(value, list) else [_call(value)]


def _swift_example(record: Mapping[str, Any], index: int) -> FCExample:
    messages = record["messages"]
    query = next((m["content"] for m in messages if m["role"] == "user"), None)
    if query is None:
        raise ValueError("no user message")
    return FCExample(
        id=_record_id(record, index),
        query=query,
        functions=_functions(record.get("tools")),
        calls=[call for m in messages if m["role"] == "tool_call" for call in _swift_calls(m["content"])],
        source="swift",
    )


def read_swift_report(source: RecordSource) -> ReadReport:
    """ms-swift agent records as examples, with the malformed records skipped and reported."""
    return _read_records(source, _swift_example, "swift")


def read_swift(source: RecordSource) -> list[FCExample]:
    """ms-swift agent records as examples; malformed records are skipped with a logged warning."""
    return read_swift_report(source).examples


# ---------------------------------------------------------------------------------------------
# BFCL


def bfcl_data_dir() -> Path:
    """The data directory of the installed `bfcl_eval` package (found without importing it)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the BFCL data needs the bfcl_eval package: {BFCL_INSTALL_HINT}")
    return Path(spec.submodule_search_locations[0]) / "data"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _chosen_value(value: Any) -> Any:
    """A ground-truth value made concrete: nested {key: [acceptable values]} maps resolved."""
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return _chosen_arguments(value)
    if isinstance(value, list):
        return [_chosen_value(v) for v in value]
    return value


def _chosen_arguments(acceptable: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The first acceptable value of each argument, leaving out those that may be omitted ("")."""
    return {
        name: _chosen_value(values[0]) for name, values in acceptable.items() if values and values[0] != ""
    }


def _call_from_answer(answer: PossibleAnswer) -> FunctionCall:
    """One concrete call from a {function: {param: [acceptable values]}} ground truth."""
    (name, acceptable), = answer.items()
    return FunctionCall(name=name, arguments=_chosen_arguments(acceptable))


def _bfcl_query(question: list[list[Mapping[str, str]]]) -> str:
    """The user messages of the first turn, one per line (system messages left out)."""
    return "\n".join(m["content"] for m in question[0] if m["role"] == "user")


def _bfcl_example(record: Mapping[str, Any], category: str, answers: list[PossibleAnswer]) -> FCExample:
    return FCExample(
        id=record["id"],
        query=_bfcl_query(record["question"]),
        functions=[function_from_json_schema(fn) for fn in record["function"]],
        calls=[_call_from_answer(answer) for answer in answers],
        possible_answers=answers,
        source="bfcl",
        category=category,
    )


def read_bfcl(category: str, data_dir: str | os.PathLike | None = None) -> list[FCExample]:
    """One BFCL v4 category as examples, with its possible answers (none for irrelevance).

    `data_dir` holds BFCL_v4_<category>.json and possible_answer/; by default the data of the
    installed `bfcl_eval` package.
    """
    if category not in BFCL_CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; supported: {', '.join(BFCL_CATEGORIES)}")
    root = Path(data_dir) if data_dir is not None else bfcl_data_dir()
    filename = f"BFCL_v4_{category}.json"
    records = _read_jsonl(root / filename)
    if category in _BFCL_NO_CALL_CATEGORIES:
        return [_bfcl_example(r, category, []) for r in records]
    answers = {r["id"]: r["ground_truth"] for r in _read_jsonl(root / "possible_answer" / filename)}
    missing = [r["id"] for r in records if r["id"] not in answers]
    if missing:
        raise ValueError(f"BFCL {category}: no possible answer for {missing[0]} "
                         f"and {len(missing) - 1} more record(s)")
    return [_bfcl_example(r, category, answers[r["id"]]) for r in records]
