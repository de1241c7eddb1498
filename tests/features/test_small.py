"""The plain-Python features for small batches equal the polars features, frame for frame."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retain.features.customers import customer_features_lazy, observed_channels
from retain.features.products import customer_product_features_lazy
from retain.features.small import (
    customer_features_small,
    customer_product_features_small,
    small_features,
)
from tests.conftest import make_transactions

AS_OF = date(2026, 7, 1)
CHANNELS = ["app", "store", "web"]


def assert_same_features(transactions: pl.DataFrame, as_of: date, channels=CHANNELS) -> None:
    """Columns, dtypes, row order, nulls exactly; floats to 1e-9."""
    tolerance = {"check_exact": False, "rel_tol": 0, "abs_tol": 1e-9}
    assert_frame_equal(customer_features_small(transactions, as_of, channels),
                       customer_features_lazy(transactions, as_of, channels).collect(),
                       **tolerance)
    assert_frame_equal(customer_product_features_small(transactions, as_of),
                       customer_product_features_lazy(transactions, as_of).collect(),
                       **tolerance)


@pytest.mark.parametrize("days_before", [0, 45, 200])
def test_equal_to_polars_on_the_simulated_shop(shop, shop_history, days_before):
    as_of = shop.as_of - timedelta(days=days_before)
    ids = shop_history["customer_id"].unique().sort().head(600)
    transactions = shop_history.filter(pl.col("customer_id").is_in(ids.implode()))
    assert_same_features(transactions, as_of, observed_channels(shop_history))


def test_equal_to_polars_one_customer_at_a_time(shop, shop_history):
    channels = observed_channels(shop_history)
    for customer_id in shop_history["customer_id"].unique().sort().head(40):
        one = shop_history.filter(pl.col("customer_id") == customer_id)
        assert_same_features(one, shop.as_of, channels)


def test_one_call_gives_both_frames(shop, shop_history):
    few = shop_history.filter(pl.col("customer_id").is_in(
        shop_history["customer_id"].unique().sort().head(5).implode()))
    customers, products = small_features(few, shop.as_of, observed_channels(shop_history))
    assert_frame_equal(customers, customer_features_small(few, shop.as_of,
                                                          observed_channels(shop_history)))
    assert_frame_equal(products, customer_product_features_small(few, shop.as_of))


EDGE_CASES = {
    "one order": [("A", "o1", "2026-05-02 10:00", 20.0, "p1", 2, "web")],
    "returns net an order to zero (still a purchase)": [
        ("A", "o1", "2026-03-01", 30.0, "p1", 1, "web"),
        ("A", "o1", "2026-03-04", -30.0, "p1", 1, "web"),
        ("A", "o2", "2026-05-01", 12.0, "p2", 3, "app"),
    ],
    "partial return and a net refund order": [
        ("A", "o1", "2026-01-10", 50.0, "p1", 2, "web"),
        ("A", "o1", "2026-01-10", -10.0, "p1", 1, "web"),
        ("A", "o2", "2026-02-10", 5.0, "p2", 1, "store"),
        ("A", "o2", "2026-02-11", -25.0, "p3", 1, "store"),
        ("A", "o3", "2026-06-20", 40.0, "p1", 1, None),
    ],
    "refunds only": [
        ("A", "o1", "2026-02-01", -15.0, "p1", 1, "web"),
        ("A", "o2", "2026-03-01", 10.0, "p2", 1, "web"),
        ("A", "o2", "2026-03-01", -30.0, "p2", 1, "web"),
        ("B", "o3", "2026-04-01", 25.0, "p1", 1, "app"),
    ],
    "missing product_id and channel": [
        ("A", "o1", "2026-01-05", 10.0, None, 1, None),
        ("A", "o2", "2026-02-05", 11.0, None, None, None),
        ("A", "o3", "2026-04-05", 12.0, "p1", 2, None),
        ("B", "o4", "2026-04-05", 9.0, None, 1, "web"),
    ],
    "several orders on one day": [
        ("A", "o1", "2026-04-01 09:00", 10.0, "p1", 1, "web"),
        ("A", "o2", "2026-04-01 18:00", 15.0, "p1", 1, "app"),
        ("A", "o3", "2026-04-01 20:00", 5.0, "p2", 1, "app"),
        ("A", "o4", "2026-05-01", 7.0, "p1", 1, "web"),
        ("A", "o5", "2026-06-01", 8.0, "p1", 1, "store"),
    ],
    "an order's channel is its first given": [
        ("A", "o1", "2026-04-01", 10.0, "p1", 1, None),
        ("A", "o1", "2026-04-01", 10.0, "p2", 1, "store"),
        ("A", "o1", "2026-04-01", 10.0, "p3", 1, "web"),
    ],
    "ties in products and channels go to the first name": [
        ("A", "o1", "2026-02-01", 10.0, "p2", 1, "web"),
        ("A", "o2", "2026-03-01", 10.0, "p1", 1, "app"),
        ("A", "o3", "2026-04-01", 10.0, "p3", 1, "kiosk"),
    ],
    "lines on and after as_of are left out": [
        ("A", "o1", "2026-06-30 23:59", 10.0, "p1", 1, "web"),
        ("A", "o2", "2026-07-01 00:00", 99.0, "p1", 1, "web"),
        ("B", "o3", "2026-07-02", 15.0, "p2", 1, "app"),
    ],
    "a lengthening cadence over 90-day windows": [
        ("A", f"o{i}", day, 10.0 + i, "p1", 1, "web")
        for i, day in enumerate(["2025-10-01", "2025-11-01", "2025-12-01", "2026-01-01",
                                 "2026-03-01", "2026-06-15"])
    ],
    "half-day median rounds half to even": [
        ("A", "o1", "2026-01-01", 10.0, "p1", 1, "web"),
        ("A", "o2", "2026-01-02", 10.0, "p1", 1, "web"),
        ("A", "o3", "2026-01-04", 10.0, "p1", 1, "web"),
        ("A", "o4", "2026-01-09", 10.0, "p1", 1, "web"),
        ("B", "o5", "2026-01-01", 10.0, "p1", 1, "web"),
        ("B", "o6", "2026-01-04", 10.0, "p1", 1, "web"),
        ("B", "o7", "2026-01-06", 10.0, "p1", 1, "web"),
        ("B", "o8", "2026-01-08", 10.0, "p1", 1, "web"),
    ],
    "lines without an order id form one order": [
        ("A", None, "2026-03-01", 10.0, "p1", 1, "web"),
        ("A", None, "2026-05-01", 20.0, "p2", 1, "app"),
        ("A", "o1", "2026-06-01", 5.0, "p2", 1, "app"),
    ],
}


@pytest.mark.parametrize("rows", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_equal_to_polars_on_edge_cases(rows):
    assert_same_features(make_transactions(rows), AS_OF)


@pytest.mark.parametrize("channels", [[], None, ["web"], ["Web Shop", "app"]])
def test_channel_share_columns_follow_the_given_channels(channels):
    transactions = make_transactions(EDGE_CASES["several orders on one day"])
    assert_same_features(transactions, AS_OF, channels)


def test_no_customer_before_as_of_gives_empty_frames_of_the_same_schema():
    transactions = make_transactions([("A", "o1", "2026-07-03", 10.0, "p1", 1, "web")])
    assert_same_features(transactions, AS_OF)
    assert_same_features(transactions.clear(), AS_OF)
    assert customer_features_small(transactions, AS_OF, CHANNELS).height == 0


def test_only_future_dated_customers_are_left_out():
    rows = EDGE_CASES["lines on and after as_of are left out"]
    customers = customer_features_small(make_transactions(rows), AS_OF, CHANNELS)
    assert customers["customer_id"].to_list() == ["A"]
    assert customers["revenue"].to_list() == [10.0]


def test_missing_quantities_count_as_nothing_as_in_polars():
    transactions = make_transactions(EDGE_CASES["partial return and a net refund order"])
    assert_same_features(transactions.with_columns(quantity=pl.lit(None, pl.Float64)), AS_OF)


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_any_timestamp_unit_and_days_before_1970(unit):
    transactions = make_transactions([
        ("A", "o1", "1969-12-31 23:00", 10.0, "p1", 1, "web"),
        ("A", "o2", "1970-01-01 01:00", 10.0, "p1", 1, "web"),
        ("A", "o3", "1970-03-01 12:00", 10.0, "p1", 1, "web"),
    ]).with_columns(pl.col("ts").cast(pl.Datetime(unit)))
    assert_same_features(transactions, date(1970, 4, 1))
