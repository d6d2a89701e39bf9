"""`make decisions-demo`: a FILER agent from an application's database to a measured A/B comparison.

A synthetic file-organisation application (`synthetic.py`) has filed 600 files with its old
rule-of-thumb agent and recorded each decision and the user's reactions in its own `Decision`
table (PostgreSQL when RECURSA_TEST_POSTGRES_URL is set, else SQLite). recursa's pipeline reads that
table by a mapping, computes the rewards, exports the well-rewarded decisions as SFT records, trains
a LoRA adapter with `jobs/configs/filer.yaml` on Ray Train, evaluates base and adapter on a held-out
test file and registers the adapter; the demo registers the base beside it and serves both from the
LLM Serve app, whose A/B route splits 200 requests from 100 users between them (sticky per user) and
records every served decision, lets the application record the decisions and the users' reactions,
rewards them, and compares the two versions. report.json holds the figures in the issue's shape;
eval.json and ab.json beside it hold the full evaluation and A/B reports.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from recursa.core.config import load_config
from recursa.decisions.ab import ab_report
from recursa.decisions.config import DecisionsConfig
from recursa.decisions.pipeline import DatasetStep, EvaluateStep, ExportStep, PipelineConfig, RegisterStep, run_pipeline
from recursa.decisions.registry import ModelRegistry, ModelVersion
from recursa.decisions.rewards import calculate_rewards
from recursa.decisions.source import DecisionSource, open_engine
from recursa.decisions.synthetic import FILER, MAPPING, FilingTask, decision_row, decision_table, filing_tasks
from recursa.decisions.synthetic import seed_application as seed_decisions
from recursa.llm.config import TrainLLMConfig

AGENT = "FILER"
POSTGRES_ENV = "RECURSA_TEST_POSTGRES_URL"
DEMO_SCHEMA = "recursa_decisions_demo"
HISTORY, TEST, REQUESTS, USERS = 600, 100, 200, 100
MIN_REWARD = 0.9  # the decisions the users accepted and kept
BASE, TUNED = "filer-base", "filer-sft-v1"
AB_START = datetime(2026, 2, 1, tzinfo=timezone.utc)  # the served decisions follow the history
FIGURES = ("accuracy", "mean_reward", "format_error_rate")


def demo_database(out_dir: Path) -> str:
    """A fresh database: a schema of its own on the PostgreSQL server in $RECURSA_TEST_POSTGRES_URL,
    else a SQLite file in the demo directory."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        path = out_dir / "app.db"
        path.unlink(missing_ok=True)
        return str(path)
    engine = open_engine(server)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {DEMO_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {DEMO_SCHEMA}"))
    engine.dispose()
    return f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{DEMO_SCHEMA}"


def tiny_filer_model(out_dir: Path) -> Path:
    """The tiny random Llama, its tokenizer trained on agent text and on file-filing prompts."""
    from recursa.llm.tiny import create_tiny_llm, default_corpus

    corpus = default_corpus() + [FILER.prompt(t.state) + FILER.completion(t.truth) for t in filing_tasks(500, seed=2)]
    return create_tiny_llm(out_dir / "tiny-llm", corpus, seed=0)


def serve_ab(source: DecisionSource, db: str, base: str, adapter: str, tasks: list[FilingTask],
             first_id: int) -> None:
    """The LLM Serve app answers each task's request for FILER with the version its A/B route picks
    (sticky per user) and records the served decision; the application stores the decision, with
    the version the response names, and its user's reactions in its table."""
    from ray import serve

    from recursa.llm.serve import app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(app({"model": base, "model_name": BASE, "adapters": {TUNED: adapter}, "max_new_tokens": 32,
                       "routes": {AGENT: {BASE: 1, TUNED: 1}}, "decisions_db": db}),
                  name="decisions-demo", route_prefix="/")
        users = [f"user{i % USERS}" for i in range(len(tasks))]
        bodies = [{"model": AGENT, "prompt": FILER.prompt(task.state), "user": user} for task, user in zip(tasks, users)]
        with ThreadPoolExecutor(8) as pool:  # concurrent requests, batched by the replica
            answers = list(pool.map(partial(_post, f"http://127.0.0.1:{port}/v1/completions"), bodies))
    finally:
        serve.shutdown()
    rows = []
    for i, (task, answer) in enumerate(zip(tasks, answers)):
        try:
            decision = FILER.parse(answer["choices"][0]["text"])
        except ValueError:
            decision = None
        rows.append(decision_row(first_id + i, task, decision, answer["model"], users[i], AB_START + timedelta(minutes=i)))
    with source.engine.begin() as conn:
        conn.execute(sa.insert(decision_table(sa.MetaData())), rows)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def run_decisions_demo(out_dir: str | Path, train_config: str | Path = "jobs/configs/filer.yaml",
                       model: str | None = None) -> dict[str, Any]:
    """Every step of the module's docstring; returns report.json's content. Ray must be initialised."""
    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    db = demo_database(out_dir)
    engine = open_engine(db)
    seed_decisions(engine, filing_tasks(HISTORY, seed=0), seed=1)
    (out_dir / "mapping.yaml").write_text(yaml.safe_dump(MAPPING, sort_keys=False))
    test_file = out_dir / "filer-test.jsonl"
    test_file.write_text("".join(json.dumps({"state": t.state, "ground_truth": t.truth}) + "\n"
                                 for t in filing_tasks(TEST, seed=1)))

    # collect -> reward -> dataset -> train -> evaluate -> export -> register: `recursa pipeline run`.
    base_path = model or str(tiny_filer_model(out_dir))
    train = load_config(train_config, TrainLLMConfig)
    train.runs_dir, train.name, train.model.path = str(out_dir), "filer", base_path
    pipeline = run_pipeline(PipelineConfig(
        agent_type=AGENT, db=db, mapping=DecisionsConfig(**MAPPING), dataset=DatasetStep(min_reward=MIN_REWARD),
        train=train, evaluate=EvaluateStep(test_data=str(test_file)), export=ExportStep(format="adapter"),
        registry=RegisterStep(version_id=TUNED)))
    evaluation = pipeline["steps"]["evaluate"]
    (out_dir / "eval.json").write_text(json.dumps(evaluation, indent=2))
    ModelRegistry(engine).add(ModelVersion(BASE, AGENT, "FILER base", base_path, metrics=_figures(evaluation["base"])))

    source = DecisionSource(engine, DecisionsConfig(**MAPPING))
    serve_ab(source, db, base_path, pipeline["steps"]["train"]["adapter"], filing_tasks(REQUESTS, seed=3),
             first_id=HISTORY + 1)
    calculate_rewards(source, AGENT)
    ab = ab_report(source, AGENT, [BASE, TUNED], control=BASE)
    (out_dir / "ab.json").write_text(json.dumps(ab, indent=2))
    comparison = ab["comparisons"][TUNED]
    report = {"agent_type": AGENT, "before": _figures(evaluation["base"]), "after": _figures(evaluation["fine_tuned"]),
              "ab": {"versions": ab["versions"], "reward_diff": comparison["reward_diff"],
                     "ci95": comparison["ci95"], "served": ab["served"]}}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    (out_dir / "timing.json").write_text(json.dumps({"wall_seconds": time.perf_counter() - started}))
    engine.dispose()
    return report


def _figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: figures[key] for key in FIGURES}
