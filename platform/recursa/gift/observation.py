"""The gift environment's observation tokens: where each feature sits, for a list of tools.

Token 0 (the profile) holds a type flag, the user's budget and age, occasion and relationship,
per tool a flag "answered" (with per-item tools: the share of candidates answered) and a flag "last
call failed", with a tool budget the share of it spent, then the share of recommendations made and
of steps used. Token 1 + i (candidate i) holds its category, how it matches the user's
interests, per tool a flag "revealed", one slot per field the tools write, and a flag
"recommended". Both kinds of token have the same width: profile block, then candidate block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recursa.gift.config import GiftEnvConfig
from recursa.gift.data import CATEGORIES, OCCASIONS, RELATIONSHIPS
from recursa.gift.toolset import BUILTIN_GIFT_TOOLS, GiftTool, observed_fields, resolve_gift_tools

_MATCH_SLOTS = 3  # interest category, shared interest tag, neither


@dataclass(frozen=True)
class TokenLayout:
    """Feature offsets in a token, for the tools named in `tools` writing `fields`."""

    tools: tuple[str, ...]
    fields: tuple[str, ...]
    budget_slot: bool = False  # the profile holds the share of the tool budget spent

    @classmethod
    def of(cls, tools: Sequence[GiftTool], budget_slot: bool = False) -> TokenLayout:
        """The layout for an environment's tools (and tool budget, if it has one)."""
        return cls(tuple(t.name for t in tools), observed_fields(tools), budget_slot)

    @classmethod
    def of_env(cls, config: GiftEnvConfig) -> TokenLayout:
        """The layout of an environment config."""
        return cls.of(resolve_gift_tools(config.tools), config.tool_budget is not None)

    @property
    def tool_done(self) -> int:
        """First of the profile's "answered" flags, one per tool."""
        return 1 + 2 + len(OCCASIONS) + len(RELATIONSHIPS)

    @property
    def tool_failed(self) -> int:
        """First of the profile's "last call failed" flags, one per tool."""
        return self.tool_done + len(self.tools)

    @property
    def budget_spent(self) -> int:
        """The profile's share of the tool budget spent (only with `budget_slot`)."""
        return self.tool_failed + len(self.tools)

    @property
    def candidate(self) -> int:
        """Where the candidate block starts (after the type flag and the profile block)."""
        return self.tool_failed + len(self.tools) + self.budget_slot + 2

    @property
    def revealed(self) -> int:
        """First of a candidate's "revealed by tool" flags."""
        return self.candidate + len(CATEGORIES) + _MATCH_SLOTS

    def value(self, field: str) -> int:
        """The slot of a field the tools write."""
        return self.revealed + len(self.tools) + self.fields.index(field)

    @property
    def token_dim(self) -> int:
        """Features per token (the last one: the candidate's "recommended" flag)."""
        return self.revealed + len(self.tools) + len(self.fields) + 1


DEFAULT_LAYOUT = TokenLayout.of(list(BUILTIN_GIFT_TOOLS.values()))
