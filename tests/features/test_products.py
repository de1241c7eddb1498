from __future__ import annotations

from datetime import date

import pytest

from features.products import customer_product_features
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
