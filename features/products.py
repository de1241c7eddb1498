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

import itertools
from datetime import date

import polars as pl

from retain.features.customers import product_orders
from retain.features.orders import Frame, window, with_gaps


def customer_product_features(transactions: Frame, as_of: date) -> pl.DataFrame:
    return customer_product_features_lazy(transactions, as_of).collect()


def customer_product_features_lazy(transactions: Frame, as_of: date) -> pl.LazyFrame:
    days = product_orders(window(transactions, None, as_of)).unique()
    gaps = pl.col("gap").drop_nulls()
    return (
        with_gaps(days, ["customer_id", "product_id"])
        .group_by("customer_id", "product_id")
        .agg(
            pl.len().cast(pl.Int64).alias("purchases"),
            pl.col("day").first().alias("first_purchase"),
            pl.col("day").last().alias("last_purchase"),
            gaps.median().alias("interval_median"),
            gaps.mean().alias("interval_mean"),
        )
        .with_columns(
            (pl.lit(as_of) - pl.col("last_purchase")).dt.total_days().cast(pl.Float64)
            .alias("days_since_last"),
            (pl.col("last_purchase") + pl.duration(days=pl.col("interval_median").round()))
            .alias("next_due"),
        )
        .with_columns(
            (pl.col("days_since_last") / pl.col("interval_median")).alias("overdue_ratio")
        )
        .sort("customer_id", "product_id")
    )


# Candidates for the due-product ranker (models.due_product): the columns above plus what says
# whether a product will be in the customer's NEXT basket. Cadences are also counted in the
# customer's own baskets (purchase days), not only in calendar days: "tea every third order"
# is a cadence a calendar interval blurs when the customer's visits are irregular.
CANDIDATE_COLUMNS = (
    "lines", "basket_days", "basket_share", "orders_since_last", "order_gap_median",
    "order_overdue", "purchase_rank", "customer_products", "customer_days_since_last",
)


def product_candidates(transactions: Frame, as_of: date) -> pl.DataFrame:
    return product_candidates_lazy(transactions, as_of).collect()


def product_candidates_lazy(transactions: Frame, as_of: date) -> pl.LazyFrame:
    """``customer_product_features`` plus, per customer x product:

    ``lines`` (purchase lines), ``basket_days`` (the customer's distinct purchase days),
    ``basket_share`` (purchases / basket_days), ``orders_since_last`` (the customer's purchase
    days after the product's last one), ``order_gap_median`` (median gap between its purchases
    counted in the customer's purchase days; null with one), ``order_overdue``
    (``(orders_since_last + 1) / order_gap_median``: 1 = due at the next basket),
    ``purchase_rank`` (1 = most bought: most lines, ties to the smallest product id, as
    ``features.customers``' ``top_product_id``),
    ``customer_products`` and ``customer_days_since_last``.
    """
    lines = product_orders(window(transactions, None, as_of))
    days = lines.unique()
    customer_days = (
        days.select("customer_id", "day").unique().sort("customer_id", "day")
        .with_columns(
            pl.int_range(pl.len()).over("customer_id").cast(pl.Int64).alias("basket_index"),
            pl.len().over("customer_id").cast(pl.Int64).alias("basket_days"),
        )
    )
    keys = ["customer_id", "product_id"]
    same = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in keys])
    per_product = (
        days.join(customer_days, on=["customer_id", "day"])
        .sort(*keys, "day")
        .with_columns(pl.when(same).then(
            (pl.col("basket_index") - pl.col("basket_index").shift(1)).cast(pl.Float64))
            .alias("basket_gap"))
        .group_by(keys)
        .agg(
            pl.col("basket_days").first(),
            (pl.col("basket_days").first() - 1 - pl.col("basket_index").max())
            .alias("orders_since_last"),
            pl.col("basket_gap").drop_nulls().median().alias("order_gap_median"),
        )
    )
    n_lines = lines.group_by(keys).agg(pl.len().cast(pl.Int64).alias("lines"))
    base = customer_product_features_lazy(transactions, as_of)
    return (
        base.join(per_product, on=keys, how="left")
        .join(n_lines, on=keys, how="left")
        # Most bought first, as features.customers' top_product_id: most lines, ties to the
        # smallest product id.
        .sort("customer_id", "lines", "product_id", descending=[False, True, False])
        .with_columns(
            (pl.col("purchases") / pl.col("basket_days")).alias("basket_share"),
            ((pl.col("orders_since_last") + 1) / pl.col("order_gap_median")).alias("order_overdue"),
            (pl.int_range(pl.len()).over("customer_id") + 1).cast(pl.Int64).alias("purchase_rank"),
            pl.len().over("customer_id").cast(pl.Int64).alias("customer_products"),
            pl.col("days_since_last").min().over("customer_id").alias("customer_days_since_last"),
        )
        .select(*base.collect_schema().names(), *CANDIDATE_COLUMNS)
        .sort(keys)
    )


