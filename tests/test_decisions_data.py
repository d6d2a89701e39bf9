"""Decision agents from an application's own table: read by a mapping, rewards computed once and kept
with their weights, training records exported by filters; bad mappings and agent types exit 2."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from recursa.cli import app
from recursa.core.config import ConfigError
from recursa.decisions.config import DecisionsConfig
from recursa.decisions.records import ExportFilters, build_records, rewarded_decisions
from recursa.decisions.rewards import calculate_rewards, stored_rewards
from recursa.decisions.source import DecisionSource, open_engine, resolve_database_url
from recursa.decisions.synthetic import MAPPING, filing_tasks, seed_application
from recursa.llm.datasets import read_records
from trace_databases import db_url  # noqa: F401  (fixture)

T0 = datetime(2026, 2, 1)
FOLDERS = ["Finance/Invoices", "Music"]


def state(name: str) -> dict:
    return {"file": {"name": name}, "folders": FOLDERS}


# (id, agent type, file, folder decided, version, feedback, immediate, delayed, strategic)
ROWS = [
    (1, "FILER", "invoice_1.pdf", "Finance/Invoices", "v1", None, 1.0, 1.0, 1.0),
    (2, "FILER", "song_2.mp3", "Finance/Invoices", "v1", "moved to Music", -1.0, -1.0, 1.0),
    (3, "FILER", "song_2.mp3", "Music", "v2", "good", 1.0, None, 1.0),
    (4, "FILER", "song_4.mp3", "Music", "v2", None, None, None, None),  # no outcome yet
    (5, "PRIORITIZER", "x", "x", "v1", None, 1.0, 1.0, 1.0),
]


def conventional_table(url: str) -> sa.Table:
    """The application's table with recursa's conventional column names, JSON columns included."""
    metadata = sa.MetaData()
    table = sa.Table(
        "decisions", metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("agent_type", sa.String(32)), sa.Column("state", sa.JSON), sa.Column("decision", sa.JSON),
        sa.Column("model_version", sa.String(32)), sa.Column("feedback", sa.Text),
        sa.Column("immediate", sa.Float), sa.Column("delayed", sa.Float), sa.Column("strategic", sa.Float),
        sa.Column("created_at", sa.DateTime))
    engine = open_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [
            {"id": i, "agent_type": kind, "state": state(name), "decision": {"folder": folder}, "model_version": v,
             "feedback": fb, "immediate": a, "delayed": b, "strategic": c, "created_at": T0 + timedelta(hours=i)}
            for i, kind, name, folder, v, fb, a, b, c in ROWS])
    engine.dispose()
    return table


@pytest.fixture
def app_db(db_url):  # noqa: F811
    conventional_table(db_url)
    return db_url


def source_for(url: str, **config) -> DecisionSource:
    return DecisionSource(open_engine(url), DecisionsConfig(**config))


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_foreign_table_is_read_by_its_mapping(db_url, tmp_path):  # noqa: F811
    engine = open_engine(db_url)
    tasks = filing_tasks(20, seed=3)
    seed_application(engine, tasks, seed=4)
    source = DecisionSource(engine, DecisionsConfig(**MAPPING))
    decisions = list(source.read("filer"))
    assert len(decisions) == 20
    assert [d.state for d in decisions] == [t.state for t in tasks]
    assert all(d.decision["folder"] and d.model_version == "heuristic-v0" and d.user_id for d in decisions)
    right = [d for d, t in zip(decisions, tasks) if d.decision == t.truth]
    assert right and all(d.scores.immediate == 1.0 and d.feedback is None for d in right)
    assert [d.id for d in source.read("FILER", ids=["2", "5"])] == ["2", "5"]


def test_rewards_are_computed_once_and_stored_with_their_weights(app_db):
    source = source_for(app_db)
    first = calculate_rewards(source, "FILER")
    assert (first.computed, first.unchanged, first.unobserved) == (3, 0, 1)
    stored = stored_rewards(source.engine, "FILER")
    # FILER weights 0.5 / 0.3 / 0.2: -0.5 - 0.3 + 0.2 = -0.6 -> 0.2; only observed components count.
    assert stored["2"]["reward"] == pytest.approx(0.2)
    assert stored["3"]["reward"] == pytest.approx(1.0) and stored["3"]["components"] == {"immediate": 1.0,
                                                                                        "strategic": 1.0}
    assert stored["1"]["weights"] == {"immediate": 0.5, "delayed": 0.3, "strategic": 0.2}
    again = calculate_rewards(source, "FILER")
    assert (again.computed, again.unchanged) == (0, 3)
    assert stored_rewards(source.engine, "FILER") == stored

    # A delayed outcome arrives: that decision alone is rescored (but not with --pending).
    table = sa.Table("decisions", sa.MetaData(), autoload_with=source.engine)
    with source.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == 3).values(delayed=-1.0))
    assert calculate_rewards(source, "FILER", pending_only=True).computed == 0
    assert calculate_rewards(source, "FILER").computed == 1
    assert stored_rewards(source.engine, "FILER")["3"]["reward"] == pytest.approx((0.5 - 0.3 + 0.2 + 1) / 2)

    # New weights: kept apart until a recompute, which stores them with every reward.
    weights = {"immediate": 1.0, "delayed": 0.0, "strategic": 0.0}
    reweighted = source_for(app_db, weights={"filer": weights})
    assert calculate_rewards(reweighted, "FILER").other_weights == 3
    assert calculate_rewards(reweighted, "FILER", recompute=True).computed == 3
    after = stored_rewards(source.engine, "FILER")
    assert after["2"]["reward"] == 0.0 and all(row["weights"] == weights for row in after.values())


def test_the_applications_schema_is_left_alone(app_db):
    engine = open_engine(app_db)
    before = {c["name"]: str(c["type"]) for c in sa.inspect(engine).get_columns("decisions")}
    invoke("rewards", "calculate", "--agent-type", "FILER", "--db", app_db)
    inspector = sa.inspect(engine)
    assert {c["name"]: str(c["type"]) for c in inspector.get_columns("decisions")} == before
    assert {"recursa_rewards", "recursa_model_versions", "recursa_served_decisions"} <= set(inspector.get_table_names())


def test_export_filters_and_formats(app_db, tmp_path):
    source = source_for(app_db)
    calculate_rewards(source, "FILER")
    out = tmp_path / "sft.jsonl"
    invoke("traces", "export", "--agent-type", "filer", "--format", "sft", "--db", app_db, "--out", out)
    records = read_records(out)
    assert [r["weight"] for r in records] == pytest.approx([1.0, 0.2, 1.0])
    assert records[0]["prompt"].startswith('Choose the folder for the file. Answer with one line of JSON: '
                                           '{"folder": "<folder>"}.\nFile: invoice_1.pdf\n')
    assert json.loads(records[0]["completion"]) == {"folder": "Finance/Invoices"}

    def exported(**filters) -> list[str]:
        return [d.id for d, _ in rewarded_decisions(source, "FILER", ExportFilters(**filters))]

    assert exported(min_reward=0.5) == ["1", "3"]
    assert exported(with_feedback=True) == ["2", "3"]
    assert exported(limit=2) == ["2", "3"]  # the most recent

    rewarded = rewarded_decisions(source, "FILER", ExportFilters())
    from recursa.decisions.formats import FORMATS

    kto = build_records(rewarded, "kto", FORMATS["FILER"])
    assert [r["label"] for r in kto] == [True, False, True]
    dpo = build_records(rewarded, "dpo", FORMATS["FILER"])
    assert len(dpo) == 1 and "Music" in dpo[0]["chosen"] and "Invoices" in dpo[0]["rejected"]
    grpo = build_records(rewarded, "grpo", FORMATS["FILER"])
    assert len(grpo) == 1 and grpo[0]["rewards"] == pytest.approx([0.2, 1.0]) and len(grpo[0]["completions"]) == 2


def test_stats_per_agent_type(app_db):
    invoke("rewards", "calculate", "--agent-type", "FILER", "--db", app_db)
    output = invoke("traces", "stats", "--agent-type", "FILER", "--db", app_db)
    assert "4 decisions, 3 rewarded (mean 0.733), 0 awaiting a reward, 1 without outcomes, 2 with feedback" in output
    assert "v1" in output and "v2" in output


def test_the_database_url_comes_from_the_environment_or_a_dotenv_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    env_file = tmp_path / ".env"
    with pytest.raises(ConfigError, match="db: give --db"):
        resolve_database_url(None, env_file)
    env_file.write_text("# app settings\nexport DATABASE_URL='postgresql://u:p@db:5432/app'\n")
    assert resolve_database_url(None, env_file) == "postgresql://u:p@db:5432/app"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-env.db")
    assert resolve_database_url(None, env_file) == "sqlite:///from-env.db"
    assert resolve_database_url("given.db", env_file) == "given.db"


def test_bad_mappings_and_agent_types_exit_2_naming_them(app_db, tmp_path, recursa_cli):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump({"columns": {"feedback": "user_feedback"}}))
    calculate = ["rewards", "calculate", "--db", app_db]
    code, err = recursa_cli([*calculate, "--agent-type", "FILER", "--mapping", mapping])
    assert code == 2 and "columns.feedback: no column 'user_feedback' in table 'decisions'" in err
    mapping.write_text(yaml.safe_dump({"table": "Decision"}))
    code, err = recursa_cli([*calculate, "--agent-type", "FILER", "--mapping", mapping])
    assert code == 2 and "table: no table 'Decision'" in err
    mapping.write_text(yaml.safe_dump({"columns": {"colour": "x"}}))
    code, err = recursa_cli([*calculate, "--agent-type", "FILER", "--mapping", mapping])
    assert code == 2 and "columns.colour: unknown key" in err
    code, err = recursa_cli([*calculate, "--agent-type", "ARCHIVIST"])
    assert code == 2 and "agent-type: unknown agent type 'ARCHIVIST'" in err
    code, err = recursa_cli(["traces", "export", "--format", "sft", "--db", app_db, "--out", tmp_path / "x.jsonl"])
    assert code == 2 and "agent-type" in err
