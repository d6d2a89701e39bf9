"""The config base every product's YAML config builds on, the one loader, and the settings shared
across products (Ray Train workers, RLlib env runners, Tune search ranges and trial scheduling).

Every knob has a default that works on a 2-core laptop. Unknown keys are errors. A bad value
raises `ConfigError` whose message is one line naming the field; the CLI exits 2 with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator


class ConfigError(ValueError):
    """A config (or a path it names) is invalid; the message names the field."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Model = TypeVar("Model", bound=BaseModel)


def describe_validation_error(error: ValidationError) -> str:
    """One line: the first failing field's dotted path and the reason."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        reason = "unknown key"
    return f"{field}: {reason}"


def parse_config(data: dict, model: type[Model], config_dir: str | Path = ".") -> Model:
    """Validate a mapping against a config model, raising ConfigError with one line. Paths of included
    configs are relative to `config_dir`."""
    try:
        return model.model_validate(data, context={"config_dir": Path(config_dir)})
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def load_config(path: str | Path | None, model: type[Model]) -> Model:
    """Load and validate a YAML config; None gives the defaults. Included configs are relative to it."""
    if path is None:
        return model()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config: not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError("config: top level must be a mapping")
    return parse_config(data, model, config_dir=path.parent)


def included_config(value: Any, model: type[Model], info: ValidationInfo) -> Any:
    """A before-validator's value for a config field that holds another config: the path of its YAML
    (relative to the including YAML) is loaded; a mapping is left for pydantic to validate."""
    if not isinstance(value, (str, Path)):
        return value
    config_dir = (info.context or {}).get("config_dir", Path("."))
    try:
        return load_config(Path(config_dir) / value, model)
    except ConfigError as error:
        raise ValueError(f"{value}: {error}") from None


def dump_config(config: BaseModel, path: str | Path) -> None:
    """Write a config as resolved (all defaults filled in) to YAML."""
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


class WorkerSettings(StrictModel):
    """Ray Train workers (DDP); GPUs when present and asked for."""

    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(2.0, gt=0.0)


class RunnerSettings(StrictModel):
    """How rollouts are spread over RLlib env runners."""

    num_env_runners: int = Field(2, ge=0)
    num_envs_per_env_runner: int = Field(4, ge=1)
    num_cpus_per_env_runner: float = Field(0.5, gt=0.0)


class SearchRange(StrictModel):
    """A hyperparameter sampled per trial: uniform in [low, high], log-uniform with `log: true`."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if self.log and self.low <= 0:
            raise ValueError("log: low must be positive")
        return self


class TrialScheduling(StrictModel):
    """How Tune trials share the cluster and survive failures."""

    max_concurrent_trials: int | None = Field(None, ge=1)  # default: as many as the cluster fits
    max_failures: int = Field(2, ge=0)  # a failed trial restarts from its latest checkpoint this often


def positive_choices(values: list[int]) -> list[int]:
    if not values or min(values) < 1:
        raise ValueError("give at least one positive integer")
    return values


