"""`recursa rewards`, `recursa registry` and `recursa ab`: decision agents from an application's database."""

from __future__ import annotations

from pathlib import Path

import typer

from recursa.cli.app import ab_app, console, decisions_app, pipeline_app, registry_app, rewards_app
from recursa.cli.common import DECISIONS_DB_HELP, MAPPING_HELP, decision_source, known_agent_type
from recursa.core.config import ConfigError


@rewards_app.command("calculate")
def rewards_calculate(
    agent_type: str = typer.Option(..., "--agent-type", help="FILER, PRIORITIZER, LIBRARIAN, STORER, RETRIEVER, "
                                   "or one the mapping adds."),
    db: str | None = typer.Option(None, "--db", help=DECISIONS_DB_HELP),
    mapping: Path | None = typer.Option(None, "--mapping", help=MAPPING_HELP),
    pending: bool = typer.Option(False, "--pending", help="Only decisions without a reward (default: also "
                                 "rescore those whose outcomes changed since)."),
    recompute: bool = typer.Option(False, "--recompute", help="Rescore every decision with the current weights "
                                   "(after a weight change)."),
) -> None:
    """Compute the component reward (immediate, delayed, strategic) of an agent type's decisions and store
    it, with the weights used, in recursa_rewards beside the application's table; idempotent."""
    from recursa.decisions.rewards import calculate_rewards

    if pending and recompute:
        raise ConfigError("recompute: --pending and --recompute exclude each other")
    source = decision_source(db, mapping)
    agent_type = known_agent_type(source.config, agent_type)
    try:
        run = calculate_rewards(source, agent_type, pending_only=pending, recompute=recompute)
    except ValueError as error:
        raise ConfigError(f"columns: {error}") from None
    console.print(f"{agent_type}: {run.computed} rewards computed, {run.unchanged} up to date, "
                  f"{run.unobserved} decisions without outcomes yet")
    if run.other_weights:
        console.print(f"{run.other_weights} stored rewards use other weights than {source.config.weights_for(agent_type)}: "
                      "run with --recompute to rescore them")


@registry_app.command("add")
def registry_add(
    version_id: str = typer.Argument(..., help="The version's id: what the router routes to and what the "
                                     "application stores as its model version."),
    agent_type: str = typer.Option(..., "--agent-type", help="The agent type it serves."),
    base: str | None = typer.Option(None, "--base", help="The base model (default: the one the adapter records)."),
    adapter: Path | None = typer.Option(None, "--adapter", help="A LoRA adapter on the base."),
    gguf: Path | None = typer.Option(None, "--gguf", help="A GGUF export of the version."),
    name: str | None = typer.Option(None, "--name", help="A readable name (default: the id)."),
    metrics: Path | None = typer.Option(None, "--metrics", help="The evaluation at registration: a `recursa eval "
                                        "llm --test-data --out` report (its fine-tuned, else base, figures) or "
                                        "any JSON object."),
    db: str | None = typer.Option(None, "--db", help=DECISIONS_DB_HELP),
) -> None:
    """Register a model version of a decision agent in recursa_model_versions."""
    from recursa.decisions.registry import ModelRegistry, ModelVersion
    from recursa.decisions.source import open_engine, resolve_database_url
    from recursa.llm.models import adapter_base

    if base is None:
        if adapter is None:
            raise ConfigError("base: give --base, or --adapter (whose base is recorded)")
        base = adapter_base(adapter)
    figures = _registration_metrics(metrics) if metrics is not None else {}
    version = ModelVersion(version_id, agent_type, name or version_id, base,
                           None if adapter is None else str(adapter.resolve()),
                           None if gguf is None else str(gguf.resolve()), figures)
    try:
        ModelRegistry(open_engine(resolve_database_url(db))).add(version)
    except ValueError as error:
        raise ConfigError(f"version-id: {error}") from None
    console.print(f"registered {version_id} ({agent_type.upper()}): {base}"
                  + (f" + {version.adapter}" if version.adapter else ""))


def _registration_metrics(path: Path) -> dict:
    import json

    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"metrics: cannot read a JSON object from {path}: {error}") from None
    if not isinstance(report, dict):
        raise ConfigError(f"metrics: {path} holds no JSON object")
    figures = report.get("fine_tuned") or report.get("base") or report
    return {key: value for key, value in figures.items() if key != "sample_errors"}


