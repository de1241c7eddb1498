from __future__ import annotations

from datetime import date

import pytest

from retain.features.labels import labels
from tests.conftest import make_transactions


def test_labels_count_the_horizon_only_and_cover_every_customer_with_history():
    tx = make_transactions([
        ("a", "1", "2024-01-10", 10.0, "milk"),
        ("a", "2", "2024-02-05", 30.0, "bread"), ("a", "2", "2024-02-05", 50.0, "cheese"),
        ("a", "3", "2024-03-01", 20.0, "milk"), ("a", "3", "2024-03-02", -5.0, "milk"),
        ("a", "4", "2024-05-01", 99.0, "milk"),  # after the 60-day horizon
        ("b", "5", "2024-01-15", 10.0, "milk"),
        ("c", "6", "2024-02-10", 10.0, "milk"),  # no history before as_of: not in the population
    ])
    frame = labels(tx, date(2024, 2, 1), horizon_days=60)
    assert frame["customer_id"].to_list() == ["a", "b"]
    a = frame.row(0, named=True)
    assert a["ordered_again"] is True and a["orders_h"] == 2
    assert a["revenue_h"] == pytest.approx(95.0)
    assert a["days_to_next_order"] == 4
    assert a["next_product_id"] == "cheese"
    b = frame.row(1, named=True)
    assert b == {"customer_id": "b", "ordered_again": False, "orders_h": 0, "revenue_h": 0.0,
                 "days_to_next_order": None, "next_product_id": None}


def test_an_order_on_the_as_of_day_is_the_future():
    tx = make_transactions([("a", "1", "2024-01-10", 10.0), ("a", "2", "2024-02-01 00:00", 10.0)])
    assert labels(tx, date(2024, 2, 1), 90)["days_to_next_order"].to_list() == [0]


def test_next_purchase_basket_is_the_first_purchase_order_in_the_horizon():
    from retain.features.labels import next_purchase_basket

    tx = make_transactions([
        ("a", "1", "2024-01-10", 10.0, "milk"),
        ("a", "2", "2024-02-03", -10.0, "milk"),  # a return order first: not a purchase
        ("a", "3", "2024-02-05", 30.0, "bread"), ("a", "3", "2024-02-05", 5.0, "bread"),
        ("a", "3", "2024-02-05", 50.0, "cheese"), ("a", "3", "2024-02-05", -50.0, "cheese"),
        ("a", "3", "2024-02-05", 4.0, None),
        ("a", "4", "2024-02-20", 20.0, "jam"),  # a later order
        ("b", "5", "2024-01-15", 10.0, "milk"), ("b", "6", "2024-05-01", 10.0, "milk"),  # too late
        ("c", "7", "2024-02-01", 10.0, "tea"),  # on the origin day: the future
    ])
    basket = next_purchase_basket(tx, date(2024, 2, 1), horizon_days=60)
    # cheese was bought and returned in the same order: it was still in the basket.
    assert basket.rows() == [("a", "bread"), ("a", "cheese"), ("c", "tea")]
