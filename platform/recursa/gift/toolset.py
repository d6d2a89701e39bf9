"""The tools a gift environment offers, named in its config (`env.tools`).

A `GiftTool` is a tool the agent calls on every candidate at once, and the encoder that writes
one item's answer into that candidate's observation token as named fields. The five built-in
tools are known by name; a tool of your own is named by its import path, "package.module:NAME",
and needs no change to the environment: the action space, the observation layout and the policy
grow with the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recursa.core.imports import import_object
from recursa.gift.tools import GiftCatalog
from recursa.tools import Tool, tool

Row = dict[str, Any]


def _no_arguments(user: Row) -> Row:
    return {}


@dataclass(frozen=True)
class GiftTool:
    """A tool over the catalog and how the agent observes its answer.

    `build(catalog)` makes the tool; it is called with ``item_ids`` (the episode's candidates)
    plus `arguments(user)`, and answers with one dict per item id. `encode(answer, user)` turns
    one item's answer into `fields`, each a number in about [-1, 3]. Tools that share a field
    write to the same slot.
    """

    name: str
    build: Callable[[pd.DataFrame], Tool]
    fields: tuple[str, ...]
    encode: Callable[[Row, Row], dict[str, float]]
    arguments: Callable[[Row], Row] = field(default=_no_arguments)


def _catalog_tool(name: str) -> Callable[[pd.DataFrame], Tool]:
    return lambda catalog: tool(getattr(GiftCatalog(catalog), name))


def _price(answer: Row, user: Row) -> dict[str, float]:
    return {"price_ratio": min(answer["best_price"] / user["budget"], 3.0),
            "within_budget": float(answer["best_price"] <= user["budget"])}


_DIRECTIONS = {"rising": 1.0, "stable": 0.0, "falling": -1.0}

BUILTIN_GIFT_TOOLS: dict[str, GiftTool] = {t.name: t for t in (
    GiftTool("price_comparison", _catalog_tool("price_comparison"), ("price_ratio", "within_budget"), _price),
    GiftTool("inventory_check", _catalog_tool("inventory_check"), ("in_stock", "quantity"),
             lambda answer, user: {"in_stock": float(answer["in_stock"]),
                                   "quantity": float(np.log1p(answer["quantity"]) / np.log1p(200))}),
    GiftTool("review_analysis", _catalog_tool("review_analysis"), ("rating", "confidence"),
             lambda answer, user: {"rating": (answer["rating"] - 1.0) / 4.0, "confidence": answer["confidence"]}),
    GiftTool("trend_analysis", _catalog_tool("trend_analysis"), ("trend", "direction"),
             lambda answer, user: {"trend": answer["trend"], "direction": _DIRECTIONS[answer["direction"]]}),
    GiftTool("budget_optimizer", _catalog_tool("budget_optimizer"), ("price_ratio", "within_budget", "value_score"),
             lambda answer, user: {**_price(answer, user), "value_score": answer["value_score"]},
             arguments=lambda user: {"budget": float(user["budget"])}),
)}


def resolve_gift_tool(spec: str) -> GiftTool:
    """A built-in tool by name, or a `GiftTool` by import path; a ValueError naming `spec` otherwise."""
    if spec in BUILTIN_GIFT_TOOLS:
        return BUILTIN_GIFT_TOOLS[spec]
    if ":" not in spec:
        raise ValueError(f"no registered tool {spec!r}: use one of {list(BUILTIN_GIFT_TOOLS)} or 'module:NAME'")
    gift_tool = import_object(spec, "tool")
    if not isinstance(gift_tool, GiftTool):
        raise ValueError(f"tool {spec!r} is not a GiftTool (its type: {type(gift_tool).__name__})")
    return gift_tool


def resolve_gift_tools(specs: Sequence[str]) -> tuple[GiftTool, ...]:
    """The tools of an env config, in order; names must be unique."""
    tools = tuple(resolve_gift_tool(spec) for spec in specs)
    names = [t.name for t in tools]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"tools named more than once: {repeated}")
    return tools


def observed_fields(tools: Sequence[GiftTool]) -> tuple[str, ...]:
    """Every field the tools write, in order of first appearance (one token slot each)."""
    return tuple(dict.fromkeys(name for t in tools for name in t.fields))
