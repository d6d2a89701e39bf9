"""Seeded synthetic gift catalog and users, written as Parquet.

The catalog is what the gift tools look up; the users carry visible profiles and hidden
preferences (how much they weigh quality, trend and value). Hidden preferences depend on the
visible profile plus per-user noise, so a policy can learn them only approximately.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = (
    "books", "electronics", "kitchen", "outdoors", "fashion", "beauty",
    "toys", "games", "music", "art", "sports", "home",
)
TAGS_BY_CATEGORY = {
    "books": ("reading", "fiction", "learning", "cooking"),
    "electronics": ("gadgets", "audio", "photography", "gaming"),
    "kitchen": ("cooking", "coffee", "baking", "wine"),
    "outdoors": ("hiking", "camping", "gardening", "fitness"),
    "fashion": ("jewelry", "style", "watches", "accessories"),
    "beauty": ("skincare", "wellness", "fragrance", "style"),
    "toys": ("kids", "learning", "puzzles", "crafts"),
    "games": ("gaming", "puzzles", "party", "strategy"),
    "music": ("audio", "vinyl", "instruments", "party"),
    "art": ("crafts", "painting", "photography", "decor"),
    "sports": ("fitness", "running", "cycling", "hiking"),
    "home": ("decor", "wellness", "gardening", "coffee"),
}
OCCASIONS = ("birthday", "wedding", "anniversary", "holiday", "graduation", "thank_you")
RELATIONSHIPS = ("partner", "parent", "child", "friend", "colleague", "sibling")
RETAILERS = ("shopmart", "bazaar", "quickbuy")
PREFERENCES = ("w_quality", "w_trend", "w_value")

# Base preference weights (quality, trend, value) by occasion; age and relationship shift them.
_OCCASION_PREFS = {
    "birthday": (0.3, 0.5, 0.2),
    "wedding": (0.6, 0.1, 0.3),
    "anniversary": (0.7, 0.2, 0.1),
    "holiday": (0.3, 0.3, 0.4),
    "graduation": (0.4, 0.4, 0.2),
    "thank_you": (0.2, 0.1, 0.7),
}


@dataclass(frozen=True)
class GiftData:
    """A generated catalog and its train/test users."""

    catalog: pd.DataFrame
    users: pd.DataFrame

    def split(self, name: str) -> pd.DataFrame:
        """Users of one split ("train" or "test")."""
        return self.users[self.users["split"] == name].reset_index(drop=True)


def generate_catalog(num_items: int = 600, seed: int = 0) -> pd.DataFrame:
    """Items with category, tags, prices at three retailers, rating, reviews, stock and trend."""
    rng = np.random.default_rng(seed)
    categories = rng.choice(len(CATEGORIES), size=num_items)
    rows = []
    for item_id, cat_index in enumerate(categories):
        category = CATEGORIES[int(cat_index)]
        tags = sorted(rng.choice(TAGS_BY_CATEGORY[category], size=2, replace=False).tolist())
        price = float(np.round(np.exp(rng.uniform(np.log(8), np.log(400))), 2))
        retailer_prices = np.round(price * rng.uniform(0.8, 1.15, size=len(RETAILERS)), 2)
        trend = float(rng.beta(2, 2))
        rows.append({
            "item_id": item_id,
            "name": f"{tags[0]} {category} #{item_id}",
            "category": category,
            "tags": tags,
            "price": price,
            "retailer_prices": retailer_prices.tolist(),
            "rating": float(np.round(np.clip(rng.normal(3.8, 0.8), 1.0, 5.0), 1)),
            "review_count": int(rng.lognormal(3.5, 1.5)),
            "stock": 0 if rng.random() < 0.3 else int(rng.integers(1, 200)),
            "trend": trend,
            "trend_delta": float(np.clip(rng.normal(0, 0.4), -1, 1)),
        })
    return pd.DataFrame(rows).set_index("item_id")


def _hidden_preferences(rng: np.random.Generator, occasion: str, age: int, relationship: str) -> np.ndarray:
    base = np.array(_OCCASION_PREFS[occasion])
    if age < 30:
        base = base + np.array([0.0, 0.25, 0.0])
    elif age > 55:
        base = base + np.array([0.2, -0.1, 0.0])
    if relationship in ("colleague", "friend"):
        base = base + np.array([0.0, 0.0, 0.2])
    base = np.clip(base, 0.05, None)
    return rng.dirichlet(base / base.sum() * 40.0)


def generate_users(num_users: int = 2000, test_fraction: float = 0.2, seed: int = 1) -> pd.DataFrame:
    """Users with a visible profile, hidden preference weights and a disjoint train/test split."""
    rng = np.random.default_rng(seed)
    all_tags = sorted({tag for tags in TAGS_BY_CATEGORY.values() for tag in tags})
    rows = []
    for user_id in range(num_users):
        occasion = str(rng.choice(OCCASIONS))
        relationship = str(rng.choice(RELATIONSHIPS))
        age = int(rng.integers(8, 80))
        interests = sorted(rng.choice(CATEGORIES, size=2, replace=False).tolist())
        prefs = _hidden_preferences(rng, occasion, age, relationship)
        rows.append({
            "user_id": user_id,
            "age": age,
            "interests": interests,
            "interest_tags": sorted(rng.choice(all_tags, size=2, replace=False).tolist()),
            "budget": float(np.round(np.exp(rng.uniform(np.log(25), np.log(300))), 0)),
            "occasion": occasion,
            "relationship": relationship,
            **dict(zip(PREFERENCES, prefs.tolist())),
        })
    users = pd.DataFrame(rows)
    test_ids = rng.choice(num_users, size=round(num_users * test_fraction), replace=False)
    users["split"] = np.where(users["user_id"].isin(test_ids), "test", "train")
    return users


def generate_gift_data(num_items: int = 600, num_users: int = 2000, seed: int = 0) -> GiftData:
    """Catalog and users from one seed; the same seed always gives the same data."""
    return GiftData(
        catalog=generate_catalog(num_items, seed=seed),
        users=generate_users(num_users, seed=seed + 1),
    )


def write_gift_data(data: GiftData, out_dir: str | Path) -> dict[str, Path]:
    """Write catalog.parquet, users_train.parquet and users_test.parquet; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "catalog": out / "catalog.parquet",
        "train": out / "users_train.parquet",
        "test": out / "users_test.parquet",
    }
    data.catalog.to_parquet(paths["catalog"])
    data.split("train").to_parquet(paths["train"], index=False)
    data.split("test").to_parquet(paths["test"], index=False)
    return paths


def read_gift_data(data_dir: str | Path) -> GiftData:
    """Read what `write_gift_data` wrote."""
    root = Path(data_dir)
    users = pd.concat([pd.read_parquet(root / "users_train.parquet"), pd.read_parquet(root / "users_test.parquet")])
    catalog = pd.read_parquet(root / "catalog.parquet")
    for column in ("tags", "retailer_prices"):
        catalog[column] = catalog[column].map(list)
    for column in ("interests", "interest_tags"):
        users[column] = users[column].map(list)
    return GiftData(catalog=catalog, users=users.sort_values("user_id", ignore_index=True))
