from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from retain.features.products import customer_product_features
from tests.conftest import make_transactions


def test_each_customer_has_their_own_cadence_per_product():
    """White paint: one artist every two weeks, another every six months."""
    rows = [("fast", f"f{i}", f"2024-{1 + i // 2:02d}-{1 + 14 * (i % 2):02d}", 9.0, "white-paint")
            for i in range(8)]
    rows += [("slow", "s1", "2023-01-10", 9.0, "white-paint"), ("slow", "s2", "2023-07-09", 9.0, "white-paint"),
             ("slow", "s2", "2023-07-09", 3.0, "brush")]
    frame = customer_product_features(make_transactions(rows), date(2024, 6, 1))
    fast = frame.filter(customer_id="fast").row(0, named=True)
    slow = frame.filter(customer_id="slow", product_id="white-paint").row(0, named=True)
    assert fast["purchases"] == 8 and 13 <= fast["interval_median"] <= 18
    assert slow["interval_median"] == 180
    assert slow["next_due"] == date(2024, 1, 5)
    assert slow["overdue_ratio"] == pytest.approx((date(2024, 6, 1) - date(2023, 7, 9)).days / 180)
    brush = frame.filter(customer_id="slow", product_id="brush").row(0, named=True)
    assert brush["purchases"] == 1 and brush["interval_median"] is None and brush["next_due"] is None


def test_same_day_lines_count_once_and_returns_and_future_are_ignored():
    tx = make_transactions([
        ("a", "1", "2024-01-01 09:00", 5.0, "milk"), ("a", "2", "2024-01-01 18:00", 5.0, "milk"),
        ("a", "3", "2024-01-08", 5.0, "milk"), ("a", "3", "2024-01-08", -5.0, "milk"),
        ("a", "4", "2024-02-01", 5.0, "milk"),
    ])
    row = customer_product_features(tx, date(2024, 2, 1)).row(0, named=True)
    assert row["purchases"] == 2 and row["interval_median"] == 7 and row["last_purchase"] == date(2024, 1, 8)


def test_candidates_count_cadence_in_the_customers_own_baskets():
    """Tea every other basket, whatever the days between baskets; milk in every one."""
    from retain.features.products import CANDIDATE_COLUMNS, product_candidates

    days = ["2024-01-01", "2024-01-04", "2024-02-20", "2024-02-22", "2024-04-01"]
    rows = [("a", f"o{i}", day, 3.0, "milk") for i, day in enumerate(days)]
    rows += [("a", f"o{i}", days[i], 5.0, "tea") for i in (0, 2, 4)]
    rows += [("a", "o1", days[1], 2.0, "cake"), ("a", "o1", days[1], 2.0, "cake"),
             ("b", "x", "2024-03-01", 1.0, "milk")]
    tx = make_transactions(rows)
    frame = product_candidates(tx, date(2024, 4, 11))
    assert frame.columns[-len(CANDIDATE_COLUMNS):] == list(CANDIDATE_COLUMNS)
    rows = {(r["customer_id"], r["product_id"]): r for r in frame.iter_rows(named=True)}
    milk, tea, cake = rows["a", "milk"], rows["a", "tea"], rows["a", "cake"]
    assert tea["basket_days"] == 5 and tea["basket_share"] == pytest.approx(3 / 5)
    assert tea["order_gap_median"] == 2 and tea["orders_since_last"] == 0
    assert tea["order_overdue"] == pytest.approx(0.5)  # due in two baskets, not the next
    assert milk["order_gap_median"] == 1 and milk["order_overdue"] == 1
    assert cake["lines"] == 2 and cake["purchases"] == 1 and cake["orders_since_last"] == 3
    assert cake["order_gap_median"] is None
    assert [milk["purchase_rank"], tea["purchase_rank"], cake["purchase_rank"]] == [1, 2, 3]
    assert milk["customer_products"] == 3 and cake["customer_days_since_last"] == 10
    assert rows["b", "milk"]["purchase_rank"] == 1 and rows["b", "milk"]["basket_days"] == 1
    # The columns the pipeline always had are unchanged.
    plain = customer_product_features(tx, date(2024, 4, 11))
    assert_frame_equal(frame.select(plain.columns), plain)


def test_both_feature_sets_from_lines_handed_over_and_read_by_two_threads(shop, shop_history):
    """The features command's way: lines handed over (own), codes made ahead in the
    background, customer and product features built side by side on the one Lines."""
    from concurrent.futures import ThreadPoolExecutor

    from retain.features.customers import customer_features, observed_channels
    from retain.features.segments import NUMPY_MAX_LINES, lines_before

    assert shop_history.height > NUMPY_MAX_LINES  # the polars engine, with codes ahead
    channels = observed_channels(shop_history)
    expected = (customer_features(shop_history, shop.as_of, channels),
                customer_product_features(shop_history, shop.as_of))
    for _ in range(3):  # whichever thread gets to the shared parts first
        lines = lines_before(shop_history.clone(), shop.as_of, own=True)
        assert lines._pending  # encoding in the background
        with ThreadPoolExecutor(1) as pool:
            products = pool.submit(customer_product_features, lines, shop.as_of)
            customers = customer_features(lines, shop.as_of, channels)
            assert_frame_equal(customers, expected[0])
            assert_frame_equal(products.result(), expected[1])
        assert not lines._pending and not lines._frame.columns and not len(lines._perm)



def test_product_keys_sorted_in_two_halves_are_the_whole_sort(monkeypatch):
    # Customer-major keys cut between two customers sort apart on two threads: the result
    # must be the full lexicographic sort, whatever customer the middle row belongs to.
    from retain.features import segments

    monkeypatch.setattr(segments, "_HALVES_MIN", 1)
    rng = np.random.default_rng(7)
    n = 150_000
    spread = np.sort(rng.integers(0, 3_000, n))  # the cut falls inside a customer's run
    one_long = spread.copy()
    one_long[: n // 2 + 10] = spread[0]  # one customer across the middle: no cut
    product, day = rng.integers(0, 400, n), rng.integers(19_000, 20_500, n)
    for cust in (spread, one_long):
        split, *_ = segments._packed_sort((cust, product, day), major_sorted=True)
        whole, *_ = segments._packed_sort((cust, product, day))  # one np.sort
        assert np.array_equal(split, whole)
