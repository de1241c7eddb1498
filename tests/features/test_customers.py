from __future__ import annotations

import warnings
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retain.features.customers import customer_features, observed_channels, rfm_summary
from retain.features.samples import CDNOW_CALIBRATION_END, cdnow_transactions
from tests.conftest import make_transactions


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return cdnow_transactions()


def test_rfm_is_identical_to_lifetimes_summary_on_cdnow(cdnow):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data
    as_of = CDNOW_CALIBRATION_END
    # A purchase is an order with a positive net amount: CDNOW's zero-dollar lines are not
    # visits (70 customers bought only those), where lifetimes counts every line.
    before = cdnow.filter(
        (pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us"))) & (pl.col("amount") > 0)
    ).to_pandas()
    expected = summary_data_from_transaction_data(
        before, "customer_id", "ts", monetary_value_col="amount",
        observation_period_end=as_of - timedelta(days=1),
    )
    ours = customer_features(cdnow, as_of).to_pandas().set_index("customer_id")
    assert sorted(ours.index) == sorted(expected.index)
    ours = ours.loc[expected.index]
    for column in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(ours[column].to_numpy(), expected[column].to_numpy())
    np.testing.assert_allclose(ours["monetary_value"], expected["monetary_value"], rtol=0, atol=1e-9)
    summary = rfm_summary(cdnow, as_of).to_pandas().set_index("customer_id").loc[expected.index]
    np.testing.assert_allclose(summary.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)


def test_nothing_at_or_after_the_as_of_date_leaks(cdnow):
    as_of = date(1997, 7, 1)
    cutoff = pl.lit(as_of).cast(pl.Datetime("us"))
    past_only = customer_features(cdnow.filter(pl.col("ts") < cutoff), as_of)
    # Make the future extreme: if any of it leaked, some feature would move.
    future = cdnow.filter(pl.col("ts") >= cutoff).with_columns(
        pl.col("amount") * 1000, pl.lit("web").alias("channel"), pl.lit("P1").alias("product_id")
    )
    with_future = customer_features(pl.concat([cdnow.filter(pl.col("ts") < cutoff), future]), as_of)
    assert_frame_equal(with_future, past_only, check_exact=False, rel_tol=1e-12)


def test_features_of_a_batch_do_not_depend_on_other_customers(cdnow):
    """Per-customer purity: a partition of customers gives the same rows as the whole shop."""
    as_of = CDNOW_CALIBRATION_END
    whole = customer_features(cdnow, as_of)
    ids = cdnow["customer_id"].unique().sort()
    half = set(ids.head(len(ids) // 2).to_list())
    parts = [
        customer_features(cdnow.filter(pl.col("customer_id").is_in(list(half))), as_of),
        customer_features(cdnow.filter(~pl.col("customer_id").is_in(list(half))), as_of),
    ]
    assert_frame_equal(pl.concat(parts).sort("customer_id"), whole, check_exact=False, rel_tol=1e-12)


def test_intervals_overdue_ratio_and_lengthening_by_hand():
    tx = make_transactions([
        ("a", "1", "2024-01-01", 10.0), ("a", "2", "2024-01-08", 10.0),
        ("a", "3", "2024-01-15", 10.0), ("a", "4", "2024-01-22", 10.0),
        ("a", "5", "2024-02-12", 10.0), ("a", "6", "2024-03-18", 10.0),
    ])
    row = customer_features(tx, date(2024, 4, 1)).row(0, named=True)
    # intervals 7, 7, 7, 21, 35
    assert row["interval_mean"] == pytest.approx(15.4)
    assert row["interval_median"] == 7
    assert row["interval_last"] == 35
    assert row["interval_recent_mean"] == pytest.approx((7 + 21 + 35) / 3)
    assert row["interval_std"] == pytest.approx(np.std([7, 7, 7, 21, 35], ddof=1))
    assert row["days_since_last_order"] == 14
    assert row["overdue_ratio"] == pytest.approx(2.0)
    assert row["intervals_lengthening"] is True
    assert row["frequency"] == 5 and row["recency"] == 77 and row["T"] == 90


def test_returns_are_netted_within_the_order_and_refunds_are_not_visits():
    tx = make_transactions([
        ("a", "o1", "2024-01-01", 100.0, "p1", 2), ("a", "o1", "2024-01-03", -40.0, "p1", 1),
        ("a", "o2", "2024-01-10", 50.0, "p2", 1),
        ("a", "r1", "2024-01-20", -30.0, "p2", 1),  # a refund with no order of its own
    ])
    row = customer_features(tx, date(2024, 2, 1)).row(0, named=True)
    assert row["orders"] == 2
    assert row["refunds"] == 1
    assert row["revenue"] == pytest.approx(80.0)
    assert row["aov"] == pytest.approx(55.0)
    assert row["frequency"] == 1
    assert row["monetary_value"] == pytest.approx(50.0)
    assert row["basket_items"] == pytest.approx(1.5)


def test_basket_products_channels_and_trend():
    as_of = date(2024, 7, 1)
    tx = make_transactions([
        ("a", "1", "2023-12-10", 10.0, "milk", 1, "store"),
        ("a", "1", "2023-12-10", 20.0, "bread", 3, "store"),
        ("a", "2", "2024-02-10", 10.0, "milk", 1, "app"),
        ("a", "3", "2024-05-10", 10.0, "milk", 1, "app"),
        ("a", "4", "2024-06-10", 30.0, "cheese", 1, "app"),
    ])
    row = customer_features(tx, as_of, observed_channels(tx)).row(0, named=True)
    assert row["distinct_products"] == 3
    assert row["top_product_id"] == "milk"
    assert row["top_product_share"] == pytest.approx(3 / 5)
    assert row["basket_lines"] == pytest.approx(5 / 4)
    assert row["n_channels"] == 2 and row["top_channel"] == "app"
    assert row["channel_share_app"] == pytest.approx(0.75)
    assert row["channel_share_store"] == pytest.approx(0.25)
    assert row["orders_last_90d"] == 2 and row["orders_prev_90d"] == 1
    assert row["revenue_last_90d"] == 40 and row["revenue_prev_90d"] == 10
    assert row["revenue_trend"] == pytest.approx(30 / 50)


def test_one_order_customer_has_no_intervals_and_zero_monetary_value():
    tx = make_transactions([("a", "1", "2024-01-10 15:30", 99.0)])
    row = customer_features(tx, date(2024, 1, 20)).row(0, named=True)
    assert row["frequency"] == 0 and row["monetary_value"] == 0
    assert row["interval_median"] is None and row["overdue_ratio"] is None
    assert row["days_since_last_order"] == 10 and row["T"] == 9


def test_customers_with_no_purchase_before_as_of_are_absent():
    tx = make_transactions([("a", "1", "2024-01-10", 5.0), ("b", "2", "2024-03-01", 5.0)])
    assert customer_features(tx, date(2024, 2, 1))["customer_id"].to_list() == ["a"]


@pytest.mark.parametrize("numpy_max_lines", [0, 10**9], ids=["polars", "numpy"])
def test_an_orders_channel_is_its_first_given_however_the_lines_are_read(
        monkeypatch, numpy_max_lines):
    from retain.features import segments

    monkeypatch.setattr(segments, "NUMPY_MAX_LINES", numpy_max_lines)
    as_of = date(2024, 7, 1)
    tx = make_transactions([
        ("a", "1", "2024-01-10", 10.0, "milk", 1, None),
        ("a", "1", "2024-01-10", 20.0, "bread", 3, "web"),
        ("a", "1", "2024-01-10", 20.0, "tea", 1, "store"),
        ("a", "2", "2024-02-10", 10.0, "milk", 1, None),
        ("b", "3", "2024-05-10", 10.0, "milk", 1, "app"),
        ("b", "3", "2024-05-11", 10.0, "tea", 1, "kiosk"),
    ])
    expected = ([1, -1, 0], ["app", "web"])  # "store" and "kiosk" are no order's channel
    per_line = segments.lines_before(tx, as_of)
    assert per_line.channels[1].to_list() == ["app", "kiosk", "store", "web"]
    codes, names = per_line.order_channels  # derived from the per-line codes
    assert (codes.tolist(), names.to_list()) == expected
    for ahead in (False, True):  # encoded here, or in the background while sorting
        codes, names = segments.lines_before(tx, as_of, ahead=ahead).order_channels
        assert (codes.tolist(), names.to_list()) == expected
        owned = segments.lines_before(tx.clone(), as_of, own=True, ahead=ahead)
        codes, names = owned.order_channels
        assert (codes.tolist(), names.to_list()) == expected
        with pytest.raises(RuntimeError, match="let go"):
            owned.channels  # noqa: B018
    owned = segments.lines_before(tx.clone(), as_of, own=True, ahead=False)
    assert owned.channels[1].to_list() == ["app", "kiosk", "store", "web"]
    codes, names = owned.order_channels  # read per line first, then per order
    assert (codes.tolist(), names.to_list()) == expected


def test_no_channel_or_product_is_null_alone_or_beside_others_and_short_medians_are_exact():
    # a: three purchase days (intervals 10 then 4: median 7, read without a sort), no channel
    # and no product; b: one order with both. Null names must not depend on the batch.
    rows = [
        ("a", "1", "2024-01-01", 10.0), ("a", "2", "2024-01-11", 10.0),
        ("a", "3", "2024-01-15", 10.0),
        ("b", "9", "2024-01-05", 5.0, "pen", 1, "web"),
    ]
    as_of = date(2024, 2, 1)
    both = customer_features(make_transactions(rows), as_of, ["web"])
    alone = customer_features(make_transactions(rows[:3]), as_of, ["web"])
    a, b = both.row(0, named=True), both.row(1, named=True)
    assert a["interval_median"] == 7 and a["overdue_ratio"] == pytest.approx(17 / 7)
    assert a["top_channel"] is None and a["top_product_id"] is None and a["n_channels"] == 0
    assert b["top_channel"] == "web" and b["top_product_id"] == "pen"
    assert_frame_equal(alone, both.head(1))
