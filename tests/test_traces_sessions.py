"""`recursa traces import-sessions`: agent checkpoints (JSON) become one trace per user turn, with
tool calls matched to their results, counters shared out exactly, statistics per agent and tool;
importing again adds nothing; a bad file exits 2 naming it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recursa.cli import app
from recursa.traces.sessions import read_sessions, session_stats
from recursa.traces.store import TraceStore

BOOKER = {
    "agent": "booker",
    "sessions": {
        "s1": {"history": [
            {"role": "system", "content": "You book tables."},
            {"role": "user", "content": "Table for two tonight"},
            {"role": "assistant", "content": "", "tool_calls": [{"name": "search", "arguments": {"q": "tonight"}},
                                                                {"name": "book", "arguments": {"people": 2}}]},
            {"role": "tool", "name": "book", "content": "", "error": "fully booked"},
            {"role": "tool", "name": "search", "content": "3 places"},
            {"role": "assistant", "content": "Fully booked, sorry."},
            {"role": "user", "content": "Tomorrow then?"}]},  # never answered
        "s2": {"history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}},
    "task_state": {"t1": {"status": "failed", "description": "book a table"}},
    "agent_state": {"tokens_in": 100, "tokens_out": 31, "cost": 0.03},
    "variable_scopes": {"ignored": True},
}
HELPER = {"sessions": {"x": {"history": [{"role": "user", "content": "2+2?"},
                                         {"role": "assistant", "content": "4"}]}}}


def write_checkpoints(directory) -> None:
    (directory / "nested").mkdir(parents=True)
    (directory / "booker.json").write_text(json.dumps(BOOKER))
    (directory / "nested" / "helper.json").write_text(json.dumps(HELPER))


def test_checkpoints_become_one_trace_per_user_turn(tmp_path):
    write_checkpoints(tmp_path)
    traces = read_sessions(tmp_path)
    booker = [t for t in traces if t.agent_type == "booker"]
    assert [t.query for t in booker] == ["Table for two tonight", "Tomorrow then?", "Hi"]
    first = booker[0]
    assert [(c.name, c.success, c.result, c.error) for c in first.tool_calls] == [
        ("search", True, "3 places", None), ("book", False, "", "fully booked")]
    assert first.final_response == "Fully booked, sorry." and booker[1].metadata["answered"] is False
    assert sum(t.tokens_in for t in booker) == 100 and sum(t.tokens_out for t in booker) == 31
    assert [len(t.tasks) for t in booker] == [0, 0, 1] and booker[2].tasks[0].status == "failed"
    assert [t.agent_type for t in traces if t not in booker] == ["helper"]  # the file's name
    stats = session_stats(traces)
    assert stats["booker"] == {"traces": 3, "unanswered": 1, "sessions": 2, "tools": {
        "book": {"calls": 1, "success_rate": 0.0}, "search": {"calls": 1, "success_rate": 1.0}}}


def test_import_sessions_is_idempotent_and_reports_per_agent_and_tool(tmp_path, recursa_cli):
    logs = tmp_path / "logs"
    write_checkpoints(logs)
    db = str(tmp_path / "traces.db")
    runner = CliRunner()
    first = runner.invoke(app, ["traces", "import-sessions", str(logs), "--db", db])
    assert first.exit_code == 0, first.output
    assert "imported 4 new traces (4 read)" in first.output and "booker" in first.output and "50%" not in first.output
    assert "imported 0 new traces (4 read)" in runner.invoke(app, ["traces", "import-sessions", str(logs),
                                                                   "--db", db]).output
    with TraceStore(db) as store:
        assert store.stats()["by_agent_type"]["booker"]["tokens_in"] == 100
    (logs / "broken.json").write_text(json.dumps({"sessions": {"s": {"history": [{"role": "robot"}]}}}))
    code, err = recursa_cli(["traces", "import-sessions", logs, "--db", db])
    assert code == 2 and "broken.json: sessions.s.history.0.role" in err
