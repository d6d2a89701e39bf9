"""A registry that calls tools safely: validation, timeout, concurrency limit, cache, stats."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cachetools import TTLCache
from pydantic import BaseModel, ValidationError

from recursa.tools.base import Tool, ToolResult, tool

LATENCY_WINDOW = 1000
_MISSING = object()


@dataclass
class _ToolStats:
    """Counters for one tool; latencies over the most recent calls only."""

    calls: int = 0
    cache_hits: int = 0
    successes: int = 0
    failures: int = 0
    timeouts: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def record(self, result: ToolResult, timed_out: bool) -> None:
        self.calls += 1
        self.cache_hits += result.cached
        self.successes += result.ok
        self.failures += not result.ok
        self.timeouts += timed_out
        self.latencies.append(result.latency_s)

    def summary(self) -> dict[str, float | int]:
        window = np.fromiter(self.latencies, dtype=float)
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "successes": self.successes,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "mean_latency_s": float(window.mean()) if window.size else 0.0,
            "p95_latency_s": float(np.percentile(window, 95)) if window.size else 0.0,
        }


class ToolRegistry:
    """Tools by name, called with validation, a timeout, a concurrency limit and a cache.

    `call` never raises: unknown tools, invalid arguments, exceptions, timeouts
    and a full registry all come back as `ToolResult(ok=False, error=...)`.
    A call takes at most about `timeout_s`, waiting for a free slot included.
    Only successful results of cacheable tools are cached. A tool that times out
    keeps its slot until its function returns, so stuck tools cannot pile up
    threads beyond `max_concurrency`.
    """

    def __init__(
        self,
        timeout_s: float = 2.0,
        max_concurrency: int = 8,
        cache_size: int = 1024,
        cache_ttl_s: float = 300.0,
    ) -> None:
        if timeout_s <= 0 or max_concurrency < 1 or cache_size < 1 or cache_ttl_s <= 0:
            raise ValueError(
                "timeout_s and cache_ttl_s must be > 0, max_concurrency and cache_size >= 1"
            )
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self._tools: dict[str, Tool] = {}
        self._stats: dict[str, _ToolStats] = {}
        self._cache: TTLCache = TTLCache(maxsize=cache_size, ttl=cache_ttl_s)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="tool")

    def register(self, tool_or_function: Tool | Callable[..., Any]) -> Tool:
        """Add a Tool, or a typed function turned into one with `tool()`; returns the Tool."""
        new = tool_or_function if isinstance(tool_or_function, Tool) else tool(tool_or_function)
        with self._lock:
            if new.name in self._tools:
                raise ValueError(f"a tool named {new.name!r} is already registered")
            self._tools[new.name] = new
            self._stats[new.name] = _ToolStats()
        return new

    @property
    def names(self) -> tuple[str, ...]:
        """Registered tool names, in registration order."""
        return tuple(self._tools)

    def get(self, name: str) -> Tool:
        """The tool called `name`; KeyError if there is none."""
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(f"no tool named {name!r}; registered: {list(self._tools)}") from None

    def openai_schemas(self) -> list[dict[str, Any]]:
        """OpenAI function-calling declarations of all tools, in registration order."""
        return [t.openai_schema() for t in self._tools.values()]

    def call(self, name: str, arguments: Mapping[str, Any] | str) -> ToolResult:
        """Validate `arguments` (a mapping or a JSON object string) and run the tool."""
        start = time.perf_counter()
        found = self._tools.get(name)
        if found is None:
            error = f"unknown tool {name!r}; available: {', '.join(self._tools)}"
            return ToolResult(name, False, None, error, time.perf_counter() - start, False)
        try:
            args = _validate(found.args_model, arguments)
        except ValidationError as exc:
            return self._finish(name, start, error=f"invalid arguments: {_describe(exc)}")

        key = (name, _cache_key(args)) if found.cacheable else None
        if key is not None:
            with self._lock:
                hit = self._cache.get(key, _MISSING)
            if hit is not _MISSING:
                return self._finish(name, start, output=hit, cached=True)

        result = self._execute(found, args, start)
        if result.ok and key is not None:
            with self._lock:
                self._cache[key] = result.output
        return result

    def stats(self) -> dict[str, dict[str, float | int]]:
        """Per-tool counters, and mean and p95 latency over the last calls (hits included)."""
        with self._lock:
            return {name: s.summary() for name, s in self._stats.items()}

    def close(self) -> None:
        """Stop accepting calls; returns without waiting for tools still running."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> ToolRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _execute(self, found: Tool, args: BaseModel, start: float) -> ToolResult:
        """Run in the pool within the deadline, once a concurrency slot is free."""
        name = found.name
        if not self._slots.acquire(timeout=self.timeout_s):
            return self._finish(name, start, error=f"busy: {self.max_concurrency} calls in flight")
        try:
            future = self._pool.submit(self._run, found, args)
        except RuntimeError:
            self._slots.release()
            return self._finish(name, start, error="registry is closed")
        remaining = start + self.timeout_s - time.perf_counter()
        try:
            ok, value = future.result(timeout=max(0.0, remaining))
        except FutureTimeout:
            error = f"timed out after {self.timeout_s:g}s"
            return self._finish(name, start, error=error, timed_out=True)
        if ok:
            return self._finish(name, start, output=value)
        return self._finish(name, start, error=value)

    def _run(self, found: Tool, args: BaseModel) -> tuple[bool, Any]:
        """Worker-side call: (True, output) or (False, error message); frees the slot."""
        try:
            return True, found.fn(**dict(args))
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            self._slots.release()

    def _finish(
        self,
        name: str,
        start: float,
        *,
        output: Any = None,
        error: str | None = None,
        cached: bool = False,
        timed_out: bool = False,
    ) -> ToolResult:
        result = ToolResult(name, error is None, output, error, time.perf_counter() - start, cached)
        with self._lock:
            self._stats[name].record(result, timed_out)
        return result


def _validate(model: type[BaseModel], arguments: Mapping[str, Any] | str) -> BaseModel:
    if isinstance(arguments, str):
        return model.model_validate_json(arguments)
    return model.model_validate(arguments)


def _cache_key(args: BaseModel) -> str:
    """Validated arguments as canonical JSON: equal after coercion means equal key."""
    return json.dumps(args.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _describe(exc: ValidationError) -> str:
    """Pydantic errors on one line: 'field: message; other.0: message'."""
    return "; ".join(
        f"{'.'.join(map(str, err['loc'])) or 'arguments'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )
