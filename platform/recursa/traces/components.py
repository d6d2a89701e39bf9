"""Component rewards for decision agents: immediate, delayed and strategic signals, weighted per agent.

A decision agent (file this document, rank these tasks, ...) learns from three kinds of evidence
that arrive at different times. Each component is a number in [-1, 1]: -1 clear evidence the
decision was bad, 0 neutral, 1 clear evidence it was good; None while it is not observed yet.

- immediate: the user's reaction when the decision was shown;
- delayed: whether the decision still stood after a while;
- strategic: whether it kept the whole collection in good shape.

The reward is the weighted mean of the observed components, mapped from [-1, 1] to [0, 1].
`PRESETS` holds weights and the signal each component stands for, per agent type.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

COMPONENTS = ("immediate", "delayed", "strategic")


class ComponentScores(BaseModel):
    """The observed components of one decision's reward, each in [-1, 1] or None (not observed yet)."""

    model_config = ConfigDict(extra="forbid")

    immediate: float | None = Field(None, ge=-1, le=1)
    delayed: float | None = Field(None, ge=-1, le=1)
    strategic: float | None = Field(None, ge=-1, le=1)


@dataclass(frozen=True)
class AgentPreset:
    """How much each component counts for an agent type, and which signal each one measures."""

    weights: dict[str, float]
    signals: dict[str, str]


PRESETS: dict[str, AgentPreset] = {
    "FILER": AgentPreset(
        weights={"immediate": 0.5, "delayed": 0.3, "strategic": 0.2},
        signals={"immediate": "the user accepted the suggested folder (1), edited it (0) or rejected it (-1)",
                 "delayed": "the file was not moved again within 30 days (1), or was moved (-1)",
                 "strategic": "the folder tree stays shallow and folders stay small after filing"}),
    "PRIORITIZER": AgentPreset(
        weights={"immediate": 0.3, "delayed": 0.5, "strategic": 0.2},
        signals={"immediate": "the user kept the proposed order (1) or reordered it (-1)",
                 "delayed": "high-ranked items were done before their due dates, low-ranked ones were not missed",
                 "strategic": "overdue items in the backlog decreased over the following weeks"}),
    "LIBRARIAN": AgentPreset(
        weights={"immediate": 0.4, "delayed": 0.3, "strategic": 0.3},
        signals={"immediate": "the user accepted the suggested tags or collection",
                 "delayed": "the tags were still in place, and used in searches, after 30 days",
                 "strategic": "the tag vocabulary stays small (few near-duplicate or single-use tags)"}),
    "STORER": AgentPreset(
        weights={"immediate": 0.3, "delayed": 0.4, "strategic": 0.3},
        signals={"immediate": "the item was stored without an error or a user correction",
                 "delayed": "the item was found where it was stored when next needed",
                 "strategic": "storage stays deduplicated and within its quota"}),
    "RETRIEVER": AgentPreset(
        weights={"immediate": 0.6, "delayed": 0.3, "strategic": 0.1},
        signals={"immediate": "the user opened a returned item (1) or searched again at once (-1)",
                 "delayed": "the user did not have to find the same item by hand later",
                 "strategic": "the share of searches answered within the first results grows"}),
}


@dataclass(frozen=True)
class ComponentReward:
    """A decision's reward in [0, 1], the weighted mean in [-1, 1] it comes from, and the parts used."""

    reward: float
    raw: float
    used: dict[str, float]


class ComponentRewardCalculator:
    """Combines a decision's component scores with the weights of its agent type (its preset's unless
    `weights` are given, which also admits agent types without a preset)."""

    def __init__(self, agent_type: str, weights: dict[str, float] | None = None):
        key = agent_type.upper()
        if weights is None and key not in PRESETS:
            raise ValueError(f"unknown agent type {agent_type!r}; known: {', '.join(PRESETS)}")
        self.agent_type = key
        self.weights = dict(weights if weights is not None else PRESETS[key].weights)
        if set(self.weights) != set(COMPONENTS) or min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0:
            raise ValueError(f"weights need non-negative values for exactly {COMPONENTS}, not all 0: {self.weights}")

    def compute(self, scores: ComponentScores) -> ComponentReward:
        """The reward from the observed components; raises ValueError when none is observed."""
        observed = {name: getattr(scores, name) for name in COMPONENTS if getattr(scores, name) is not None}
        total_weight = sum(self.weights[name] for name in observed)
        if total_weight == 0:
            raise ValueError(f"{self.agent_type}: no weighted component observed yet")
        raw = sum(self.weights[name] * value for name, value in observed.items()) / total_weight
        return ComponentReward(reward=(raw + 1) / 2, raw=raw, used=observed)
