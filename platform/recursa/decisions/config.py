"""The decisions config: which table and columns hold the application's decisions, the reward weights
per agent type, and the prompt formats users add.

Every key has a default, so an application whose table follows the conventional names
(`decisions` with `id`, `agent_type`, `state`, ...) needs no config file at all.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from recursa.core.config import StrictModel
from recursa.traces.components import COMPONENTS, PRESETS

DEFAULT_CONFIG = "decisions.yaml"


class DecisionColumns(StrictModel):
    """Column names of the application's decisions table; None: the table has no such column."""

    id: str = "id"
    agent_type: str = "agent_type"
    state: str = "state"  # JSON (or JSON text): what the agent saw
    decision: str = "decision"  # JSON (or JSON text): what it decided
    model_version: str | None = "model_version"
    user_id: str | None = None
    feedback: str | None = "feedback"
    created_at: str | None = "created_at"
    # Outcome fields: the observed reward components, each a number in [-1, 1] or NULL while unknown.
    immediate: str | None = "immediate"
    delayed: str | None = "delayed"
    strategic: str | None = "strategic"


class DecisionsConfig(StrictModel):
    """`--config decisions.yaml` of `recursa rewards`, `traces export/stats --agent-type`, `eval llm
    --test-data`, `registry` and `ab`."""

    table: str = "decisions"
    schema_name: str | None = Field(None, alias="schema")  # a PostgreSQL schema; None: the search path's
    columns: DecisionColumns = DecisionColumns()
    # Reward weights per agent type ({immediate, delayed, strategic}); unlisted types use the presets.
    weights: dict[str, dict[str, float]] = Field(default_factory=dict)
    # Prompt formats per agent type: "package.module:attribute" of a DecisionFormat (see formats.py).
    formats: dict[str, str] = Field(default_factory=dict)

    @field_validator("weights")
    @classmethod
    def _weights_are_components(cls, weights: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for agent_type, values in weights.items():
            if set(values) != set(COMPONENTS) or min(values.values()) < 0 or sum(values.values()) <= 0:
                raise ValueError(f"{agent_type}: give non-negative weights for exactly {', '.join(COMPONENTS)}, "
                                 "not all 0")
        return {agent_type.upper(): values for agent_type, values in weights.items()}

    @field_validator("formats")
    @classmethod
    def _upper_keys(cls, formats: dict[str, str]) -> dict[str, str]:
        return {agent_type.upper(): path for agent_type, path in formats.items()}

    def agent_types(self) -> list[str]:
        """The agent types this config knows: the presets and any it adds."""
        return sorted({*PRESETS, *self.weights, *self.formats})

    def weights_for(self, agent_type: str) -> dict[str, float]:
        """The weights of an agent type (the config's, else its preset's)."""
        key = agent_type.upper()
        if key in self.weights:
            return dict(self.weights[key])
        if key in PRESETS:
            return dict(PRESETS[key].weights)
        raise ValueError(f"unknown agent type {agent_type!r}; known: {', '.join(self.agent_types())}")
