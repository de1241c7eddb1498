"""Outcomes in the horizon after an as-of date: what the models learn to predict.

Input: contract-typed transactions covering the as-of date and the horizon after it. Output,
one row per customer with a purchase before ``as_of`` (the same customers as
``customer_features``), sorted by ``customer_id``:
``ordered_again`` (a purchase in ``[as_of, as_of + horizon)``), ``orders_h``, ``revenue_h``
(net of returns), ``days_to_next_order`` (null when none) and ``next_product_id`` (the largest
line of the next order).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from retain.features.orders import Frame, orders, window

DEFAULT_HORIZON_DAYS = 90


def labels(transactions: Frame, as_of: date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> pl.DataFrame:
    return labels_lazy(transactions, as_of, horizon_days).collect()


def labels_lazy(transactions: Frame, as_of: date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> pl.LazyFrame:
    population = (
        orders(window(transactions, None, as_of)).filter("is_purchase").select("customer_id").unique()
    )
    future_lines = window(transactions, as_of, as_of + timedelta(days=horizon_days))
    future = orders(future_lines)
    outcome = future.group_by("customer_id").agg(
        pl.col("is_purchase").sum().cast(pl.Int64).alias("orders_h"),
        pl.col("amount").sum().alias("revenue_h"),
        pl.col("ts").filter("is_purchase").min().alias("next_order_ts"),
        # Filter the order ids and their sort key alike: a non-purchase order in the horizon
        # would otherwise leave the two of different lengths (polars ShapeError).
        pl.col("order_id").filter("is_purchase")
        .sort_by(pl.col("ts").filter("is_purchase")).first().alias("next_order_id"),
    )
    next_product = (
        future_lines.filter(pl.col("product_id").is_not_null())
        .join(outcome.select("customer_id", pl.col("next_order_id").alias("order_id")),
              on=["customer_id", "order_id"])
        .group_by("customer_id")
        .agg(pl.col("product_id").sort_by("amount", descending=True).first().alias("next_product_id"))
    )
    return (
        population.join(outcome, on="customer_id", how="left")
        .join(next_product, on="customer_id", how="left")
        .select(
            "customer_id",
            (pl.col("orders_h").fill_null(0) > 0).alias("ordered_again"),
            pl.col("orders_h").fill_null(0),
            pl.col("revenue_h").fill_null(0.0),
            (pl.col("next_order_ts").dt.date() - pl.lit(as_of)).dt.total_days().alias("days_to_next_order"),
            "next_product_id",
        )
        .sort("customer_id")
    )


def next_purchase_basket(transactions: Frame, origin: date, horizon_days: int) -> pl.DataFrame:
    """``customer_id, product_id`` of the products in each customer's first purchase order in
    ``[origin, origin + horizon)`` (its non-return lines with a product), sorted."""
    lines = window(transactions, origin, origin + timedelta(days=horizon_days))
    first = (orders(lines).filter("is_purchase").sort("ts", "order_id").group_by("customer_id")
             .first().select("customer_id", "order_id"))
    return (lines.filter((pl.col("amount") >= 0) & pl.col("product_id").is_not_null())
            .join(first, on=["customer_id", "order_id"])
            .select("customer_id", "product_id").unique().sort("customer_id", "product_id")
            .collect())
