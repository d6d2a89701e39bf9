"""`recursa traces`: import, export, stats, the interactive labeller driven by scripted input,
and bad input that exits 2 with one line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from recursa.cli import app, main
from recursa.traces.export import write_jsonl
from recursa.traces.models import ExecutionTrace, ToolCallTrace
from recursa.traces.store import TraceStore
from trace_databases import db_url  # noqa: F401  (fixture)

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def traces() -> list[ExecutionTrace]:
    return [
        ExecutionTrace(trace_id=f"t{i}", agent_type="planner" if i % 2 else "coder", query=f"question {i}",
                       final_response=f"answer {i} " + "x" * 2000, reward=i / 10,
                       tool_calls=[ToolCallTrace(name="search", success=i != 2, error=None if i != 2 else "boom")],
                       created_at=T0 + timedelta(days=i))
        for i in range(4)
    ]


@pytest.fixture
def stored(db_url):  # noqa: F811
    with TraceStore(db_url) as store:
        store.add_many(traces())
        yield store


def invoke(*args: str, input: str | None = None):
    result = CliRunner().invoke(app, ["traces", *args], input=input)
    assert result.exit_code == 0, result.output
    return result


def test_export_then_import_into_another_store(stored, db_url, tmp_path):  # noqa: F811
    out = tmp_path / "planner.jsonl"
    invoke("export", "--db", db_url, "--out", str(out), "--agent-type", "planner", "--since", "2025-03-02")
    assert [json.loads(line)["trace_id"] for line in out.read_text().splitlines()] == ["t1", "t3"]
    copy = tmp_path / "copy.db"
    assert "imported 2 new traces" in invoke("import", str(out), "--db", str(copy)).output
    assert "imported 0 new traces" in invoke("import", str(out), "--db", str(copy)).output
    with TraceStore(copy) as imported:
        assert imported.query() == stored.query(agent_type="planner")


def test_export_filters_to_parquet(stored, db_url, tmp_path):  # noqa: F811
    import pyarrow.parquet as pq

    stored.set_label("t0", True)
    stored.set_feedback("t3", "nice")
    out = tmp_path / "sub" / "some.parquet"
    invoke("export", "--db", db_url, "--out", str(out), "--min-reward", "0.1", "--until", "2025-03-04T00:00:00+00:00")
    assert pq.read_table(out).column("trace_id").to_pylist() == ["t1", "t2"]
    invoke("export", "--db", db_url, "--out", str(out), "--labelled")
    assert pq.read_table(out).column("trace_id").to_pylist() == ["t0"]
    invoke("export", "--db", db_url, "--out", str(out), "--with-feedback", "--limit", "1")
    assert pq.read_table(out).column("trace_id").to_pylist() == ["t3"]


def test_stats_shows_each_agent_type(stored, db_url):  # noqa: F811
    output = invoke("stats", "--db", db_url).output
    assert "coder" in output and "planner" in output and "total" in output


def test_label_saves_each_answer_and_its_feedback(stored, db_url):  # noqa: F811
    # t0: an unknown answer is asked again, then good with feedback; t1: bad without; t2: skipped; then quit.
    result = invoke("label", "--db", db_url, input="maybe\ny\nclear and right\nn\n\ns\nq\n")
    assert "question 0" in result.output and "search failed" in result.output
    assert "x" * 600 not in result.output  # long answers are truncated
    assert "good 1, bad 1, skipped 1" in result.output
    labels = {t.trace_id: (t.label, t.feedback) for t in stored.query()}
    assert labels == {"t0": (True, "clear and right"), "t1": (False, None), "t2": (None, None), "t3": (None, None)}


def test_label_stops_at_end_of_input_and_filters_by_agent_type(stored, db_url):  # noqa: F811
    result = invoke("label", "--db", db_url, "--agent-type", "planner", "--limit", "5", input="n\nwrong\n")
    assert "question 0" not in result.output
    assert [(t.trace_id, t.label) for t in stored.query(labelled_only=True)] == [("t1", False)]
    assert stored.get("t1").feedback == "wrong"


def test_dataset_pairs_good_and_bad_completions_of_a_prompt_for_dpo(db_url, tmp_path):  # noqa: F811
    with TraceStore(db_url) as store:
        store.add_many([ExecutionTrace(trace_id=f"d{i}", query="file report.pdf", final_response=answer, label=label)
                        for i, (answer, label) in enumerate([("/work/reports", True), ("/tmp", False),
                                                             ("/work", False)])])
    out = tmp_path / "dpo.jsonl"
    invoke("dataset", "--db", db_url, "--out", str(out), "--format", "dpo")
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert pairs == [{"prompt": "file report.pdf", "chosen": "/work/reports", "rejected": "/tmp"},
                     {"prompt": "file report.pdf", "chosen": "/work/reports", "rejected": "/work"}]


def test_a_trace_import_with_a_bad_line_adds_nothing(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    write_jsonl(traces()[:1], source)
    with source.open("a") as out:
        out.write('{"query": 3}\n')
    exit_code = _main_exit_code(["traces", "import", str(source), "--db", str(tmp_path / "t.db")])
    assert exit_code == 2
    assert ":2: not a trace" in capsys.readouterr().err
    assert TraceStore(tmp_path / "t.db").query() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "/no/such.jsonl"], "source: file not found"),
        (["stats", "--db", "mysql://u@h/db"], "unsupported database URL scheme 'mysql'"),
        (["export", "--out", "x.csv"], "out: must end in .jsonl or .parquet"),
        (["export", "--out", "x.jsonl", "--since", "last tuesday"], "since: not an ISO 8601"),
        (["export", "--out", "x.jsonl", "--until", "2025-13-01"], "until: not an ISO 8601"),
        (["stats", "--db", "postgresql://nobody:pw@127.0.0.1:1/none"], "db: cannot open the trace store"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _main_exit_code(["traces", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # no store was created


def _main_exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code
