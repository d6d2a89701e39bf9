"""Component rewards of the application's decisions, stored in recursa's table with the weights used.

A decision is scored once its first outcome component is observed. Running again is idempotent: it
scores the decisions without a reward, and rescores those whose observed components changed since
(a delayed outcome arrived). Rewards computed with other weights are kept until `recompute`, so that
a weight change is a deliberate step and the stored weights always say how a reward was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from recursa.decisions.source import Decision, DecisionSource
from recursa.decisions.tables import create_tables, rewards
from recursa.traces.components import ComponentRewardCalculator

_CHUNK = 500  # ids per IN (...) list, well below SQLite's limit on bound parameters


@dataclass(frozen=True)
class RewardRun:
    """What one calculation did."""

    computed: int  # rewards written (new or rescored)
    unchanged: int  # already up to date
    unobserved: int  # no outcome component observed yet
    other_weights: int  # stored with weights other than the current ones, left for `recompute`


def stored_rewards(engine: sa.Engine, agent_type: str) -> dict[str, dict[str, Any]]:
    """decision id -> its stored reward row (reward, raw, components, weights, computed_at)."""
    create_tables(engine)
    statement = sa.select(rewards).where(rewards.c.agent_type == agent_type.upper())
    with engine.connect() as conn:
        return {row.decision_id: dict(row._mapping) for row in conn.execute(statement)}


def calculate_rewards(source: DecisionSource, agent_type: str, *, pending_only: bool = False,
                      recompute: bool = False) -> RewardRun:
    """Score the decisions of `agent_type` that need it (see the module's docstring).

    `pending_only`: only decisions without any reward; `recompute`: every observed decision, with the
    current weights.
    """
    agent_type = agent_type.upper()
    weights = source.config.weights_for(agent_type)
    calculator = ComponentRewardCalculator(agent_type, weights)
    stored = stored_rewards(source.engine, agent_type)
    rows, unchanged, unobserved, other_weights = [], 0, 0, 0
    now = datetime.now(timezone.utc)
    for decision in source.read(agent_type):
        if not decision.observed:
            unobserved += 1
            continue
        previous = stored.get(decision.id)
        up_to_date = pending_only or (previous is not None and previous["components"] == decision.observed)
        if previous is not None and not recompute and up_to_date:
            unchanged += 1
            other_weights += previous["weights"] != weights
            continue
        rows.append(_reward_row(calculator, decision, agent_type, weights, now))
    _replace(source.engine, rows)
    return RewardRun(computed=len(rows), unchanged=unchanged, unobserved=unobserved, other_weights=other_weights)


def _reward_row(calculator: ComponentRewardCalculator, decision: Decision, agent_type: str,
                weights: dict[str, float], now: datetime) -> dict[str, Any]:
    result = calculator.compute(decision.scores)
    return {"decision_id": decision.id, "agent_type": agent_type, "reward": result.reward, "raw": result.raw,
            "components": result.used, "weights": weights, "computed_at": now}


def _replace(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    """Write the rows in one transaction, replacing any stored reward of the same decisions."""
    if not rows:
        return
    ids = [row["decision_id"] for row in rows]
    with engine.begin() as conn:
        for start in range(0, len(ids), _CHUNK):
            conn.execute(sa.delete(rewards).where(rewards.c.decision_id.in_(ids[start:start + _CHUNK])))
        conn.execute(sa.insert(rewards), rows)


def reward_stats(source: DecisionSource, agent_type: str) -> dict[str, Any]:
    """Per agent type: decisions, rewarded, awaiting a reward, unobserved, with feedback, mean reward,
    and the decisions and mean reward per model version."""
    stored = stored_rewards(source.engine, agent_type)
    decisions = list(source.read(agent_type))
    rewarded = [stored[d.id]["reward"] for d in decisions if d.id in stored]
    by_version: dict[str, list[float | None]] = {}
    for decision in decisions:
        reward = stored[decision.id]["reward"] if decision.id in stored else None
        by_version.setdefault(decision.model_version or "-", []).append(reward)
    return {
        "agent_type": agent_type.upper(),
        "decisions": len(decisions),
        "rewarded": len(rewarded),
        "pending": sum(1 for d in decisions if d.observed and d.id not in stored),
        "unobserved": sum(1 for d in decisions if not d.observed),
        "with_feedback": sum(1 for d in decisions if d.feedback),
        "mean_reward": _mean(rewarded),
        "versions": {version: {"decisions": len(values), "mean_reward": _mean([v for v in values if v is not None])}
                     for version, values in sorted(by_version.items())},
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
