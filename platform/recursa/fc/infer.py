"""`recursa infer fc`: calls for one query, an interactive session, or a JSONL batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import ValidationError

from recursa.core.config import ConfigError
from recursa.fc.artifact import load_fc_model, predict_calls
from recursa.fc.data.schema import FCExample
from recursa.tools.schema import FunctionSpec, function_from_json_schema


def read_tools(path: Path) -> list[FunctionSpec]:
    """Function schemas from a JSON file (a list, or {"tools": [...]}; OpenAI or plain style)."""
    try:
        data = json.loads(path.read_text())
        items = data["tools"] if isinstance(data, dict) else data
        return [function_from_json_schema(item) for item in items]
    except (ValueError, KeyError, TypeError, ValidationError) as error:
        raise ConfigError(f"tools: not a list of function schemas: {error}".splitlines()[0]) from None


def _calls_json(calls) -> str:
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])


def run_one(model_dir: Path, tools_path: Path, query: str) -> None:
    """Print the calls for one query."""
    model, featurizer = load_fc_model(model_dir)
    example = FCExample(id="query", query=query, functions=read_tools(tools_path))
    print(_calls_json(predict_calls(model, featurizer, [example])[0]))


def run_interactive(model_dir: Path, tools_path: Path) -> None:
    """Read queries from stdin until EOF; print the calls of each."""
    model, featurizer = load_fc_model(model_dir)
    functions = read_tools(tools_path)
    print(f"{len(functions)} tools loaded; type a request (Ctrl-D to quit)", file=sys.stderr)
    for line in sys.stdin:
        if line.strip():
            example = FCExample(id="query", query=line.strip(), functions=functions)
            print(_calls_json(predict_calls(model, featurizer, [example])[0]), flush=True)


def run_batch(model_dir: Path, batch_path: Path) -> None:
    """One JSON line out per line in: {"query", "tools"} or a full FCExample."""
    model, featurizer = load_fc_model(model_dir)
    examples = []
    for number, line in enumerate(batch_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        try:
            if "functions" in record:
                examples.append(FCExample.model_validate(record))
            else:
                tools = [function_from_json_schema(t) for t in record["tools"]]
                examples.append(FCExample(id=str(number), query=record["query"], functions=tools))
        except (KeyError, ValidationError, TypeError) as error:
            raise ConfigError(f"batch: line {number}: {error}".splitlines()[0]) from None
    for example, calls in zip(examples, predict_calls(model, featurizer, examples)):
        print(json.dumps({"id": example.id, "calls": json.loads(_calls_json(calls))}))
