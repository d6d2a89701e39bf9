"""Reward by execution: run calls against sandboxed implementations of the offered functions.

Generated functions have no real back end, so each gets a pure implementation built from its
schema: arguments are validated strictly by type (an integer is not a float, a string is not a
number, enum values are closed), defaults are filled in, and the result is the canonical call.
Calls run through a `ToolRegistry`, so a bad call is an error result, never an exception, and a
slow implementation times out. Two calls that execute to the same result count as equal even
when one spells out a default the other leaves implicit, or writes 3.0 for 3 in a float.
"""

from __future__ import annotations

import json
import types
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model

from recursa.fc.data.schema import FCExample
from recursa.tools import Tool, ToolRegistry
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

_SCALARS: dict[str, Any] = {
    "string": Annotated[str, Strict()],
    "integer": Annotated[int, Strict()],
    "float": Annotated[float, Strict()],  # strict still takes an int, as BFCL does
    "boolean": Annotated[bool, Strict()],
    "any": Any,
}


class _Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _annotation(spec: ParamSpec, owner: str) -> Any:
    if spec.enum:
        return Literal[tuple(spec.enum)]
    if spec.type == "array":
        item = _annotation(spec.items, owner) if spec.items is not None else Any
        return types.GenericAlias(list, (item,))  # list[item], built at run time
    if spec.type == "object":
        if not spec.properties:
            return dict[str, Any]
        return _arguments_model(spec.properties, f"{owner}_{spec.name}")
    return _SCALARS[spec.type]


def _arguments_model(params: list[ParamSpec], name: str) -> type[BaseModel]:
    fields: dict[str, Any] = {}  # name -> (annotation, field); Any: create_model takes them as **kwargs
    for spec in params:
        annotation = _annotation(spec, name)
        if spec.required:
            fields[spec.name] = (annotation, Field(...))
        else:
            fields[spec.name] = (annotation | None, Field(spec.default))
    return create_model(name, __base__=_Forbid, **fields)


def execution_tool(function: FunctionSpec) -> Tool:
    """A sandboxed implementation of `function`: strict validation, defaults, canonical result."""
    model = _arguments_model(function.parameters, "args_" + "".join(c if c.isalnum() else "_" for c in function.name))

    def run(**arguments: Any) -> dict[str, Any]:
        return {"function": function.name, "arguments": model(**arguments).model_dump(mode="json")}

    safe_name = "".join(c if c.isalnum() or c in "_-" else "_" for c in function.name)[:64] or "function"
    return Tool(name=safe_name, description=function.description, args_model=_Passthrough, fn=run,
                cacheable=False)


class _Passthrough(BaseModel):
    """Arguments go to the implementation unvalidated: it validates against the real schema."""

    model_config = ConfigDict(extra="allow")


class Sandbox:
    """Sandboxed implementations of some functions, built once to run any number of calls."""

    def __init__(self, functions: list[FunctionSpec], timeout_s: float = 1.0):
        self.tools = {f.name: execution_tool(f) for f in functions}
        self.timeout_s = timeout_s

    def run(self, calls: list[FunctionCall]) -> list[str | None]:
        """Canonical JSON result of each call, None where it failed (unknown function, bad arguments)."""
        results: list[str | None] = []
        with ToolRegistry(timeout_s=self.timeout_s, max_concurrency=1) as registry:
            for tool in self.tools.values():
                if tool.name not in registry.names:
                    registry.register(tool)
            for call in calls:
                found = self.tools.get(call.name) if isinstance(call, FunctionCall) else None
                if found is None or not isinstance(call.arguments, dict):
                    results.append(None)
                    continue
                result = registry.call(found.name, call.arguments)
                results.append(json.dumps(result.output, sort_keys=True) if result.ok else None)
        return results


def execute(calls: list[FunctionCall], functions: list[FunctionSpec], timeout_s: float = 1.0) -> list[str | None]:
    """Canonical JSON result of each call, None where it failed (unknown function, bad arguments)."""
    return Sandbox(functions, timeout_s).run(calls)


class ExecutionScorer:
    """The execution reward of any number of predictions for one example: its functions are built
    and its gold calls run once."""

    def __init__(self, example: FCExample):
        self.sandbox = Sandbox(example.functions)
        self.expected_calls = len(example.calls)
        self.expected = Counter(self.sandbox.run(example.calls))

    def reward(self, predicted: list[FunctionCall]) -> float:
        """Share of expected results reproduced, penalised for extra calls; 1.0 for a right no-call."""
        if not self.expected_calls:
            return 0.0 if predicted else 1.0
        produced: Counter[str | None] = Counter(r for r in self.sandbox.run(predicted) if r is not None)
        matched = sum((self.expected & produced).values())
        return matched / max(self.expected_calls, len(predicted))


def execution_reward(predicted: list[FunctionCall], example: FCExample) -> float:
    """The execution reward of one prediction (`ExecutionScorer` scores many for one example)."""
    return ExecutionScorer(example).reward(predicted)
