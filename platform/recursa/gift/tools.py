"""The five gift-shopping tools, answering from a product catalog."""

from dataclasses import replace
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field

from recursa.tools.base import Tool, tool

GIFT_TOOL_NAMES = (
    "price_comparison",
    "inventory_check",
    "review_analysis",
    "trend_analysis",
    "budget_optimizer",
)
RETAILERS = ("shopmart", "bazaar", "quickbuy")
CATALOG_COLUMNS = (
    "name", "category", "tags", "price", "retailer_prices",
    "rating", "review_count", "stock", "trend", "trend_delta",
)
MAX_ITEMS_PER_CALL = 32
CONFIDENT_REVIEW_COUNT = 500
TREND_THRESHOLD = 0.2

ItemIds = Annotated[
    list[int],
    Field(min_length=1, max_length=MAX_ITEMS_PER_CALL, description="Catalog item ids to look up."),
]
Budget = Annotated[float, Field(gt=0, description="Spending limit in USD.")]


class GiftCatalog:
    """A read-only snapshot of a catalog DataFrame, held as arrays for fast lookups.

    The catalog is indexed by integer `item_id`; see `CATALOG_COLUMNS`. Later
    changes to the DataFrame are not seen. Every method raises ValueError on
    unknown ids and returns a dict keyed by item id, with plain Python values.
    """

    def __init__(self, catalog: pd.DataFrame) -> None:
        missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
        if missing:
            raise ValueError(f"catalog is missing columns {missing}")
        if not catalog.index.is_unique:
            raise ValueError("catalog index (item_id) has duplicates")
        retailer_prices = np.array(catalog["retailer_prices"].tolist(), dtype=float)
        if retailer_prices.shape != (len(catalog), len(RETAILERS)):
            raise ValueError(f"retailer_prices must hold {len(RETAILERS)} prices per item")

        self._position = {int(item): pos for pos, item in enumerate(catalog.index)}
        cheapest = retailer_prices.argmin(axis=1)
        self._best_price = retailer_prices[np.arange(len(catalog)), cheapest]
        self._retailer = np.array(RETAILERS)[cheapest]
        self._list_price = catalog["price"].to_numpy(dtype=float)
        self._stock = catalog["stock"].to_numpy(dtype=int)
        self._rating = catalog["rating"].to_numpy(dtype=float)
        self._reviews = catalog["review_count"].to_numpy(dtype=int)
        self._confidence = np.minimum(
            1.0, np.log1p(self._reviews) / np.log1p(CONFIDENT_REVIEW_COUNT)
        )
        self._trend = catalog["trend"].to_numpy(dtype=float)
        delta = catalog["trend_delta"].to_numpy(dtype=float)
        self._direction = np.where(
            delta > TREND_THRESHOLD, "rising",
            np.where(delta < -TREND_THRESHOLD, "falling", "stable"),
        )

    def price_comparison(self, item_ids: ItemIds) -> dict[int, dict[str, Any]]:
        """Best price across retailers (shopmart, bazaar, quickbuy), where, and list price."""
        ids, pos = self._lookup(item_ids)
        return _rows(
            ids,
            best_price=self._best_price[pos],
            retailer=self._retailer[pos],
            list_price=self._list_price[pos],
        )

    def inventory_check(self, item_ids: ItemIds) -> dict[int, dict[str, Any]]:
        """Check whether items are in stock and how many units are available."""
        ids, pos = self._lookup(item_ids)
        stock = self._stock[pos]
        return _rows(ids, in_stock=stock > 0, quantity=stock)

    def review_analysis(self, item_ids: ItemIds) -> dict[int, dict[str, Any]]:
        """Average rating (1-5), number of reviews, and confidence in the rating (0-1)."""
        ids, pos = self._lookup(item_ids)
        return _rows(
            ids,
            rating=self._rating[pos],
            review_count=self._reviews[pos],
            confidence=self._confidence[pos],
        )

    def trend_analysis(self, item_ids: ItemIds) -> dict[int, dict[str, Any]]:
        """Report current popularity (0-1) and whether it is rising, stable or falling."""
        ids, pos = self._lookup(item_ids)
        return _rows(ids, trend=self._trend[pos], direction=self._direction[pos])

    def budget_optimizer(self, item_ids: ItemIds, budget: Budget) -> dict[int, dict[str, Any]]:
        """Best price, whether it fits the budget, and value score (0-1, share of budget left)."""
        ids, pos = self._lookup(item_ids)
        best = self._best_price[pos]
        return _rows(
            ids,
            best_price=best,
            within_budget=best <= budget,
            value_score=np.maximum(0.0, 1.0 - best / budget),
        )

    def _lookup(self, item_ids: list[int]) -> tuple[list[int], np.ndarray]:
        try:
            return item_ids, np.array([self._position[i] for i in item_ids], dtype=np.intp)
        except KeyError:
            unknown = sorted({i for i in item_ids if i not in self._position})
            raise ValueError(f"unknown item ids: {unknown}") from None


def gift_tools(
    catalog: pd.DataFrame, failure_rate: float = 0.0, seed: int | np.random.Generator = 0
) -> list[Tool]:
    """The five gift tools over `catalog`, in `GIFT_TOOL_NAMES` order.

    With `failure_rate` > 0 each call fails with that probability (RuntimeError),
    as an unreliable upstream API would. With an int seed each tool draws from its own
    generator; with a Generator all tools share it (the caller can then reseed it).
    """
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate must be in [0, 1], got {failure_rate}")
    shop = GiftCatalog(catalog)
    tools = [tool(getattr(shop, name)) for name in GIFT_TOOL_NAMES]
    if failure_rate == 0.0:
        return tools
    if isinstance(seed, np.random.Generator):
        rngs = [seed] * len(tools)
    else:
        rngs = np.random.default_rng(seed).spawn(len(tools))
    return [unreliable(t, failure_rate, rng) for t, rng in zip(tools, rngs)]


def unreliable(t: Tool, failure_rate: float, rng: np.random.Generator) -> Tool:
    """`t`, failing with probability `failure_rate` (RuntimeError) before doing any work, as an
    unreliable upstream API would; `t` itself when the rate is 0."""
    if failure_rate == 0.0:
        return t
    fn, name = t.fn, t.name

    def call(**kwargs: Any) -> Any:
        if rng.random() < failure_rate:
            raise RuntimeError(f"upstream {name} service unavailable")
        return fn(**kwargs)

    return replace(t, fn=call)


def _rows(ids: list[int], **columns: np.ndarray) -> dict[int, dict[str, Any]]:
    """Per-item dicts from equally long column arrays, as plain Python values."""
    values = [column.tolist() for column in columns.values()]
    return {item: dict(zip(columns, row)) for item, row in zip(ids, zip(*values))}
