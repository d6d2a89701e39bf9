"""A sixth tool for the gift agent, added without editing the environment: delivery times.

Name it in the environment's tools, beside the five built-in ones, and train as usual:

    env:
      tools: [price_comparison, inventory_check, review_analysis, trend_analysis, budget_optimizer,
              "gift_shipping_tool:SHIPPING_ESTIMATE"]

    PYTHONPATH=examples recursa train gift --config my_gift.yaml

The policy gets one more action (call the tool on every candidate) and four more features per
token: "answered" and "last call failed" in the profile's, "revealed" and `delivery_days` in
each candidate's. On a cluster, ship the module with the
job (`runtime_env: {py_modules: [...]}` or `working_dir`) so that every env runner can import it.
"""

from __future__ import annotations

import pandas as pd

from recursa.gift.toolset import GiftTool
from recursa.tools import Tool, tool

SLOW_DELIVERY_DAYS = 21  # restocked first


def shipping_estimate_over(catalog: pd.DataFrame) -> Tool:
    """The tool over the environment's catalog: in-stock items ship in 2 to 6 days."""
    stock = catalog["stock"].to_dict()

    @tool
    def shipping_estimate(item_ids: list[int]) -> dict[int, dict[str, int]]:
        """Days to deliver each item."""
        return {item: {"days": 2 + item % 5 if stock[item] > 0 else SLOW_DELIVERY_DAYS} for item in item_ids}

    return shipping_estimate


SHIPPING_ESTIMATE = GiftTool(
    name="shipping_estimate",
    build=shipping_estimate_over,
    fields=("delivery_days",),
    encode=lambda answer, user: {"delivery_days": answer["days"] / 7.0},
)
