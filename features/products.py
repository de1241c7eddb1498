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

import polars as pl

from features.customers import product_orders
from features.orders import Frame, window, with_gaps


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
