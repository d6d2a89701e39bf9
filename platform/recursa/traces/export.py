"""Traces as dataset records: one row per trace, in JSON lines or Parquet.

A record has the trace's fields with one fixed type each, so that Arrow (and so
`datasets.load_dataset("parquet" | "json", ...)`) can read any set of traces: tool calls,
reasoning steps and tasks are lists of structs, and the free-form values (tool arguments,
tool results, metadata) are JSON strings. `read_jsonl` reads such records back, and also
plain `ExecutionTrace` JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from recursa.traces.models import ExecutionTrace

RECORD_SCHEMA = pa.schema([
    ("trace_id", pa.string()),
    ("agent_type", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("query", pa.string()),
    ("prompt", pa.string()),
    ("final_response", pa.string()),
    ("tool_calls", pa.list_(pa.struct([
        ("name", pa.string()),
        ("arguments", pa.string()),
        ("success", pa.bool_()),
        ("result", pa.string()),
        ("error", pa.string()),
        ("latency_ms", pa.float64()),
    ]))),
    ("reasoning_steps", pa.list_(pa.struct([
        ("index", pa.int64()),
        ("thought", pa.string()),
        ("action", pa.string()),
        ("observation", pa.string()),
        ("reward", pa.float64()),
    ]))),
    ("tasks", pa.list_(pa.struct([("description", pa.string()), ("status", pa.string())]))),
    ("tokens_in", pa.int64()),
    ("tokens_out", pa.int64()),
    ("cost", pa.float64()),
    ("label", pa.bool_()),
    ("reward", pa.float64()),
    ("feedback", pa.string()),
    ("metadata", pa.string()),
])


def to_record(trace: ExecutionTrace) -> dict[str, Any]:
    """The trace as a flat record matching RECORD_SCHEMA (created_at stays a datetime)."""
    record = trace.model_dump(mode="json", exclude={"created_at"})
    record["created_at"] = trace.created_at
    record["metadata"] = json.dumps(record["metadata"])
    for call in record["tool_calls"]:
        call["arguments"] = json.dumps(call["arguments"])
        call["result"] = json.dumps(call["result"])
    return record


def from_record(record: Mapping[str, Any]) -> ExecutionTrace:
    """A trace from a record written by `to_record`, or from a plain ExecutionTrace dict."""
    data = dict(record)
    if isinstance(data.get("metadata"), str):  # a record: free-form values are JSON strings
        data["metadata"] = json.loads(data["metadata"])
        data["tool_calls"] = [
            {**call, "arguments": json.loads(call["arguments"]), "result": json.loads(call["result"])}
            for call in data.get("tool_calls") or []
        ]
    return ExecutionTrace.model_validate(data)


def write_jsonl(traces: Iterable[ExecutionTrace], path: str | Path) -> int:
    """Write one record per line; returns the number of traces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for trace in traces:
            out.write(json.dumps(to_record(trace), default=_iso, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_parquet(traces: Iterable[ExecutionTrace], path: str | Path) -> int:
    """Write the records as one Parquet file with RECORD_SCHEMA; returns the number of traces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([to_record(trace) for trace in traces], schema=RECORD_SCHEMA)
    pq.write_table(table, path)
    return table.num_rows


def read_jsonl(path: str | Path) -> Iterator[ExecutionTrace]:
    """Traces from JSON lines (records or ExecutionTrace dumps); ValueError names the bad line."""
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield from_record(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:  # JSON and validation errors
                reason = _one_line(exc) if isinstance(exc, ValidationError) else str(exc)
                raise ValueError(f"{path}:{number}: not a trace: {reason}") from None


def _iso(value: Any) -> str:
    """`json.dumps` default: datetimes as ISO 8601."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _one_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, err['loc'])) or 'trace'}: {err['msg']}" for err in exc.errors(include_url=False)
    )
