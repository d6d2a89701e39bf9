"""Label unlabelled traces with the learned reward where it is confident, so that people label only
the traces it is unsure of.

A trace whose probability of being good is at least `confidence` is labelled good, one at most
`1 - confidence` bad; the rest stay unlabelled. The store keeps one label per trace, whoever set
it, so the labels set here are returned (and `recursa traces autolabel --out` writes them) to be
reviewed or cleared later.
"""

from __future__ import annotations

from dataclasses import dataclass

from recursa.traces.learned import LearnedReward
from recursa.traces.store import TraceStore


@dataclass(frozen=True)
class AutoLabel:
    """One label set by the learned reward, and the probability it was set from."""

    trace_id: str
    label: bool
    probability: float


def autolabel(store: TraceStore, reward: LearnedReward, confidence: float, *, agent_type: str | None = None,
              limit: int | None = None) -> tuple[list[AutoLabel], int]:
    """Label the unlabelled traces the learned reward is confident about: the labels set, and how
    many traces were left unlabelled."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must lie in (0.5, 1), got {confidence}")
    labels, unsure = [], 0
    for trace in store.unlabelled(limit, agent_type=agent_type):
        probability = reward.probability(trace)
        if probability >= confidence or probability <= 1 - confidence:
            labels.append(AutoLabel(trace.trace_id, probability >= confidence, probability))
            store.set_label(trace.trace_id, probability >= confidence)
        else:
            unsure += 1
    return labels, unsure
