"""Registered versions, the traffic split (within tolerance, sticky per user), every served decision
recorded with its version, and the A/B report's intervals checked against a hand computation."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from recursa.cli import app
from recursa.decisions.ab import compare, mean_interval
from recursa.decisions.registry import ModelRegistry, ModelVersion
from recursa.decisions.router import Router, ServedDecisions
from recursa.decisions.source import open_engine
from trace_databases import db_url  # noqa: F401  (fixture)


def test_the_split_follows_the_weights_and_sticks_to_users():
    router = Router({"base": 1, "tuned": 3})
    users = [f"user-{i}" for i in range(4000)]
    first = {user: router.route(user) for user in users}
    share = Counter(first.values())["tuned"] / len(users)
    assert abs(share - 0.75) < 0.03  # 4000 users: the binomial standard deviation is 0.007
    assert all(Router({"tuned": 3, "base": 1}).route(user) == version for user, version in first.items())
    drawing = Router({"base": 1, "tuned": 1}, seed=0)
    anonymous = Counter(drawing.route() for _ in range(4000))
    assert abs(anonymous["base"] / 4000 - 0.5) < 0.03
    assert Router({"base": 0, "tuned": 1}).route("anyone") == "tuned"
    with pytest.raises(ValueError, match="weights"):
        Router({"base": 0})


def test_versions_and_served_decisions_are_recorded(db_url):  # noqa: F811
    engine = open_engine(db_url)
    registry = ModelRegistry(engine)
    registry.add(ModelVersion("filer-base", "filer", "base", "smollm2-135m-instruct",
                              metrics={"accuracy": 0.1}, created_at=datetime(2026, 1, 1)))
    registry.add(ModelVersion("filer-v1", "FILER", "v1", "smollm2-135m-instruct", adapter="/adapters/v1",
                              metrics={"accuracy": 0.9}, created_at=datetime(2026, 1, 2)))
    with pytest.raises(ValueError, match="already registered"):
        registry.add(ModelVersion("filer-v1", "FILER", "again", "x"))
    assert [v.version_id for v in registry.list("filer")] == ["filer-base", "filer-v1"]
    assert registry.get("filer-v1").adapter == "/adapters/v1" and registry.get("filer-v1").metrics == {"accuracy": 0.9}
    assert registry.list("LIBRARIAN") == []

    served = ServedDecisions(engine)
    router = Router({"filer-base": 1, "filer-v1": 1})
    for i in range(40):
        version = router.route(f"u{i % 10}")
        served.record("FILER", version, f"prompt {i}", 'raw \x00 model output', user_id=f"u{i % 10}")
    counts = served.counts("FILER")
    assert sum(counts.values()) == 40 and set(counts) <= {"filer-base", "filer-v1"}
    table = sa.Table("recursa_served_decisions", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        pairs = set(conn.execute(sa.select(table.c.user_id, table.c.version_id)).all())
    assert len(pairs) == 10  # each user always met the same version
    with engine.connect() as conn:  # PostgreSQL refuses NUL characters: they are stored replaced
        assert conn.scalar(sa.select(table.c.completion).limit(1)) == "raw \ufffd model output"


def test_intervals_match_a_hand_computation():
    a, b = [0.2, 0.4, 0.6, 0.8], [0.7, 0.8, 0.9, 1.0, 0.9]
    row = mean_interval(a)
    # mean 0.5, sd 0.2582, sem 0.1291, t(0.975, 3) = 3.1824
    assert row["mean_reward"] == pytest.approx(0.5) and row["ci95"] == pytest.approx([0.0892, 0.9108], abs=1e-4)
    result = compare(b, a)
    se = math.sqrt(0.2582 ** 2 / 4 + 0.1140 ** 2 / 5)
    assert result["reward_diff"] == pytest.approx(0.36)
    assert result["ci95"][1] - result["ci95"][0] > 2 * 1.96 * se  # Welch's t is wider than a normal interval
    assert result["significant"] == (result["ci95"][0] > 0) and 0 < result["p_value"] < 1
    assert compare([0.5, 0.6], [0.5, 0.6])["significant"] is False


def test_ab_report_from_the_applications_rewarded_decisions(db_url, tmp_path):  # noqa: F811
    from test_decisions_data import conventional_table

    table = conventional_table(db_url)
    engine = open_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.delete(table))
        conn.execute(sa.insert(table), [
            {"id": 100 + i, "agent_type": "FILER", "state": {"file": {"name": "f"}, "folders": []},
             "decision": {"folder": "x"}, "model_version": version, "immediate": score,
             "created_at": datetime(2026, 3, 1) + timedelta(minutes=i)}
            for i, (version, score) in enumerate([("base", -1.0), ("base", 1.0), ("base", -1.0), ("base", 0.0),
                                                  ("tuned", 1.0), ("tuned", 1.0), ("tuned", 0.0), ("tuned", 1.0)])])
    registry = ModelRegistry(engine)
    registry.add(ModelVersion("base", "FILER", "base", "m", created_at=datetime(2026, 1, 1)))
    registry.add(ModelVersion("tuned", "FILER", "tuned", "m", adapter="a", created_at=datetime(2026, 1, 2)))
    ServedDecisions(engine).record("FILER", "tuned", "p", "c")
    runner = CliRunner()
    assert runner.invoke(app, ["rewards", "calculate", "--agent-type", "FILER", "--db", db_url]).exit_code == 0
    out = tmp_path / "ab.json"
    result = runner.invoke(app, ["ab", "report", "--agent-type", "FILER", "--db", db_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(out.read_text())
    assert report["control"] == "base" and report["served"] == 1
    assert report["versions"]["base"]["mean_reward"] == pytest.approx((0 + 1 + 0 + 0.5) / 4)
    assert report["versions"]["tuned"]["mean_reward"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert report["comparisons"]["tuned"]["reward_diff"] == pytest.approx(0.5)
    assert "tuned - base: +0.500" in result.output


def test_registry_commands_register_with_metrics_and_list(tmp_path, recursa_cli):
    import json

    db = str(tmp_path / "app.db")
    metrics = tmp_path / "eval.json"
    metrics.write_text(json.dumps({"base": {"accuracy": 0.1}, "fine_tuned": {"accuracy": 0.875, "mean_reward": 0.9,
                                                                            "sample_errors": [{"line": 3}]}}))
    runner = CliRunner()
    add = ["registry", "add", "filer-v2", "--agent-type", "filer", "--base", "runs/tiny-llm", "--db", db]
    assert runner.invoke(app, [*add, "--metrics", str(metrics)]).exit_code == 0
    assert ModelRegistry(open_engine(db)).get("filer-v2").metrics == {"accuracy": 0.875, "mean_reward": 0.9}
    listed = runner.invoke(app, ["registry", "list", "--agent-type", "FILER", "--db", db]).output
    assert "filer-v2" in listed and "0.875" in listed
    code, err = recursa_cli(add)
    assert code == 2 and "version-id: version 'filer-v2' is already registered" in err
    from test_decisions_data import conventional_table

    conventional_table(db)
    code, err = recursa_cli(["ab", "report", "--agent-type", "FILER", "--db", db, "--versions", "filer-v2",
                             "--control", "nope"])
    assert code == 2 and "versions: control 'nope'" in err
