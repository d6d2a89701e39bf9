"""Gift data: seeded generation, column contracts, split hygiene, Parquet round trip, `recursa data gift`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recursa.cli import main
from recursa.gift.data import (
    CATEGORIES,
    OCCASIONS,
    PREFERENCES,
    RELATIONSHIPS,
    RETAILERS,
    generate_gift_data,
    read_gift_data,
    write_gift_data,
)
from recursa.gift.tools import CATALOG_COLUMNS

USER_COLUMNS = (
    "user_id", "age", "interests", "interest_tags", "budget", "occasion", "relationship",
    *PREFERENCES, "split",
)


@pytest.fixture(scope="module")
def data():
    return generate_gift_data()  # the defaults the environment uses


def test_same_seed_gives_identical_data(data):
    again = generate_gift_data()
    pd.testing.assert_frame_equal(data.catalog, again.catalog)
    pd.testing.assert_frame_equal(data.users, again.users)


def test_different_seed_gives_different_data(data):
    other = generate_gift_data(seed=1)
    assert not data.catalog.equals(other.catalog)
    assert not data.users.equals(other.users)
    # not a relabelling: the numbers themselves differ
    assert not np.allclose(data.catalog["price"].to_numpy(), other.catalog["price"].to_numpy())
    assert not np.allclose(data.users["budget"].to_numpy(), other.users["budget"].to_numpy())


def test_catalog_columns_and_ranges(data):
    catalog = data.catalog
    assert len(catalog) >= 500
    assert catalog.index.name == "item_id"
    assert catalog.index.is_unique
    assert set(CATALOG_COLUMNS) <= set(catalog.columns)
    assert catalog["category"].isin(CATEGORIES).all()
    assert (catalog["price"] > 0).all()
    prices = np.array(catalog["retailer_prices"].tolist(), dtype=float)
    assert prices.shape == (len(catalog), len(RETAILERS))
    assert (prices > 0).all()
    assert catalog["rating"].between(1.0, 5.0).all()
    assert (catalog["review_count"] >= 0).all()
    assert (catalog["stock"] >= 0).all()
    assert catalog["trend"].between(0.0, 1.0).all()
    assert catalog["trend_delta"].between(-1.0, 1.0).all()
    assert catalog["tags"].map(len).eq(2).all()
    # both in-stock and sold-out items exist, otherwise inventory_check would be worthless
    assert 0 < (catalog["stock"] == 0).mean() < 1


def test_user_columns_and_ranges(data):
    users = data.users
    assert set(USER_COLUMNS) <= set(users.columns)
    assert users["user_id"].is_unique
    assert (users["budget"] > 0).all()
    assert users["age"].between(1, 120).all()
    assert users["occasion"].isin(OCCASIONS).all()
    assert users["relationship"].isin(RELATIONSHIPS).all()
    assert users["interests"].map(lambda xs: set(xs) <= set(CATEGORIES)).all()


def test_hidden_preferences_are_weights_summing_to_one(data):
    weights = data.users[list(PREFERENCES)].to_numpy()
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)


def test_train_and_test_users_are_disjoint_and_non_empty(data):
    assert set(data.users["split"]) == {"train", "test"}
    train, test = data.split("train"), data.split("test")
    assert len(train) > 0 and len(test) > 0
    assert set(train["user_id"]).isdisjoint(test["user_id"])
    assert len(train) + len(test) == len(data.users)
    assert 0.1 < len(test) / len(data.users) < 0.3  # about 20% held out


def test_write_then_read_round_trips(tmp_path):
    data = generate_gift_data(num_items=80, num_users=50, seed=7)
    paths = write_gift_data(data, tmp_path / "gift")
    assert {p.name for p in paths.values()} == {"catalog.parquet", "users_train.parquet", "users_test.parquet"}
    assert all(p.is_file() for p in paths.values())
    back = read_gift_data(tmp_path / "gift")
    pd.testing.assert_frame_equal(back.catalog, data.catalog)
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(back.split(split), data.split(split))
    # list columns come back as Python lists, as the tools and the env expect
    assert isinstance(back.catalog["tags"].iloc[0], list)
    assert isinstance(back.users["interests"].iloc[0], list)


def test_cli_data_gift_writes_the_three_parquet_files(tmp_path):
    out = tmp_path / "data"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "gift", "--out", str(out), "--items", "60", "--users", "40", "--seed", "3"])
    assert exit_info.value.code in (0, None)
    assert sorted(p.name for p in out.iterdir()) == [
        "catalog.parquet", "users_test.parquet", "users_train.parquet",
    ]
    back = read_gift_data(out)
    expected = generate_gift_data(num_items=60, num_users=40, seed=3)
    pd.testing.assert_frame_equal(back.catalog, expected.catalog)
    pd.testing.assert_frame_equal(back.split("test"), expected.split("test"))
