"""The trace collector: episodes, tool calls of a hooked ToolRegistry (failures included),
traced agent functions, and traces that are kept when the agent raises."""

from __future__ import annotations

import pytest

from recursa.tools.registry import ToolRegistry
from recursa.traces.collector import TraceCollector
from recursa.traces.store import TraceStore
from trace_databases import db_url  # noqa: F401  (fixture)


def lookup(city: str) -> dict:
    """Weather of a city."""
    return {"city": city, "celsius": 21}


def book(city: str) -> str:
    """Book a trip; always fails."""
    raise RuntimeError(f"no trains to {city}")


class Ticket:
    def __init__(self, n: int) -> None:
        self.n = n

    def __str__(self) -> str:
        return f"ticket #{self.n}"


def opaque(n: int) -> Ticket:
    """A result JSON cannot represent."""
    return Ticket(n)


@pytest.fixture
def registry():
    with ToolRegistry(timeout_s=5.0, max_concurrency=2) as tools:
        for fn in (lookup, book, opaque):
            tools.register(fn)
        yield tools


def test_an_episode_records_steps_tasks_answer_and_cost():
    collector = TraceCollector()
    with collector.episode("plan a trip", agent_type="planner", metadata={"model": "tiny"}) as episode:
        task = episode.task("check the weather")
        episode.step("first the weather", action="lookup", observation="21C", reward=0.1)
        episode.step("good enough")
        episode.tool_call("lookup", {"city": "Oslo"}, result={"celsius": 21}, latency_ms=3.0)
        task.status = "completed"
        episode.respond("Go to Oslo.", tokens_in=50, tokens_out=5, cost=0.01)
    (trace,) = collector.sink
    assert (trace.query, trace.agent_type, trace.final_response) == ("plan a trip", "planner", "Go to Oslo.")
    assert [step.index for step in trace.reasoning_steps] == [0, 1]
    assert trace.reasoning_steps[0].reward == 0.1
    assert trace.tasks[0].status == "completed"
    assert trace.tool_calls[0].success and trace.tool_calls[0].result == {"celsius": 21}
    assert (trace.tokens_in, trace.tokens_out, trace.cost) == (50, 5, 0.01)
    assert trace.metadata["model"] == "tiny" and trace.metadata["duration_s"] >= 0
    assert "error" not in trace.metadata


def test_a_hooked_registry_records_successes_and_failures_without_crashing(registry):
    collector = TraceCollector(sink=[])
    collector.hook_registry(registry)
    with collector.episode("trip to Oslo") as episode:
        weather = registry.call("lookup", {"city": "Oslo"})
        booking = registry.call("book", '{"city": "Oslo"}')
        unknown = registry.call("teleport", {})
        episode.respond(f"weather ok: {weather.ok}, booked: {booking.ok}")
    assert weather.ok and not booking.ok and not unknown.ok
    calls = collector.sink[0].tool_calls
    assert [(c.name, c.success) for c in calls] == [("lookup", True), ("book", False), ("teleport", False)]
    assert calls[0].arguments == {"city": "Oslo"} and calls[0].result == {"city": "Oslo", "celsius": 21}
    assert calls[1].arguments == {"city": "Oslo"}  # given as JSON text
    assert calls[1].error == "RuntimeError: no trains to Oslo"
    assert calls[1].latency_ms > 0
    assert collector.sink[0].final_response == "weather ok: True, booked: False"


def test_only_calls_inside_an_episode_and_while_hooked_are_recorded(registry):
    collector = TraceCollector()
    collector.hook_registry(registry)
    registry.call("lookup", {"city": "Rome"})
    with pytest.raises(ValueError, match="already hooked"):
        TraceCollector().hook_registry(registry)
    with collector.episode("one"):
        registry.call("lookup", {"city": "Oslo"})
    collector.unhook_registry(registry)
    with collector.episode("two"):
        assert registry.call("lookup", {"city": "Oslo"}).ok
    assert [len(trace.tool_calls) for trace in collector.sink] == [1, 0]
    with pytest.raises(KeyError):
        collector.unhook_registry(registry)


def test_a_raising_agent_still_leaves_its_trace_in_the_store(db_url, registry):  # noqa: F811
    with TraceStore(db_url) as store:
        collector = TraceCollector(store)
        collector.hook_registry(registry)
        with pytest.raises(ZeroDivisionError), collector.episode("divide", agent_type="calc") as episode:
            episode.trace.metadata["attempt"] = 1
            registry.call("opaque", {"n": 1})
            episode.step("now divide")
            raise ZeroDivisionError("division by zero")
        (trace,) = store.query()
    assert trace.metadata["error"] == "ZeroDivisionError: division by zero"
    assert trace.metadata["attempt"] == 1 and trace.agent_type == "calc"
    assert trace.tool_calls[0].result == "ticket #1"  # kept as text, not lost
    assert trace.reasoning_steps[0].thought == "now divide"


def test_trace_agent_records_query_response_and_tool_calls(registry):
    collector = TraceCollector()
    collector.hook_registry(registry)

    @collector.trace_agent
    def weather_agent(query: str) -> str:
        result = registry.call("lookup", {"city": query})
        return f"{result.output['celsius']} degrees"

    planner = collector.trace_agent(lambda query: "no plan", agent_type="planner")

    assert weather_agent("Oslo") == "21 degrees"
    assert planner("anything") == "no plan"
    first, second = collector.sink
    assert (first.agent_type, first.query, first.final_response) == ("weather_agent", "Oslo", "21 degrees")
    assert [call.name for call in first.tool_calls] == ["lookup"]
    assert (second.agent_type, second.tool_calls) == ("planner", [])
