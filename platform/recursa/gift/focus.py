"""The hard preset's environment options (GiftEnvConfig.per_item_tools, tool_budget, tool_noise,
hidden_preferences): which items to inspect becomes the agent's decision.

Per-item tools fit the set-based pointer policy: rather than one action per tool on the profile
token, every candidate token carries 1 + J actions, "recommend item i" and "call tool j on item i",
so the policy's item head emits 1 + J logits per candidate and still no parameter depends on K.
Hidden preferences are drawn apart from the visible profile and weigh more in the utility; only
what reviews and trends say about an item ("how people like this user rate it") shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recursa.gift.config import GiftEnvConfig
from recursa.gift.data import PREFERENCES

# The share of an item's utility that interest match alone gives; quality, trend and value weighed by
# the user's preferences decide the rest. Hidden preferences matter more.
MATCH_FLOOR = 0.3
HIDDEN_MATCH_FLOOR = 0.1
# Dirichlet concentration of hidden preferences: below 1, most users care mainly about one thing.
_HIDDEN_CONCENTRATION = 0.7
# The fields reviews and trends write, and the preference that scales each for the user.
_PEER_FIELDS = {"rating": "w_quality", "trend": "w_trend"}
# Flags are reported exactly; noise blurs only the numbers tools reveal.
EXACT_FIELDS = frozenset({"in_stock", "within_budget", "direction"})


@dataclass(frozen=True)
class ActionLayout:
    """How an environment's actions split: `num_global_actions` read from the profile token (finish,
    then the tools called on every candidate, none with per-item tools), then `actions_per_item` per
    candidate (recommend, then with per-item tools one call per tool)."""

    num_global_actions: int
    actions_per_item: int

    def num_actions(self, num_candidates: int) -> int:
        """Actions of an episode with `num_candidates` candidates."""
        return self.num_global_actions + num_candidates * self.actions_per_item


def action_layout(config: GiftEnvConfig) -> ActionLayout:
    """The action layout of an environment config."""
    tools = len(config.tools)
    return ActionLayout(1, 1 + tools) if config.per_item_tools else ActionLayout(1 + tools, 1)


def with_hidden_preferences(user: dict, data_seed: int) -> dict:
    """The user with preference weights drawn apart from the profile (one draw per user and data
    seed, so a user always has the same ones)."""
    rng = np.random.default_rng([data_seed, int(user["user_id"]), 16])
    weights = rng.dirichlet([_HIDDEN_CONCENTRATION] * len(PREFERENCES))
    return {**user, **dict(zip(PREFERENCES, weights.tolist()))}


def peer_view(values: dict[str, float], user: dict) -> dict[str, float]:
    """What reviews and trends say to this user: "rating" and "trend" scaled by 3 x the weight the
    user gives them (1 at equal weights), the only place the hidden preferences show."""
    return {field: value * 3.0 * user[_PEER_FIELDS[field]] if field in _PEER_FIELDS else value
            for field, value in values.items()}


def noisy(values: dict[str, float], noise: float, rng: np.random.Generator) -> dict[str, float]:
    """Revealed numbers with Gaussian noise of standard deviation `noise`; flags stay exact."""
    return {field: value if field in EXACT_FIELDS else value + noise * float(rng.standard_normal())
            for field, value in values.items()}
