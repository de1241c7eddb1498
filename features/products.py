"""Per customer x product repurchase features at an as-of date (one batch of customers).

"One artist uses up a tube of white paint in two weeks, another in six months": each customer's
own cadence per product says when that product is due again.

Input: contract-typed transactions (see ``features.contract``). Output, one row per customer and
product bought strictly before the as-of date, sorted by ``customer_id, product_id``:
``purchases`` (distinct days bought), ``first_purchase``, ``last_purchase``,
``interval_median``, ``interval_mean`` (days between those purchase days; null with one),
``days_since_last``, ``next_due`` (last purchase + median interval) and ``overdue_ratio``.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from retain.features.segments import (
    Frame,
    Lines,
    changes,
    date_column,
    float_column,
    frame,
    int_column,
    lengths,
    lines_before,
    median_of_steps,
    name_column,
    sort_ints,
    starts_of,
    steps,
)

_SCHEMA = {
    "customer_id": pl.String, "product_id": pl.String, "purchases": pl.Int64,
    "first_purchase": pl.Date, "last_purchase": pl.Date, "interval_median": pl.Float64,
    "interval_mean": pl.Float64, "days_since_last": pl.Float64, "next_due": pl.Date,
    "overdue_ratio": pl.Float64,
}

# Candidates for the due-product ranker (models.due_product): the columns above plus what says
# whether a product will be in the customer's NEXT basket. Cadences are also counted in the
# customer's own baskets (purchase days), not only in calendar days: "tea every third order"
# is a cadence a calendar interval blurs when the customer's visits are irregular.
CANDIDATE_COLUMNS = (
    "lines", "basket_days", "basket_share", "orders_since_last", "order_gap_median",
    "order_overdue", "purchase_rank", "customer_products", "customer_days_since_last",
)
_CANDIDATE_SCHEMA = {
    "lines": pl.Int64, "basket_days": pl.Int64, "basket_share": pl.Float64,
    "orders_since_last": pl.Int64, "order_gap_median": pl.Float64, "order_overdue": pl.Float64,
    "purchase_rank": pl.Int64, "customer_products": pl.Int64,
    "customer_days_since_last": pl.Float64,
}


def customer_product_features(transactions: Frame | Lines, as_of: date) -> pl.DataFrame:
    """See the module doc. ``transactions`` may be ``features.segments.lines_before(...)``."""
    return _products(lines_before(transactions, as_of), candidates=False)


def product_candidates(transactions: Frame | Lines, as_of: date) -> pl.DataFrame:
    """``customer_product_features`` plus, per customer x product:

    ``lines`` (purchase lines), ``basket_days`` (the customer's distinct purchase days),
    ``basket_share`` (purchases / basket_days), ``orders_since_last`` (the customer's purchase
    days after the product's last one), ``order_gap_median`` (median gap between its purchases
    counted in the customer's purchase days; null with one), ``order_overdue``
    (``(orders_since_last + 1) / order_gap_median``: 1 = due at the next basket),
    ``purchase_rank`` (1 = most bought: most lines, ties to the smallest product id, as
    ``features.customers``' ``top_product_id``),
    ``customer_products`` and ``customer_days_since_last``.

    A customer's purchase days here are the days with a purchased product line.
    """
    return _products(lines_before(transactions, as_of), candidates=True)


def _products(lines: Lines, candidates: bool) -> pl.DataFrame:
    schema = {**_SCHEMA, **(_CANDIDATE_SCHEMA if candidates else {})}
    bought = lines.product_lines  # sorted by customer, product, day
    if not len(bought):
        return pl.DataFrame(schema=schema)
    # One row per (customer, product, day): the days each product was bought on, in order.
    rows = starts_of(bought.new_pair | changes(bought.day))
    day, new_pair = bought.day[rows], bought.new_pair[rows]
    pairs = starts_of(new_pair)  # the same pairs, in the same order, as bought.pairs
    purchases = lengths(pairs, len(day))
    last_row = pairs + purchases - 1
    first, last = day[pairs], day[last_row]
    pair_cust = bought.pair_cust
    with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 -> NaN -> null, as polars
        median = median_of_steps(steps(day, new_pair), new_pair, pairs, purchases)
        since_last = (lines.end - last).astype(np.float64)
        columns = [
            name_column("customer_id", lines.customer_ids, pair_cust),
            name_column("product_id", lines.products[1], bought.pair_product),
            int_column("purchases", purchases),
            date_column("first_purchase", first),
            date_column("last_purchase", last),
            float_column("interval_median", median),
            # The gaps telescope: their mean is the first-to-last span over their number.
            float_column("interval_mean", (last - first) / (purchases - 1)),
            float_column("days_since_last", since_last),
            # Half to even, as polars' round.
            date_column("next_due", last + np.round(median)),
            float_column("overdue_ratio", since_last / median),
        ]
        if candidates:
            columns += _candidates(lines, bought, np.repeat(pair_cust, purchases), day,
                                   new_pair, pairs, purchases, last_row, pair_cust, since_last)
    return frame(columns)


def _candidates(lines, bought, cust, day, new_pair, pairs, purchases, last_row, pair_cust,
                since_last) -> list[pl.Series]:
    """The candidate columns, from the (customer, product, day) rows of ``_products``."""
    n_pairs = len(pairs)
    # The customer's baskets: their distinct days with a purchased product, numbered in order.
    low = int(day.min())
    span = int(day.max()) - low + 1
    customer_day = cust * span + (day - low)
    baskets = sort_ints(customer_day)
    baskets = baskets[changes(baskets)]
    basket_cust = baskets // span
    basket_index = (np.searchsorted(baskets, customer_day)
                    - np.searchsorted(basket_cust, cust, side="left"))
    basket_days = np.bincount(basket_cust, minlength=len(lines.customer_ids))[pair_cust]
    orders_since_last = basket_days - 1 - basket_index[last_row]
    gap_median = median_of_steps(steps(basket_index, new_pair), new_pair, pairs, purchases)
    n_lines = bought.pair_lines
    # Most bought first (most lines, ties to the smallest product id), within each customer.
    ranked = np.lexsort((bought.pair_product, -n_lines, pair_cust))
    customer_starts = starts_of(changes(pair_cust))
    per_customer = lengths(customer_starts, n_pairs)
    rank = np.empty(n_pairs, dtype=np.int64)
    rank[ranked] = np.arange(1, n_pairs + 1) - np.repeat(customer_starts, per_customer)
    latest = np.minimum.reduceat(since_last, customer_starts)
    return [
        int_column("lines", n_lines),
        int_column("basket_days", basket_days),
        float_column("basket_share", purchases / basket_days),
        int_column("orders_since_last", orders_since_last),
        float_column("order_gap_median", gap_median),
        float_column("order_overdue", (orders_since_last + 1) / gap_median),
        int_column("purchase_rank", rank),
        int_column("customer_products", np.repeat(per_customer, per_customer)),
        float_column("customer_days_since_last", np.repeat(latest, per_customer)),
    ]


__all__ = ["CANDIDATE_COLUMNS", "customer_product_features", "product_candidates"]
