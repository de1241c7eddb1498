"""Transactions -> orders: lines netted within each order, for one batch of customers.

Input (contract-typed transactions): ``customer_id, order_id, ts, amount [, product_id,
quantity, channel]``. A return is a negative line (negative amount or quantity); it is netted
within its order. A purchase is an order whose net amount is > 0. Any other order (a
cancellation invoice, a refund larger than what it returns, a zero-price or bad-debt adjustment)
is netted into revenue but is never a visit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

Frame = pl.DataFrame | pl.LazyFrame


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def window(transactions: Frame, start: date | None, end: date) -> pl.LazyFrame:
    """Lines with ``start <= ts < end`` (no lower bound when ``start`` is None)."""
    lines = transactions.lazy().filter(pl.col("ts") < midnight(end))
    if start is not None:
        lines = lines.filter(pl.col("ts") >= midnight(start))
    return lines


def bought_line() -> pl.Expr:
    """A line that adds goods to an order (not a return): amount and quantity both >= 0
    (``features.segments.Lines.bought``, the features' implementation)."""
    return (pl.col("amount") >= 0) & (pl.col("quantity").fill_null(0.0) >= 0)


def is_purchase() -> pl.Expr:
    """On orders: the net amount is positive (``features.segments.Lines.orders``)."""
    return pl.col("amount") > 0


def orders(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``customer_id, order_id, ts, day, amount, items, n_lines, channel, is_purchase``.

    ``ts`` is the order's first line; ``items`` counts the quantities of its non-return lines.
    """
    return (
        lines.group_by("customer_id", "order_id")
        .agg(
            pl.col("ts").min(),
            pl.col("amount").sum(),
            pl.col("quantity").filter(bought_line()).sum().alias("items"),
            bought_line().sum().alias("n_lines"),
            pl.col("channel").drop_nulls().first(),
        )
        .with_columns(
            pl.col("ts").dt.date().alias("day"),
            is_purchase().alias("is_purchase"),
        )
    )


def days_before(as_of: date, days: int) -> date:
    return as_of - timedelta(days=days)
