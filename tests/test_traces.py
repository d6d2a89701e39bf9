"""The trace store, on SQLite and on PostgreSQL: round trips, filters, updates, statistics,
parameterised queries, and exports that `datasets.load_dataset` reads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from recursa.traces.export import RECORD_SCHEMA, read_jsonl
from recursa.traces.models import ExecutionTrace, ReasoningStep, TaskTrace, ToolCallTrace
from recursa.traces.store import TraceStore
from trace_databases import db_url  # noqa: F401  (fixture)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
INJECTION = "'; DROP TABLE traces; --"


def make_trace(trace_id: str, minutes: int = 0, **fields) -> ExecutionTrace:
    """A trace with a tool call of each outcome, a reasoning step and a task."""
    defaults = dict(
        query=f"query {trace_id}",
        tool_calls=[
            ToolCallTrace(name="search", arguments={"q": "books", "n": 3}, success=True,
                          result=[{"title": "Dune"}], latency_ms=1.5),
            ToolCallTrace(name="buy", arguments={}, success=False, error="ValueError: out of stock"),
        ],
        reasoning_steps=[ReasoningStep(index=0, thought="look it up", action="search", observation="3 hits")],
        tasks=[TaskTrace(description="find a book", status="completed")],
        final_response=f"answer {trace_id}",
        tokens_in=100,
        tokens_out=20,
        cost=0.002,
        metadata={"model": "tiny", "temperature": 0.7},
    )
    return ExecutionTrace(trace_id=trace_id, created_at=T0 + timedelta(minutes=minutes), **{**defaults, **fields})


@pytest.fixture
def store(db_url):  # noqa: F811
    with TraceStore(db_url) as opened:
        yield opened


@pytest.fixture
def filled(store):
    """Five traces, a minute apart: two agent types, rewards, labels, feedback."""
    store.add_many([
        make_trace("a", 0, agent_type="planner", reward=0.9, label=True, feedback="great"),
        make_trace("b", 1, agent_type="planner", reward=-0.5, label=False),
        make_trace("c", 2, agent_type="coder", reward=0.2),
        make_trace("d", 3, agent_type="coder", feedback="too slow"),
        make_trace("e", 4, agent_type="planner", tokens_in=7, tokens_out=3, cost=0.5),
    ])
    return store


def ids(traces: list[ExecutionTrace]) -> list[str]:
    return [trace.trace_id for trace in traces]


def test_a_stored_trace_comes_back_equal_also_after_reopening(store, db_url):  # noqa: F811
    trace = make_trace("x", reward=0.25, label=True, feedback="ok", prompt="System: ...\nUser: query x")
    assert store.add(trace)
    assert store.get("x") == trace
    with TraceStore(db_url) as reopened:
        assert reopened.get("x") == trace
        assert reopened.get("missing") is None


def test_adding_a_known_id_changes_nothing(store):
    assert store.add(make_trace("x"))
    store.set_label("x", True)
    assert not store.add(make_trace("x", final_response="other"))
    assert store.add_many([make_trace("x"), make_trace("y"), make_trace("y")]) == 1
    kept = store.get("x")
    assert kept.label is True and kept.final_response == "answer x"
    assert ids(store.query()) == ["x", "y"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a", "b", "c", "d", "e"]),
        ({"agent_type": "coder"}, ["c", "d"]),
        ({"min_reward": 0.2}, ["a", "c"]),
        ({"labelled_only": True}, ["a", "b"]),
        ({"with_feedback_only": True}, ["a", "d"]),
        ({"since": T0 + timedelta(minutes=1)}, ["b", "c", "d", "e"]),
        ({"until": T0 + timedelta(minutes=1)}, ["a"]),
        ({"since": T0 + timedelta(minutes=1), "until": T0 + timedelta(minutes=3)}, ["b", "c"]),
        ({"limit": 2}, ["a", "b"]),
        ({"agent_type": "planner", "min_reward": -1.0, "limit": 1}, ["a"]),
        ({"agent_type": "nobody"}, []),
    ],
)
def test_query_filters(filled, filters, expected):
    assert ids(filled.query(**filters)) == expected


def test_time_filters_compare_instants_whatever_the_zone(filled):
    plus_two = timezone(timedelta(hours=2))
    assert ids(filled.query(since=(T0 + timedelta(minutes=3)).astimezone(plus_two))) == ["d", "e"]
    naive_utc = (T0 + timedelta(minutes=3)).replace(tzinfo=None)
    assert ids(filled.query(since=naive_utc)) == ["d", "e"]
    assert filled.get("a").created_at == T0


def test_label_reward_and_feedback_updates(filled):
    filled.set_label("c", False)
    filled.set_reward("d", 1.5)
    filled.set_feedback("e", "wrong tool")
    assert filled.get("c").label is False
    assert filled.get("d").reward == 1.5
    assert filled.get("e").feedback == "wrong tool"
    assert ids(filled.query(labelled_only=True)) == ["a", "b", "c"]
    assert ids(filled.query(min_reward=1.0)) == ["d"]
    filled.set_label("a", None)
    filled.set_feedback("a", None)
    assert filled.get("a").label is None and filled.get("a").feedback is None
    with pytest.raises(KeyError, match="nope"):
        filled.set_label("nope", True)


def test_unlabelled_oldest_first(filled):
    assert ids(filled.unlabelled()) == ["c", "d", "e"]
    assert ids(filled.unlabelled(2)) == ["c", "d"]
    assert ids(filled.unlabelled(agent_type="planner")) == ["e"]


def test_stats_in_total_and_per_agent_type(filled):
    stats = filled.stats()
    total = stats["total"]
    assert (total["traces"], total["labelled"], total["good"], total["bad"]) == (5, 2, 1, 1)
    assert (total["with_feedback"], total["with_reward"]) == (2, 3)
    assert total["mean_reward"] == pytest.approx((0.9 - 0.5 + 0.2) / 3)
    assert (total["tokens_in"], total["tokens_out"]) == (407, 83)
    assert total["cost"] == pytest.approx(4 * 0.002 + 0.5)
    assert set(stats["by_agent_type"]) == {"coder", "planner"}
    assert stats["by_agent_type"]["coder"]["traces"] == 2
    assert stats["by_agent_type"]["coder"]["mean_reward"] == pytest.approx(0.2)


def test_stats_of_an_empty_store(store):
    assert store.stats() == {
        "total": {"traces": 0, "labelled": 0, "good": 0, "bad": 0, "with_feedback": 0, "with_reward": 0,
                  "mean_reward": None, "tokens_in": 0, "tokens_out": 0, "cost": 0.0},
        "by_agent_type": {},
    }


def test_values_that_look_like_sql_are_only_data(store):
    trace = make_trace(INJECTION, query=INJECTION, agent_type=INJECTION, final_response=INJECTION)
    assert store.add(trace)
    store.set_feedback(INJECTION, INJECTION)
    assert ids(store.query(agent_type=INJECTION)) == [INJECTION]
    assert store.query(agent_type="x' OR '1'='1") == []
    stored = store.get(INJECTION)
    assert (stored.query, stored.agent_type, stored.feedback) == (INJECTION, INJECTION, INJECTION)
    assert store.stats()["total"]["traces"] == 1  # the table is still there


def test_tables_in_one_database_are_independent(db_url):  # noqa: F811
    with TraceStore(db_url, table="team_a") as first, TraceStore(db_url, table="team_b") as second:
        first.add(make_trace("x"))
        assert second.get("x") is None
        assert ids(first.query()) == ["x"]


@pytest.mark.parametrize("bad", ["mysql://user@host/db", "redis://localhost:6379"])
def test_unsupported_url_names_the_scheme(bad):
    with pytest.raises(ValueError, match=bad.split("://")[0]):
        TraceStore(bad)


def test_table_names_are_checked(tmp_path):
    with pytest.raises(ValueError, match="table name"):
        TraceStore(tmp_path / "t.db", table="traces; DROP TABLE x")


def test_jsonl_export_loads_with_datasets_and_reads_back(filled, tmp_path):
    path = tmp_path / "traces.jsonl"
    assert filled.export_jsonl(path, agent_type="planner") == 3
    rows = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert rows["trace_id"] == ["a", "b", "e"]
    assert rows[0]["tool_calls"][0]["name"] == "search"
    assert json.loads(rows[0]["tool_calls"][0]["arguments"]) == {"q": "books", "n": 3}
    assert rows[0]["reasoning_steps"][0]["thought"] == "look it up"
    assert rows["label"] == [True, False, None]
    assert list(read_jsonl(path)) == filled.query(agent_type="planner")


def test_parquet_export_loads_with_datasets(filled, tmp_path):
    path = tmp_path / "traces.parquet"
    assert filled.export_parquet(path, labelled_only=True) == 2
    rows = load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert rows["trace_id"] == ["a", "b"]
    assert rows["reward"] == [0.9, -0.5]
    assert rows["feedback"] == ["great", None]
    assert json.loads(rows[0]["tool_calls"][0]["result"]) == [{"title": "Dune"}]
    assert rows[1]["tool_calls"][1]["error"] == "ValueError: out of stock"
    assert json.loads(rows[0]["metadata"]) == {"model": "tiny", "temperature": 0.7}
    assert rows[0]["created_at"] == T0


def test_an_empty_parquet_export_still_has_the_schema(store, tmp_path):
    path = tmp_path / "none.parquet"
    assert store.export_parquet(path) == 0
    assert pq.read_table(path).schema == RECORD_SCHEMA
