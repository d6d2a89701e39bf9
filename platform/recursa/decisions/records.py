"""Training records from rewarded decisions, in the layouts `recursa train llm` reads
(`recursa.llm.datasets`): prompts written by the agent type's format, the decision as completion.

- sft: `prompt, completion, weight` (the reward in [0, 1])
- kto: `prompt, completion, label` (reward at least the threshold)
- dpo: `prompt, chosen, rejected` (per prompt, each good decision against each bad one)
- grpo: `prompt, completions, rewards` (the decisions already made on one prompt, as a group)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from recursa.decisions.formats import DecisionFormat
from recursa.decisions.rewards import stored_rewards
from recursa.decisions.source import Decision, DecisionSource
from recursa.llm.datasets import dpo_records

RecordFormat = Literal["sft", "kto", "dpo", "grpo"]
RECORD_FORMATS: tuple[RecordFormat, ...] = ("sft", "kto", "dpo", "grpo")


@dataclass(frozen=True)
class ExportFilters:
    """Which rewarded decisions become records."""

    min_reward: float | None = None  # rewards below this are left out
    with_feedback: bool = False  # only decisions with user feedback
    limit: int | None = None  # the most recent decisions, at most this many
    threshold: float = 0.5  # kto, dpo: a reward at least this is a good decision


def rewarded_decisions(source: DecisionSource, agent_type: str,
                       filters: ExportFilters) -> list[tuple[Decision, float]]:
    """The decisions with a stored reward that pass the filters, oldest first, with their rewards."""
    stored = stored_rewards(source.engine, agent_type)
    kept = [(decision, stored[decision.id]["reward"]) for decision in source.read(agent_type)
            if decision.id in stored
            and (filters.min_reward is None or stored[decision.id]["reward"] >= filters.min_reward)
            and (not filters.with_feedback or decision.feedback)]
    return kept[-filters.limit:] if filters.limit else kept


def build_records(decisions: list[tuple[Decision, float]], fmt: RecordFormat, prompt_format: DecisionFormat,
                  threshold: float = 0.5) -> list[dict]:
    """The records of one format from (decision, reward) pairs."""
    pairs = [(prompt_format.prompt(d.state), prompt_format.completion(d.decision), reward) for d, reward in decisions]
    if fmt == "sft":
        return [{"prompt": p, "completion": c, "weight": reward} for p, c, reward in pairs]
    labelled = [{"prompt": p, "completion": c, "label": reward >= threshold} for p, c, reward in pairs]
    if fmt == "kto":
        return labelled
    if fmt == "dpo":
        return dpo_records(labelled)
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for prompt, completion, reward in pairs:  # a completion made twice on one prompt counts once, the latest
        groups[prompt][completion] = reward
    return [{"prompt": prompt, "completions": list(group), "rewards": list(group.values())}
            for prompt, group in groups.items() if len(group) > 1]
