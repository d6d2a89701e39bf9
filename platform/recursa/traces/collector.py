"""Record what a running agent does as `ExecutionTrace`s: its query, tool calls, reasoning,
tasks, answer and cost, one trace per episode.

    collector = TraceCollector(TraceStore("runs/traces.db"))
    collector.hook_registry(registry)          # every registry.call inside an episode is recorded
    with collector.episode("find a gift for Ana", agent_type="gift") as episode:
        episode.step("she likes books", action="search")
        registry.call("search", {"query": "books"})
        episode.respond("A novel.", tokens_in=120, tokens_out=8)

A finished episode goes to the sink (a `TraceStore` or a list), also when the agent raised:
then `metadata["error"]` says what was raised, and the exception propagates.
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from recursa.traces.models import ExecutionTrace, ReasoningStep, TaskTrace, ToolCallTrace

if TYPE_CHECKING:
    from recursa.tools.base import ToolResult
    from recursa.tools.registry import ToolRegistry
    from recursa.traces.store import TraceStore

# The episode being recorded in this thread or task, if any.
_active: ContextVar[EpisodeRecorder | None] = ContextVar("recursa_active_episode", default=None)


class EpisodeRecorder:
    """Builds the trace of one episode; `trace` is the trace so far (set `prompt`, `metadata` on it)."""

    def __init__(self, collector: TraceCollector, trace: ExecutionTrace) -> None:
        self.collector = collector
        self.trace = trace

    def tool_call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        result: Any = None,
        error: str | None = None,
        latency_ms: float = 0.0,
    ) -> ToolCallTrace:
        """Record a tool call; it failed if `error` is given. Values are kept JSON-safe."""
        call = ToolCallTrace(
            name=name,
            arguments=_json_safe(dict(arguments or {})),
            success=error is None,
            result=_json_safe(result),
            error=error,
            latency_ms=latency_ms,
        )
        self.trace.tool_calls.append(call)
        return call

    def step(
        self,
        thought: str,
        action: str | None = None,
        observation: str | None = None,
        reward: float | None = None,
    ) -> ReasoningStep:
        """Record a reasoning step; steps are numbered from 0 in the order recorded."""
        step = ReasoningStep(
            index=len(self.trace.reasoning_steps),
            thought=thought,
            action=action,
            observation=observation,
            reward=reward,
        )
        self.trace.reasoning_steps.append(step)
        return step

    def task(self, description: str, status: str = "created") -> TaskTrace:
        """Record a sub-task; set `status` on the returned task as it completes or fails."""
        task = TaskTrace(description=description, status=status)
        self.trace.tasks.append(task)
        return task

    def respond(self, final_response: str, tokens_in: int = 0, tokens_out: int = 0, cost: float = 0.0) -> None:
        """Set the agent's answer and add the tokens and cost it took to the episode's totals."""
        self.trace.final_response = final_response
        self.trace.tokens_in += tokens_in
        self.trace.tokens_out += tokens_out
        self.trace.cost += cost

    def record_result(self, arguments: Mapping[str, Any] | str, result: ToolResult) -> ToolCallTrace:
        """Record a `ToolRegistry.call` outcome (arguments as passed, a mapping or JSON text)."""
        return self.tool_call(
            result.tool,
            _arguments_dict(arguments),
            result=result.output,
            error=result.error,
            latency_ms=result.latency_s * 1000.0,
        )


class TraceCollector:
    """Records episodes of agents and sends each finished trace to `sink`.

    `sink` is a `TraceStore` (traces are added as they finish) or a list (appended);
    by default a new list, available as `collector.sink`.
    """

    def __init__(self, sink: TraceStore | list[ExecutionTrace] | None = None) -> None:
        self.sink = [] if sink is None else sink
        self._hooked: weakref.WeakSet[ToolRegistry] = weakref.WeakSet()

    @contextmanager
    def episode(
        self,
        query: str,
        agent_type: str = "agent",
        *,
        prompt: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[EpisodeRecorder]:
        """Record one episode; the trace is emitted on exit, with `metadata["error"]` if it raised.

        `metadata["duration_s"]` is the episode's wall-clock time.
        """
        trace = ExecutionTrace(query=query, agent_type=agent_type, prompt=prompt, metadata=dict(metadata or {}))
        recorder = EpisodeRecorder(self, trace)
        token = _active.set(recorder)
        start = time.perf_counter()
        try:
            yield recorder
        except BaseException as exc:
            trace.metadata["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _active.reset(token)
            trace.metadata["duration_s"] = time.perf_counter() - start
            self._emit(trace)

    def hook_registry(self, registry: ToolRegistry) -> ToolRegistry:
        """Record every `registry.call` made inside an episode of this collector; returns `registry`.

        Calls outside an episode run as before and are not recorded. ValueError if the registry
        is already hooked (by any collector).
        """
        if "call" in vars(registry):
            raise ValueError("this registry is already hooked by a trace collector")
        original = registry.call

        @functools.wraps(original)
        def recorded_call(name: str, arguments: Mapping[str, Any] | str) -> ToolResult:
            result = original(name, arguments)
            recorder = _active.get()
            if recorder is not None and recorder.collector is self:
                recorder.record_result(arguments, result)
            return result

        vars(registry)["call"] = recorded_call  # an instance attribute shadows the method
        self._hooked.add(registry)
        return registry

    def unhook_registry(self, registry: ToolRegistry) -> None:
        """Stop recording the registry's calls; KeyError if this collector did not hook it."""
        if registry not in self._hooked:
            raise KeyError("this registry is not hooked by this collector")
        self._hooked.discard(registry)
        del registry.call

    def trace_agent(self, fn: Callable[..., str] | None = None, *, agent_type: str | None = None) -> Any:
        """Wrap an agent function `fn(query, ...) -> str` so that each call is one recorded episode.

        Usable as `collector.trace_agent(fn)` or as a decorator, `@collector.trace_agent` or
        `@collector.trace_agent(agent_type="planner")`; the agent type defaults to the function's
        name. Tool calls through a hooked registry during the call are part of the trace.
        """

        def wrap(func: Callable[..., str]) -> Callable[..., str]:
            kind = agent_type or func.__name__

            @functools.wraps(func)
            def traced(query: str, *args: Any, **kwargs: Any) -> str:
                with self.episode(query, agent_type=kind) as recorder:
                    response = func(query, *args, **kwargs)
                    recorder.respond(str(response))
                return response

            return traced

        return wrap if fn is None else wrap(fn)

    def _emit(self, trace: ExecutionTrace) -> None:
        if isinstance(self.sink, list):
            self.sink.append(trace)
        else:
            self.sink.add(trace)


def _json_safe(value: Any) -> Any:
    """`value` as JSON-compatible data; what JSON cannot represent becomes its `str`."""
    return to_jsonable_python(value, fallback=str)


def _arguments_dict(arguments: Mapping[str, Any] | str) -> dict[str, Any]:
    """Tool arguments as a dict; JSON text that is not an object is kept under "raw"."""
    if not isinstance(arguments, str):
        return dict(arguments)
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"raw": arguments}