_CANDIDATE_SCHEMA = {
    "lines": pl.Int64, "basket_days": pl.Int64, "basket_share": pl.Float64,
    "orders_since_last": pl.Int64, "order_gap_median": pl.Float64, "order_overdue": pl.Float64,
    "purchase_rank": pl.Int64, "customer_products": pl.Int64,
    "customer_days_since_last": pl.Float64,
}
_TICKS_PER_DAY = {"us": 86_400_000_000, "ns": 86_400_000_000_000, "ms": 86_400_000}


def product_candidates_small(transactions: pl.DataFrame, as_of: date,
                             products: pl.DataFrame) -> pl.DataFrame:
    """``product_candidates`` for a few customers (the API's requests) in plain Python: a polars
    query plan costs more than all their arithmetic. ``products``: the same lines'
    ``customer_product_features`` (``features.small`` computes them); the same rows come back
    with the candidate columns added, as ``product_candidates`` gives them."""
    end = (as_of - date(1970, 1, 1)).days
    ts = transactions.get_column("ts")
    per_day = _TICKS_PER_DAY[ts.dtype.time_unit]  # type: ignore[attr-defined]
    days: dict[tuple[str, str], set[int]] = {}
    lines: dict[tuple[str, str], int] = {}
    for customer_id, product_id, amount, ticks in zip(
            transactions.get_column("customer_id").to_list(),
            transactions.get_column("product_id").to_list(),
            transactions.get_column("amount").to_list(), ts.cast(pl.Int64).to_list()):
        day = ticks // per_day
        if day < end and amount >= 0 and product_id is not None:
            key = (customer_id, product_id)
            days.setdefault(key, set()).add(day)
            lines[key] = lines.get(key, 0) + 1
    baskets: dict[str, set[int]] = {}
    for (customer_id, _), product_days in days.items():
        baskets.setdefault(customer_id, set()).update(product_days)
    index = {c: {day: i for i, day in enumerate(sorted(d))} for c, d in baskets.items()}
    names = ("customer_id", "product_id", "purchases", "days_since_last")
    rows = list(zip(*(products.get_column(name).to_list() for name in names)))
    order = sorted(range(len(rows)),
                   key=lambda i: (rows[i][0], -lines[rows[i][0], rows[i][1]], rows[i][1]))
    rank, count, latest = [0] * len(rows), {}, {}
    for i in order:
        customer_id, _, _, since_last = rows[i]
        count[customer_id] = count.get(customer_id, 0) + 1
        rank[i] = count[customer_id]
        latest[customer_id] = min(latest.get(customer_id, since_last), since_last)
    out: dict[str, list] = {name: [] for name in _CANDIDATE_SCHEMA}
    for i, (customer_id, product_id, purchases, since_last) in enumerate(rows):
        n = len(baskets[customer_id])
        positions = [index[customer_id][day] for day in sorted(days[customer_id, product_id])]
        gaps = sorted(float(b - a) for a, b in itertools.pairwise(positions))
        middle = len(gaps) // 2
        gap_median = (None if not gaps else gaps[middle] if len(gaps) % 2
                      else (gaps[middle - 1] + gaps[middle]) / 2)
        since = n - 1 - positions[-1]
        for name, value in (
                ("lines", lines[customer_id, product_id]), ("basket_days", n),
                ("basket_share", purchases / n), ("orders_since_last", since),
                ("order_gap_median", gap_median),
                ("order_overdue", None if gap_median is None else (since + 1) / gap_median),
                ("purchase_rank", rank[i]), ("customer_products", count[customer_id]),
                ("customer_days_since_last", latest[customer_id])):
            out[name].append(value)
    return products.hstack([pl.Series(name, out[name], dtype)
                            for name, dtype in _CANDIDATE_SCHEMA.items()])
