"""Readers from public function-calling formats into `FCExample`s.

- xLAM (Salesforce): records with a query, tools and answers, the last two as JSON strings;
  parameters are a flat map with Python-style types ("List[int]", "str, optional").
- ms-swift agent format: records with tools (a JSON string) and messages, the calls being the
  `tool_call` messages.
- BFCL (Berkeley Function Calling Leaderboard): the data shipped in the `bfcl_eval` package,
  with its possible answers.

Function schemas are read by `recursa.tools.schema.function_from_json_schema`.
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

from recursa.fc.data.schema import FCExample, PossibleAnswer
from recursa.tools.schema import FunctionCall, FunctionSpec, function_from_json_schema

log = logging.getLogger(__name__)

# A file (JSON list, or JSON Lines when the suffix is .jsonl) or records already loaded.
RecordSource = str | os.PathLike | Iterable[Mapping[str, Any] | str]

BFCL_CATEGORIES: tuple[str, ...] = (
    "simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
)
_BFCL_NO_CALL_CATEGORIES = frozenset({"irrelevance", "live_irrelevance"})
BFCL_INSTALL_HINT = "pip install --no-deps bfcl-eval==2026.3.23"


@dataclass
class ReadReport:
    """The examples read, and one line per record skipped saying why."""

    examples: list[FCExample] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


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
