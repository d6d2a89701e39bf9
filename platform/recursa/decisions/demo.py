"""`make decisions-demo`: a FILER agent from an application's database to a measured A/B comparison.

A synthetic file-organisation application (`synthetic.py`) has filed 600 files with its old
rule-of-thumb agent and recorded each decision and the user's reactions in its own `Decision`
table (PostgreSQL when RECURSA_TEST_POSTGRES_URL is set, else SQLite). recursa's pipeline reads that
table by a mapping, computes the rewards, exports the well-rewarded decisions as SFT records, trains
a LoRA adapter with `jobs/configs/filer.yaml` on Ray Train, evaluates base and adapter on a held-out
test file and registers the adapter; the demo registers the base beside it, routes 200 requests from 100 users between them (sticky per user),
records every served decision, lets the application record the decisions and the users' reactions,
rewards them, and compares the two versions. report.json holds the figures in the issue's shape;
eval.json and ab.json beside it hold the full evaluation and A/B reports.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from recursa.core.config import load_config
from recursa.decisions.ab import ab_report
from recursa.decisions.config import DecisionsConfig
from recursa.decisions.evaluate import generate_decisions
from recursa.decisions.pipeline import DatasetStep, EvaluateStep, ExportStep, PipelineConfig, RegisterStep, run_pipeline
from recursa.decisions.registry import ModelRegistry, ModelVersion
from recursa.decisions.rewards import calculate_rewards
from recursa.decisions.router import Router, ServedDecisions
from recursa.decisions.source import DecisionSource, open_engine
from recursa.decisions.synthetic import FILER, MAPPING, FilingTask, decision_row, decision_table, filing_tasks
from recursa.decisions.synthetic import seed_application as seed_decisions
from recursa.llm.config import LLMModelSettings, TrainLLMConfig
from recursa.llm.models import load_causal_lm

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


def serve_ab(source: DecisionSource, model, tokenizer, tasks: list[FilingTask], first_id: int) -> None:
    """Route each request to a version (sticky per user), answer with that version, record the served
    decision; the application then stores the decision and its user's reactions in its table."""
    router, served = Router({BASE: 1, TUNED: 1}), ServedDecisions(source.engine)
    users = [f"user{i % USERS}" for i in range(len(tasks))]
    versions = [router.route(user) for user in users]
    prompts = [FILER.prompt(task.state) for task in tasks]
    outputs: dict[int, str] = {}
    for version in (BASE, TUNED):
        chosen = [i for i, v in enumerate(versions) if v == version]
        with model.disable_adapter() if version == BASE else nullcontext():
            outputs.update(zip(chosen, generate_decisions(model, tokenizer, [prompts[i] for i in chosen], 32)))
    rows = []
    for i, task in enumerate(tasks):
        served.record(AGENT, versions[i], prompts[i], outputs[i], user_id=users[i], request_id=str(first_id + i))
        try:
            decision = FILER.parse(outputs[i])
        except ValueError:
            decision = None
        rows.append(decision_row(first_id + i, task, decision, versions[i], users[i],
                                 AB_START + timedelta(minutes=i)))
    with source.engine.begin() as conn:
        conn.execute(sa.insert(decision_table(sa.MetaData())), rows)


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
    peft_model, tokenizer = load_causal_lm(LLMModelSettings(path=base_path), adapter=pipeline["steps"]["train"]["adapter"],
                                           trainable=False)
    serve_ab(source, peft_model, tokenizer, filing_tasks(REQUESTS, seed=3), first_id=HISTORY + 1)
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