@registry_app.command("list")
def registry_list(
    agent_type: str | None = typer.Option(None, "--agent-type", help="Only this agent type."),
    db: str | None = typer.Option(None, "--db", help=DECISIONS_DB_HELP),
) -> None:
    """The registered versions, oldest first, with their metrics at registration."""
    from rich.table import Table

    from recursa.decisions.registry import ModelRegistry
    from recursa.decisions.source import open_engine, resolve_database_url

    table = Table("version", "agent type", "name", "base", "adapter / gguf", "accuracy", "mean reward", "registered")
    for v in ModelRegistry(open_engine(resolve_database_url(db))).list(agent_type):
        table.add_row(v.version_id, v.agent_type, v.name, v.base, v.adapter or v.gguf or "-",
                      _figure(v.metrics.get("accuracy")), _figure(v.metrics.get("mean_reward")),
                      f"{v.created_at:%Y-%m-%d %H:%M}" if v.created_at else "-")
    console.print(table)


def _figure(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


@ab_app.command("report")
def ab_report(
    agent_type: str = typer.Option(..., "--agent-type", help="The agent type whose versions are compared."),
    versions: str | None = typer.Option(None, "--versions", help="Comma-separated version ids (default: the "
                                        "registered versions of the agent type)."),
    control: str | None = typer.Option(None, "--control", help="The version the others are compared with "
                                       "(default: the first)."),
    db: str | None = typer.Option(None, "--db", help=DECISIONS_DB_HELP),
    mapping: Path | None = typer.Option(None, "--mapping", help=MAPPING_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write the report as JSON here."),
) -> None:
    """Each version's mean reward with its 95% interval, and the difference to the control with its 95%
    interval and whether it is significant; rewards as stored by `recursa rewards calculate`."""
    import json

    from recursa.decisions.ab import ab_report as build

    source = decision_source(db, mapping)
    agent_type = known_agent_type(source.config, agent_type)
    chosen = [v.strip() for v in versions.split(",")] if versions else None
    try:
        report = build(source, agent_type, chosen, control)
    except ValueError as error:
        raise ConfigError(f"versions: {error}") from None
    for version, row in report["versions"].items():
        console.print(f"{version}: {row['n']} rewarded decisions, {row['served']} served, mean reward "
                      f"{_figure(row['mean_reward'])}, 95% CI {_interval(row['ci95'])}")
    for version, row in report["comparisons"].items():
        verdict = "significant" if row["significant"] else "not significant"
        console.print(f"{version} - {report['control']}: {row['reward_diff']:+.3f}, 95% CI {_interval(row['ci95'])}, "
                      f"p = {_figure(row['p_value'])}: {verdict} at 95%")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))


def _interval(bounds: list[float] | None) -> str:
    return "-" if bounds is None else f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


@pipeline_app.command("run")
def pipeline_run(
    config: Path = typer.Option(..., "--config", help="Pipeline config (jobs/configs/filer_pipeline.yaml)."),
) -> None:
    """collect -> reward -> dataset -> train -> evaluate -> export -> register, for one decision agent;
    runs/<train.name>/pipeline.json says what each step did. As a Ray job: jobs/pipeline_run.yaml."""
    import json

    from recursa.core.config import load_config
    from recursa.core.runtime import init_ray
    from recursa.decisions.pipeline import PipelineConfig, run_pipeline

    settings = load_config(config, PipelineConfig)
    known_agent_type(settings.mapping, settings.agent_type)
    init_ray(log_to_driver=True)
    report = run_pipeline(settings)
    summary = {name: {k: v for k, v in step.items() if k not in ("sample_errors", "base", "fine_tuned")}
               for name, step in report["steps"].items()}
    if "evaluate" in report["steps"]:
        summary["evaluate"] = {side: {k: report["steps"]["evaluate"][side][k] for k in
                                      ("accuracy", "mean_reward", "format_error_rate")}
                               for side in ("base", "fine_tuned")}
    console.print(json.dumps(summary, indent=2, default=str))


@decisions_app.command("demo")
def decisions_demo(
    out: Path = typer.Option(Path("runs/decisions-demo"), "--out", help="The demo directory (report.json)."),
    config: Path = typer.Option(Path("jobs/configs/filer.yaml"), "--config", help="The training config."),
    model: str | None = typer.Option(None, "--model", help="The base model (default: a tiny one made here; "
                                     "smollm2-135m-instruct for a real one)."),
) -> None:
    """Synthetic FILER decisions in a database (PostgreSQL when RECURSA_TEST_POSTGRES_URL is set) to
    rewards, SFT records, a LoRA adapter, its evaluation beside the base, registered versions, an A/B
    split and its report; writes OUT/report.json."""
    import json
    import time

    from recursa.core.runtime import init_ray
    from recursa.decisions.demo import run_decisions_demo

    started = time.perf_counter()
    init_ray(log_to_driver=True)
    report = run_decisions_demo(out, config, model)
    console.print(json.dumps(report, indent=2))
    console.print(f"{out / 'report.json'} in {time.perf_counter() - started:.0f} s")
