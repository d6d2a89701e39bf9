"""`recursa pipeline run`: one decision agent from the application's table to a registered version,
step by step: collect (read the decisions by the mapping) -> reward -> dataset (training records)
-> train (`recursa train llm` on Ray Train) -> evaluate (the test file, beside the base) -> export
-> register. As a Ray job: `recursa submit jobs/pipeline_run.yaml`.

Each step is the library function its command calls; runs/<train.name>/pipeline.json holds what
every step did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from recursa.core.config import ConfigError, StrictModel, included_config
from recursa.decisions.config import DecisionsConfig
from recursa.decisions.evaluate import evaluate_with_base, read_test_file
from recursa.decisions.formats import DecisionFormat, resolve_format
from recursa.decisions.records import ExportFilters, RecordFormat, build_records, rewarded_decisions
from recursa.decisions.registry import ModelRegistry, ModelVersion
from recursa.decisions.rewards import calculate_rewards
from recursa.decisions.source import DecisionSource, open_engine, resolve_database_url
from recursa.llm.config import LLMModelSettings, TrainLLMConfig
from recursa.llm.datasets import write_records
from recursa.traces.components import ComponentRewardCalculator

# The training method each record format feeds.
METHOD_OF_FORMAT = {"sft": "sft", "kto": "kto", "grpo": "offline_grpo"}


class DatasetStep(StrictModel):
    """Which rewarded decisions become training records, and in which format (see records.py)."""

    format: RecordFormat = "sft"
    min_reward: float | None = None
    with_feedback: bool = False
    limit: int | None = Field(None, ge=1)
    threshold: float = 0.5


class EvaluateStep(StrictModel):
    """The held-out test file (JSON lines of state and ground truth)."""

    test_data: str
    skip_bad: bool = False
    max_new_tokens: int = Field(32, ge=1)


class ExportStep(StrictModel):
    """How the trained version is exported: the adapter alone, or merged into its base."""

    format: Literal["adapter", "merged"] = "adapter"


class RegisterStep(StrictModel):
    """The id (and name) the trained version is registered under."""

    version_id: str
    name: str | None = None


class PipelineConfig(StrictModel):
    """`recursa pipeline run --config`: the steps' settings; evaluate, export and register are optional."""

    agent_type: str
    db: str | None = None  # default: $DATABASE_URL, else DATABASE_URL in ./.env
    mapping: DecisionsConfig = DecisionsConfig()  # inline, or the path of a decisions config
    recompute: bool = False  # rescore every decision with the current weights
    dataset: DatasetStep = DatasetStep()
    train: TrainLLMConfig  # a `recursa train llm` config, inline or its path; data.records_path is the dataset's
    evaluate: EvaluateStep | None = None
    export: ExportStep | None = None
    registry: RegisterStep | None = None

    @field_validator("mapping", mode="before")
    @classmethod
    def _mapping_from_file(cls, value: Any, info: ValidationInfo) -> Any:
        return included_config(value, DecisionsConfig, info)

    @field_validator("train", mode="before")
    @classmethod
    def _train_from_file(cls, value: Any, info: ValidationInfo) -> Any:
        return included_config(value, TrainLLMConfig, info)

    @field_validator("dataset")
    @classmethod
    def _format_has_a_recipe(cls, dataset: DatasetStep) -> DatasetStep:
        if dataset.format not in METHOD_OF_FORMAT:
            raise ValueError(f"{dataset.format} records have no recipe in recursa train llm (use TRL's trainer)")
        return dataset

    @field_validator("train")
    @classmethod
    def _method_fits_format(cls, train: TrainLLMConfig, info: ValidationInfo) -> TrainLLMConfig:
        dataset = info.data.get("dataset")
        if dataset is not None and train.method != METHOD_OF_FORMAT[dataset.format]:
            raise ValueError(f"method {train.method} does not train on {dataset.format} records "
                             f"({METHOD_OF_FORMAT[dataset.format]} does)")
        return train


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Every configured step in order; returns (and writes to runs/<name>/pipeline.json) what each did.
    Ray must be initialised (the train step runs on Ray Train)."""
    from recursa.llm.train import train_llm

    agent_type = config.agent_type.upper()
    source = DecisionSource(open_engine(resolve_database_url(config.db)), config.mapping)
    try:
        prompt_format = resolve_format(agent_type, config.mapping.formats)
    except ValueError as error:
        raise ConfigError(f"agent_type: {error}") from None
    train = config.train.model_copy(deep=True)
    steps: dict[str, Any] = {"collect": {"decisions": sum(1 for _ in source.read(agent_type))}}
    steps["reward"] = calculate_rewards(source, agent_type, recompute=config.recompute).__dict__
    dataset = config.dataset
    decisions = rewarded_decisions(source, agent_type, ExportFilters(dataset.min_reward, dataset.with_feedback,
                                                                     dataset.limit, dataset.threshold))
    records = build_records(decisions, dataset.format, prompt_format, dataset.threshold)
    records_path = write_records(records, Path(train.runs_dir) / f"{train.name}-{dataset.format}.jsonl")
    steps["dataset"] = {"decisions": len(decisions), "records": len(records), "path": str(records_path.resolve())}
    train.data.records_path = str(records_path.resolve())
    adapter = train_llm(train)
    steps["train"] = {"method": train.method, "adapter": str(adapter)}
    if config.evaluate is not None:
        steps["evaluate"] = _evaluate(config.evaluate, train.model.path, adapter, agent_type, prompt_format,
                                      config.mapping.weights_for(agent_type))
    if config.export is not None:
        from recursa.llm.export import export_adapter, merge_adapter

        export = merge_adapter if config.export.format == "merged" else export_adapter
        out = adapter.parent / f"export-{config.export.format}"
        steps["export"] = {"format": config.export.format, "path": str(out), **export(adapter, out)}
    if config.registry is not None:
        steps["register"] = _register(config.registry, source.engine, agent_type, train.model.path, adapter,
                                      steps.get("evaluate", {}).get("fine_tuned", {}))
    report = {"agent_type": agent_type, "steps": steps}
    (adapter.parent / "pipeline.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _evaluate(step: EvaluateStep, base: str, adapter: Path, agent_type: str, prompt_format: DecisionFormat,
              weights: dict[str, float]) -> dict[str, Any]:
    """The fine-tuned and base figures on the test file."""
    from recursa.llm.models import load_causal_lm

    try:
        examples, skipped = read_test_file(step.test_data, step.skip_bad)
    except (OSError, ValueError) as error:
        raise ConfigError(f"evaluate.test_data: {error}") from None
    model, tokenizer = load_causal_lm(LLMModelSettings(path=base), adapter=adapter, trainable=False)
    figures = evaluate_with_base(model, tokenizer, examples, prompt_format,
                                 ComponentRewardCalculator(agent_type, weights), step.max_new_tokens)
    return {**figures, "skipped": skipped}


def _register(step: RegisterStep, engine, agent_type: str, base: str, adapter: Path,
              figures: dict[str, Any]) -> dict[str, Any]:
    """The trained version in the registry, with its evaluation (if any) as metrics."""
    metrics = {key: value for key, value in figures.items() if key != "sample_errors"}
    try:
        ModelRegistry(engine).add(ModelVersion(step.version_id, agent_type, step.name or step.version_id, base,
                                               adapter=str(adapter), metrics=metrics))
    except ValueError as error:
        raise ConfigError(f"register.version_id: {error}") from None
    return {"version_id": step.version_id, "metrics": metrics}
