"""Function-calling datasets on disk: Parquet or JSON Lines, chosen by the file's suffix.

Parquet keeps one row per example; the nested fields (functions, calls, possible answers) are
JSON strings, so any schema round-trips exactly. JSON Lines holds one `FCExample` per line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recursa.fc.data.schema import FCExample

SUFFIXES: tuple[str, ...] = (".parquet", ".jsonl")

PARQUET_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("query", pa.string()),
    ("functions", pa.string()),  # JSON list of FunctionSpec
    ("calls", pa.string()),  # JSON list of FunctionCall
    ("possible_answers", pa.string()),  # JSON list of PossibleAnswer, or null
    ("source", pa.string()),
    ("category", pa.string()),
])
_JSON_COLUMNS = ("functions", "calls", "possible_answers")


def _suffix(path: Path) -> str:
    """The storage format of `path`, or a ValueError naming the supported ones."""
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    return path.suffix


def _to_row(example: FCExample) -> dict[str, str | None]:
    """One Parquet row: scalar fields as they are, nested ones as JSON (null stays null)."""
    row = example.model_dump(mode="json")
    for column in _JSON_COLUMNS:
        if row[column] is not None:
            row[column] = json.dumps(row[column], ensure_ascii=False)
    return row


def _from_row(row: dict[str, str | None]) -> FCExample:
    """The example stored in one Parquet row."""
    parsed = {column: json.loads(text) for column in _JSON_COLUMNS if (text := row[column]) is not None}
    return FCExample.model_validate(row | parsed)


def write_examples(examples: Iterable[FCExample], path: str | os.PathLike) -> Path:
    """Write examples to a .parquet or .jsonl file (parent directories created); return its path."""
    path = Path(path)
    suffix = _suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        table = pa.Table.from_pylist([_to_row(e) for e in examples], schema=PARQUET_SCHEMA)
        pq.write_table(table, path)
    else:
        with path.open("w", encoding="utf-8") as out:
            out.writelines(e.model_dump_json() + "\n" for e in examples)
    return path


def read_examples(path: str | os.PathLike) -> list[FCExample]:
    """The examples of a .parquet or .jsonl file written by `write_examples`."""
    path = Path(path)
    if _suffix(path) == ".parquet":
        return [_from_row(row) for row in pq.read_table(path, schema=PARQUET_SCHEMA).to_pylist()]
    with path.open(encoding="utf-8") as lines:
        return [FCExample.model_validate_json(line) for line in lines if line.strip()]
