"""Know your data first: what a shop's transactions hold, and what ``retain train`` will do
with them.

``data_report`` is a pure function of contract-typed transactions (``features.contract``) and
the loader's ``LoadReport``; ``retain inspect`` prints it and ``retain train`` logs it to MLflow
(``data_report.json``). It counts what real exports hold (refunds and cancellations, zero-price
lines, guest lines, duplicates, float ids, the encoding, lines after the as-of date) and says
whether the shop gets the full LightGBM models or the probabilistic fallback, and why, with a
suggested horizon.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from retain.features.orders import midnight, orders, window
from retain.training.backtest import (
    MIN_HISTORY_DAYS,
    MIN_ORIGIN_HISTORY_DAYS,
    MIN_REPEAT_BUYERS,
    TrainConfig,
)

# Horizons retain suggests, shortest last: the default first, then what a short history allows.
_HORIZON_CHOICES = (90, 60, 30, 14, 7)


@dataclass
class DataReport:
    """Counts over the lines before the as-of date unless said otherwise."""

    source: str
    as_of: date
    rows_read: int
    rows_rejected: int
    rejected: dict[str, int]
    encoding: str
    duplicated_lines: int
    float_ids_rewritten: int
    lines_after_as_of: int
    after_as_of_range: tuple[str, str] | None
    lines: int
    customers: int
    first_day: str | None
    last_day: str | None
    history_days: int
    orders: int
    orders_per_customer_mean: float
    orders_per_customer_median: float
    repeat_buyers: int
    repeat_share: float
    refund_orders: int
    zero_orders: int
    negative_lines: int
    zero_price_lines: int
    has_products: bool
    has_channels: bool
    has_order_ids: bool
    median_days_between_orders: float | None
    plan: str = ""
    reasons: list[str] = field(default_factory=list)
    horizon_days: int = 90
    training_origins: int = 0
    suggested_horizon_days: int | None = None
    # Customers with lines before the as-of date but no purchase (only orders netting to zero
    # or less: CDNOW's 70 zero-dollar buyers): no features, no scores.
    customers_without_purchase: int = 0
    # Lines the status column marked (features.contract.apply_status): cancelled ones left
    # out before anything here counts, returned ones read as refunds (negative lines).
    cancelled_lines: int = 0
    returned_lines: int = 0
    # Rows of the source that were no data, left out: empty rows and a report's totals rows.
    empty_rows: int = 0
    totals_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = str(self.as_of)
        return out


@dataclass
class HistoryCounts:
    """What the report counts in the lines, kept in a form that adds up across batches of
    whole customers (a Spark partition each, :meth:`merge`): sums, extremes, flags, and the
    two medians' inputs as histograms (orders per customer, days between a customer's
    orders: both whole numbers), so the merged medians are exact."""

    lines: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    lines_after: int = 0
    after_first: datetime | None = None
    after_last: datetime | None = None
    orders_per_customer: dict[int, int] = field(default_factory=dict)  # orders -> customers
    repeat_buyers: int = 0
    refund_orders: int = 0
    zero_orders: int = 0
    negative_lines: int = 0
    zero_price_lines: int = 0
    has_products: bool = False
    has_channels: bool = False
    has_order_ids: bool = False
    day_gaps: dict[int, int] = field(default_factory=dict)  # days between orders -> count
    customers_seen: int = 0  # with any order before the as-of date, a purchase or not

    @classmethod
    def of(cls, transactions: pl.DataFrame, as_of: date) -> HistoryCounts:
        """The counts of ``transactions`` (all lines, including those after ``as_of``)."""
        end = midnight(as_of)
        after = transactions.filter(pl.col("ts") >= end)
        history = transactions.filter(pl.col("ts") < end)
        all_orders = orders(window(history, None, as_of)).collect()
        purchases = all_orders.filter("is_purchase")
        per_customer = purchases.group_by("customer_id").agg(
            pl.len().alias("orders"), pl.col("day").n_unique().alias("days"))
        day_gaps = (purchases.select("customer_id", "day").unique().sort("customer_id", "day")
                    .with_columns(pl.col("day").diff().over("customer_id").dt.total_days()
                                  .alias("gap")))
        return cls(
            lines=history.height,
            first_ts=history["ts"].min(),  # type: ignore[arg-type]
            last_ts=history["ts"].max(),  # type: ignore[arg-type]
            lines_after=after.height,
            after_first=after["ts"].min(),  # type: ignore[arg-type]
            after_last=after["ts"].max(),  # type: ignore[arg-type]
            orders_per_customer=_histogram(per_customer["orders"]),
            repeat_buyers=int((per_customer["days"] > 1).sum()),
            refund_orders=int((all_orders["amount"] < 0).sum()),
            zero_orders=int((all_orders["amount"] == 0).sum()),
            negative_lines=int((history["amount"] < 0).sum()),
            zero_price_lines=int((history["amount"] == 0).sum()),
            has_products=bool(history["product_id"].is_not_null().any()),
            has_channels=bool(history["channel"].is_not_null().any()),
            has_order_ids=not bool(history["order_id"].str.starts_with("#row").all()),
            day_gaps=_histogram(day_gaps["gap"].drop_nulls()),
            customers_seen=all_orders["customer_id"].n_unique(),
        )

    @classmethod
    def merge(cls, parts: list[HistoryCounts]) -> HistoryCounts:
        """The counts of the union of batches holding disjoint sets of customers."""
        out = cls()
        for part in parts:
            out.lines += part.lines
            out.first_ts = _least(out.first_ts, part.first_ts)
            out.last_ts = _least(out.last_ts, part.last_ts, max)
            out.lines_after += part.lines_after
            out.after_first = _least(out.after_first, part.after_first)
            out.after_last = _least(out.after_last, part.after_last, max)
            for key, n in part.orders_per_customer.items():
                out.orders_per_customer[key] = out.orders_per_customer.get(key, 0) + n
            for key, n in part.day_gaps.items():
                out.day_gaps[key] = out.day_gaps.get(key, 0) + n
            out.repeat_buyers += part.repeat_buyers
            out.refund_orders += part.refund_orders
            out.zero_orders += part.zero_orders
            out.negative_lines += part.negative_lines
            out.zero_price_lines += part.zero_price_lines
            out.has_products |= part.has_products
            out.has_channels |= part.has_channels
            out.has_order_ids |= part.has_order_ids
            out.customers_seen += part.customers_seen
        return out

    def to_json(self) -> str:
        return json.dumps({**asdict(self), **{k: getattr(self, k) and getattr(self, k).isoformat()
                                             for k in _TIMES}})

    @classmethod
    def from_json(cls, text: str) -> HistoryCounts:
        raw = json.loads(text)
        for key in _TIMES:
            raw[key] = raw[key] and datetime.fromisoformat(raw[key])
        for key in ("orders_per_customer", "day_gaps"):
            raw[key] = {int(k): v for k, v in raw[key].items()}
        return cls(**raw)


_TIMES = ("first_ts", "last_ts", "after_first", "after_last")


def _histogram(values: pl.Series) -> dict[int, int]:
    counts = values.value_counts()
    return dict(zip(counts[values.name].to_list(), counts["count"].to_list(), strict=True))


def _least(a: datetime | None, b: datetime | None, pick: Any = min) -> datetime | None:
    return b if a is None else a if b is None else pick(a, b)


def _median(histogram: dict[int, int]) -> float | None:
    """The median of the values a histogram counts, as polars' ``median`` gives it (the mean
    of the two middle values when their number is even)."""
    total = sum(histogram.values())
    if not total:
        return None
    wanted, found, seen = [(total - 1) // 2, total // 2], [], 0
    for value in sorted(histogram):
        seen += histogram[value]
        while wanted and wanted[0] < seen:
            found.append(value)
            wanted.pop(0)
    return (found[0] + found[1]) / 2


def data_report(transactions: pl.DataFrame, load_report: Any, as_of: date,
                config: TrainConfig | None = None, encoding: str = "utf-8",
                counts: HistoryCounts | None = None) -> DataReport:
    """The report of ``transactions`` (all lines, including those after ``as_of``) at ``as_of``.

    ``load_report`` is the loader's ``LoadReport``; its optional counters (duplicates, float
    ids, encoding) are read when it has them. ``counts``: the lines' counts when an engine
    computed them over every customer (``retain.spark.history_counts``) and
    ``transactions`` holds only a sample; by default counted here.
    """
    config = config or TrainConfig()
    counts = counts if counts is not None else HistoryCounts.of(transactions, as_of)
    first, last = counts.first_ts, counts.last_ts
    history_days = (as_of - first.date()).days if first is not None else 0
    customers = sum(counts.orders_per_customer.values())
    orders_total = sum(k * n for k, n in counts.orders_per_customer.items())
    repeat = counts.repeat_buyers
    after_range = None
    # The loader leaves the lines outside the window out of the frame and counts them.
    lines_after = int(getattr(load_report, "after_as_of", 0) or 0) + counts.lines_after
    if getattr(load_report, "after_as_of", 0):
        after_range = (f"{load_report.after_as_of_first:%Y-%m-%d}",
                       f"{load_report.after_as_of_last:%Y-%m-%d}")
    elif counts.lines_after:
        after_range = (f"{counts.after_first:%Y-%m-%d}", f"{counts.after_last:%Y-%m-%d}")
    report = DataReport(
        source=str(getattr(load_report, "source", "")),
        as_of=as_of,
        rows_read=int(getattr(load_report, "rows_read", transactions.height)),
        rows_rejected=int(getattr(load_report, "rows_rejected", 0)),
        rejected=dict(getattr(load_report, "rejected", {}) or {}),
        encoding=str(getattr(load_report, "encoding", None) or encoding),
        duplicated_lines=int(getattr(load_report, "duplicates", 0) or 0),
        float_ids_rewritten=int(getattr(load_report, "float_ids_rewritten", 0) or 0),
        lines_after_as_of=lines_after,
        after_as_of_range=after_range,
        lines=counts.lines,
        customers=customers,
        first_day=None if first is None else f"{first:%Y-%m-%d}",
        last_day=None if last is None else f"{last:%Y-%m-%d}",
        history_days=history_days,
        orders=orders_total,
        orders_per_customer_mean=orders_total / customers if customers else 0.0,
        orders_per_customer_median=_median(counts.orders_per_customer) or 0.0,
        repeat_buyers=repeat,
        repeat_share=repeat / customers if customers else 0.0,
        refund_orders=counts.refund_orders,
        zero_orders=counts.zero_orders,
        negative_lines=counts.negative_lines,
        zero_price_lines=counts.zero_price_lines,
        has_products=counts.has_products,
        has_channels=counts.has_channels,
        has_order_ids=counts.has_order_ids,
        median_days_between_orders=_median(counts.day_gaps),
        horizon_days=config.horizon_days,
        customers_without_purchase=max(counts.customers_seen - customers, 0),
        cancelled_lines=int(getattr(load_report, "cancelled_lines", 0) or 0),
        returned_lines=int(getattr(load_report, "returned_lines", 0) or 0),

        empty_rows=int(getattr(load_report, "empty_rows", 0) or 0),
        totals_rows=int(getattr(load_report, "totals_rows", 0) or 0),
    )
    _plan(report, config)
    return report


def origins_for(history_days: int, horizon_days: int, config: TrainConfig) -> int:
    """How many training origins (as-of dates with a known outcome and at least
    ``MIN_ORIGIN_HISTORY_DAYS`` of history before them) a history of this length gives."""
    return sum(1 for k in range(config.n_origins)
               if history_days - horizon_days - k * config.origin_step_days
               >= MIN_ORIGIN_HISTORY_DAYS)


def _plan(report: DataReport, config: TrainConfig) -> None:
    """What ``retain train`` will do: the full models or the probabilistic fallback, and why."""
    reasons = []
    if report.customers == 0:
        report.plan = "nothing to train on"
        report.reasons = ["no purchase before the as-of date"]
        return
    if report.repeat_buyers == 0:
        report.plan = "cannot train"
        report.reasons = ["every customer bought once: there is no repeat behaviour to learn from"]
        return
    if report.last_day is not None and (date.fromisoformat(report.last_day)
                                        < report.as_of - timedelta(days=config.horizon_days)):
        # training.train.check_recent_lines refuses it: say so before anyone waits for it.
        report.plan = "cannot train at this as-of date"
        report.reasons = [(f"no line in the {config.horizon_days} days before it (the last is "
                          f"dated {report.last_day}): train at most {config.horizon_days} days "
                          "after the last line; that model scores any later date")]
        return
    report.training_origins = origins_for(report.history_days, config.horizon_days, config)
    if report.repeat_buyers < MIN_REPEAT_BUYERS:
        reasons.append(f"only {report.repeat_buyers:,} repeat buyers (LightGBM needs "
                       f"{MIN_REPEAT_BUYERS:,})")
    if report.history_days < MIN_HISTORY_DAYS:
        reasons.append(f"only {report.history_days} days of history (LightGBM needs "
                       f"{MIN_HISTORY_DAYS})")
    if report.training_origins == 0:
        reasons.append(f"no training origin has a known {config.horizon_days}-day outcome in "
                       f"{report.history_days} days of history")
    backtest_days = report.history_days - config.horizon_days
    if not reasons and (backtest_days < MIN_HISTORY_DAYS
                        or origins_for(backtest_days, config.horizon_days, config) == 0):
        # Each task keeps LightGBM only when it beats the others on the backtest, itself a fit
        # at as_of - horizon: with too short a history there, LightGBM is fitted and never used
        # (UCI Online Retail at 2011-06-01: 182 days, a backtest with 92).
        reasons.append(f"the backtest at {report.as_of - timedelta(days=config.horizon_days)} "
                       f"has only {max(backtest_days, 0)} days of history (LightGBM needs "
                       f"{MIN_HISTORY_DAYS} there to be measured against the baselines)")
    report.reasons = reasons
    report.plan = ("probabilistic models (BG/NBD, MBG/NBD or Pareto/NBD, chosen on the history)" if reasons
                   else f"LightGBM models on {report.training_origins} origins, each task "
                   "checked against the probabilistic model and a simple baseline")
    fits = [h for h in _HORIZON_CHOICES if origins_for(report.history_days, h, config) >= 2]
    report.suggested_horizon_days = fits[0] if fits else None


def report_lines(report: DataReport) -> list[tuple[str, str]]:
    """(label, value) rows for a terminal table."""
    rows = [
        ("source", report.source),
        ("encoding", report.encoding),
        ("lines read", f"{report.rows_read:,}"),
        *([("empty rows and totals rows (no data; left out)",
            f"{report.empty_rows:,} / {report.totals_rows:,}")]
          if report.empty_rows or report.totals_rows else []),
        ("lines rejected", f"{report.rows_rejected:,}" + (
            " (" + "; ".join(f"{n:,} {why}" for why, n in report.rejected.items()) + ")"
            if report.rejected else "")),
        ("duplicated lines (kept; --drop-duplicates drops them)", f"{report.duplicated_lines:,}"),
        ("ids written as floats (17850.0 -> 17850)", f"{report.float_ids_rewritten:,}"),
        *([("cancelled lines (status; left out, not purchases)", f"{report.cancelled_lines:,}"),
           ("returned lines (status; read as refunds)", f"{report.returned_lines:,}")]
          if report.cancelled_lines or report.returned_lines else []),
        ("lines on or after the as-of date (not used)", f"{report.lines_after_as_of:,}" + (
            " ({} .. {})".format(*report.after_as_of_range) if report.after_as_of_range else "")),
        ("as of", str(report.as_of)),
        ("lines before it", f"{report.lines:,}"),
        ("date range", f"{report.first_day} .. {report.last_day} ({report.history_days} days)"),
        ("customers with a purchase", f"{report.customers:,}"),
        *([("customers without one (orders netting to zero or less; not scored)",
            f"{report.customers_without_purchase:,}")] if report.customers_without_purchase else []),
        ("orders (purchases)", f"{report.orders:,}"),
        ("orders per customer: mean / median",
         f"{report.orders_per_customer_mean:.2f} / {report.orders_per_customer_median:.0f}"),
        ("repeat buyers", f"{report.repeat_buyers:,} ({report.repeat_share:.1%})"),
        ("median days between a customer's orders",
         "-" if report.median_days_between_orders is None
         else f"{report.median_days_between_orders:.0f}"),
        ("refunds and cancellations (orders netting below zero)", f"{report.refund_orders:,}"),
        ("orders netting to zero (free or fully returned; not visits)", f"{report.zero_orders:,}"),
        ("negative lines (returns, adjustments)", f"{report.negative_lines:,}"),
        ("zero-price lines", f"{report.zero_price_lines:,}"),
        ("order ids / products / channels",
         " / ".join("yes" if flag else "no"
                    for flag in (report.has_order_ids, report.has_products, report.has_channels))),
        ("retain will train", report.plan),
    ]
    rows += [("  because", reason) for reason in report.reasons]
    rows.append((f"training origins for a {report.horizon_days}-day horizon",
                 str(report.training_origins)))
    if report.suggested_horizon_days and report.suggested_horizon_days != report.horizon_days:
        rows.append(("suggested horizon", (f"{report.suggested_horizon_days} days "
                     "(the longest with at least two training origins)")))
    return rows
