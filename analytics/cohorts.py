"""Cohorts and unit economics: customers grouped by the month of their first purchase or by
their acquisition channel, and what each group bought since.

Input: contract-typed transactions (``customer_id, order_id, ts, amount [, quantity,
channel]``), netted into orders as the features net them (``features.orders``): a purchase is
an order whose net amount is > 0; refunds and cancellations count in revenue, never as orders.
Only lines strictly before ``as_of`` are read (the one as-of rule of every command).

A customer's cohort is fixed by their first purchase:

* ``by="month"``: its calendar month, ``"2025-03"``;
* ``by="channel"``: the ``acquisition_channel`` of the customers table when one with that column
  is given, else the channel of the first purchase (the order's ``channel``: web, app, store,
  ...). Channels are compared in lower case (as the contacts log's are); none known is
  ``(unknown)``.

Per cohort (:attr:`Cohorts.summary`): ``customers``, ``repeat_customers`` and ``repeat_rate``
(two or more purchases before as-of), ``orders`` (purchases), ``aov`` (purchase revenue per
purchase), ``first_order_value``, ``revenue`` (net, refunds included) and
``revenue_per_customer``; ``predicted_clv_12m``, the mean 12-month CLV of the cohort's customers
in a scoring run (``scores``: ``customer_id, clv_12m``, e.g. the score store's latest run as of
the date) and ``scored_customers``; with a costs file (``acquisition_channel, month, spend``):
``spend``, ``acquired``, ``cac = spend / acquired``, ``ltv`` and ``ltv_cac``. CAC and LTV are
of the same customers, those the spend acquired: for channel cohorts, the customers that channel
acquired in the months the costs file covers (a channel's customers of other months count in its
other columns, not in LTV/CAC); for month cohorts, a month's spend over every channel and the
customers first buying that month. ``ltv`` is their mean revenue so far plus their mean
predicted 12-month CLV when there is one. Costs rows that acquired no customer are in
:attr:`Cohorts.unmatched_costs` (:func:`costs_notes` says them).

Per cohort and month since the first purchase (:attr:`Cohorts.curves`; month 0 is the month of
the first purchase, counted in calendar months): ``customers`` observed that long, ``buyers``
(those with a purchase in that month), ``active_share``, ``revenue`` in that month and
``cumulative_revenue_per_customer``. A channel cohort mixes customers acquired in different
months: month k counts only the customers whose k-th month is complete before as-of, so young
customers do not drag the curve down. A month cohort shows its current, partial month too,
marked ``complete = false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import polars as pl

from retain.features.contract import (
    DataError,
    Loaded,
    OnBadRows,
    ReadInfo,
    ReadOptions,
    _apply_map,
    _blank,
    _Check,
    _datetime,
    _line_offset,
    _number,
    _require,
    _text,
    _validate,
    _with_read_info,
    read_table,
)
from retain.features.orders import orders as net_orders
from retain.features.orders import window

__all__ = ["COHORT_BY", "COSTS_REQUIRED", "CURVE_SCHEMA", "SUMMARY_SCHEMA", "UNKNOWN",
           "UNMATCHED_SCHEMA", "Cohorts", "UnmatchedSpend", "cohorts", "cohorts_of_orders",
           "costs_notes", "load_costs", "month_index", "shown_names", "unmatched_spend"]

CohortBy = Literal["month", "channel"]
COHORT_BY: tuple[CohortBy, ...] = ("month", "channel")
COSTS_REQUIRED = ("acquisition_channel", "month", "spend")
UNKNOWN = "(unknown)"

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "cohort": pl.String(), "customers": pl.Int64(), "repeat_customers": pl.Int64(),
    "repeat_rate": pl.Float64(), "orders": pl.Int64(), "aov": pl.Float64(),
    "first_order_value": pl.Float64(), "revenue": pl.Float64(),
    "revenue_per_customer": pl.Float64(), "predicted_clv_12m": pl.Float64(),
    "scored_customers": pl.Int64(), "spend": pl.Float64(), "acquired": pl.Int64(),
    "cac": pl.Float64(), "ltv": pl.Float64(), "ltv_cac": pl.Float64(),
}
UNMATCHED_SCHEMA: dict[str, pl.DataType] = {
    "acquisition_channel": pl.String(), "month": pl.String(), "spend": pl.Float64(),
    "unmatched": pl.String(),  # "channel": no customer has it; "month": none acquired then
}
CURVE_SCHEMA: dict[str, pl.DataType] = {
    "cohort": pl.String(), "month": pl.Int32(), "customers": pl.Int64(), "buyers": pl.Int64(),
    "active_share": pl.Float64(), "revenue": pl.Float64(),
    "cumulative_revenue_per_customer": pl.Float64(), "complete": pl.Boolean(),
}


@dataclass(frozen=True)
class Cohorts:
    """Cohort figures at ``as_of``: one row per cohort (``summary``) and one per cohort and
    month since the first purchase (``curves``). ``channel_source`` says where a channel
    cohort's channel came from (None for month cohorts)."""

    by: CohortBy
    as_of: date
    summary: pl.DataFrame
    curves: pl.DataFrame
    channel_source: str | None = None
    # The costs rows no customer matches (:data:`UNMATCHED_SCHEMA`; None without a costs file).
    unmatched_costs: pl.DataFrame | None = None


def month_index(column: str | pl.Expr) -> pl.Expr:
    """Calendar months since year 0 (``year * 12 + month - 1``) of a date or datetime column,
    so that months subtract."""
    expr = pl.col(column) if isinstance(column, str) else column
    return (expr.dt.year().cast(pl.Int32) * 12 + expr.dt.month().cast(pl.Int32) - 1)


def _month_label(index: pl.Expr) -> pl.Expr:
    return pl.format("{}-{}", (index // 12).cast(pl.String),
                     (index % 12 + 1).cast(pl.String).str.zfill(2))


def _index_of(day: date) -> int:
    return day.year * 12 + day.month - 1


def _first_purchases(orders: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, first_ts, first_month, first_value, first_channel``: each customer's
    first purchase (earliest ts, then order id, so ties resolve the same way every run)."""
    return (orders.filter(pl.col("is_purchase"))
            .sort("customer_id", "ts", "order_id")
            .group_by("customer_id", maintain_order=True)
            .agg(pl.col("ts").first().alias("first_ts"),
                 pl.col("amount").first().alias("first_value"),
                 pl.col("channel").first().alias("first_channel"))
            .with_columns(month_index("first_ts").alias("first_month")))


def _channel_key(expr: pl.Expr) -> pl.Expr:
    text = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(text.is_null() | (text == "")).then(pl.lit(UNKNOWN)).otherwise(text)


def _assign(first: pl.DataFrame, by: CohortBy,
            customers: pl.DataFrame | None) -> tuple[pl.DataFrame, str | None]:
    if by == "month":
        return first.with_columns(_month_label(pl.col("first_month")).alias("cohort")), None
    if customers is not None and "acquisition_channel" in customers.columns:
        table = customers.select("customer_id", "acquisition_channel").unique("customer_id")
        joined = first.join(table, on="customer_id", how="left")
        return (joined.with_columns(_channel_key(pl.col("acquisition_channel")).alias("cohort"))
                .drop("acquisition_channel"), "customers.acquisition_channel")
    return (first.with_columns(_channel_key(pl.col("first_channel")).alias("cohort")),
            "the first purchase's channel")


def _curves(orders: pl.DataFrame, members: pl.DataFrame, by: CohortBy,
            as_of: date) -> pl.DataFrame:
    last_with_data = _index_of(as_of - timedelta(days=1))
    last_complete = _index_of(as_of) - 1
    # A channel cohort mixes acquisition months: only complete months are comparable.
    last = last_with_data if by == "month" else last_complete
    members = members.with_columns((pl.lit(last) - pl.col("first_month")).alias("seen"))
    monthly = (orders.join(members.select("customer_id", "cohort", "first_month", "seen"),
                           on="customer_id")
               .with_columns((month_index("ts") - pl.col("first_month")).clip(0)
                             .alias("month"))
               .group_by("cohort", "seen", "month")
               .agg(pl.col("amount").sum().alias("revenue"),
                    pl.col("customer_id").filter(pl.col("is_purchase")).n_unique()
                    .alias("buyers")))
    sizes = members.group_by("cohort", "seen").agg(pl.len().alias("customers"))
    months = pl.DataFrame({"k": range(max(last - int(members["first_month"].min()), 0) + 1)},
                          schema={"k": pl.Int32})
    observed = (sizes.join(months, how="cross").filter(pl.col("seen") >= pl.col("k"))
                .group_by("cohort", "k").agg(pl.col("customers").sum(),
                                             pl.col("seen").min().alias("youngest")))
    # Revenue up to month k (and buyers in month k) of the customers observed at k.
    grid = (monthly.join(months, how="cross")
            .filter((pl.col("seen") >= pl.col("k")) & (pl.col("month") <= pl.col("k")))
            .group_by("cohort", "k")
            .agg(pl.col("revenue").sum().alias("cumulative"),
                 pl.col("revenue").filter(pl.col("month") == pl.col("k")).sum().alias("revenue"),
                 pl.col("buyers").filter(pl.col("month") == pl.col("k")).sum().alias("buyers")))
    first_months = members.group_by("cohort").agg(pl.col("first_month").max().alias("newest"))
    return (observed.join(grid, on=["cohort", "k"], how="left")
            .join(first_months, on="cohort")
            .select(
                pl.col("cohort"), pl.col("k").alias("month"), pl.col("customers"),
                pl.col("buyers").fill_null(0).cast(pl.Int64),
                (pl.col("buyers").fill_null(0) / pl.col("customers")).alias("active_share"),
                pl.col("revenue").fill_null(0.0),
                (pl.col("cumulative").fill_null(0.0) / pl.col("customers"))
                .alias("cumulative_revenue_per_customer"),
                # A channel cohort counts complete months only.
                ((pl.col("newest") + pl.col("k") <= last_complete) | (by == "channel"))
                .alias("complete"))
            .sort("cohort", "month")
            .cast(CURVE_SCHEMA))  # type: ignore[arg-type]


def _spend(per_customer: pl.DataFrame, by: CohortBy, costs: pl.DataFrame,
           as_of: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``cohort, spend, acquired, ltv`` from the costs of months that began before ``as_of``,
    and the costs rows that acquired no customer (:data:`UNMATCHED_SCHEMA`).

    ``per_customer``: ``customer_id, cohort, first_month, revenue, clv_12m``. ``acquired`` and
    ``ltv`` cover the same customers as ``spend``: those acquired in the months the costs
    cover (for a channel cohort, by that channel in those months; for a month cohort, all its
    customers). ``ltv`` is their mean revenue so far plus their mean predicted 12-month CLV
    (0 where none was scored)."""
    costs = costs.filter(month_index("month") <= _index_of(as_of - timedelta(days=1)))
    costs = costs.with_columns(_channel_key(pl.col("acquisition_channel")).alias("channel"),
                               month_index("month").alias("first_month"))
    if by == "month":
        costs = costs.with_columns(_month_label(pl.col("first_month")).alias("cohort"))
        covered = costs.select("cohort").unique()
        keys = ["cohort"]
    else:
        costs = costs.with_columns(pl.col("channel").alias("cohort"))
        covered = costs.select("cohort", "first_month").unique()
        keys = ["cohort", "first_month"]
    spent = costs.group_by("cohort").agg(pl.col("spend").sum())
    bought = (per_customer.join(covered, on=keys)
              .group_by("cohort")
              .agg(pl.len().alias("acquired"),
                   (pl.col("revenue").mean() + pl.col("clv_12m").mean().fill_null(0.0))
                   .alias("ltv")))
    # Spend no customer matches: a channel none was acquired by, or a month none was acquired
    # in. Left out of CAC (a channel without customers) or counted in its channel's CAC (a
    # month without customers still cost money); the commands say which.
    months = per_customer.select("cohort", "first_month").unique()
    unmatched = (costs.join(months, on=keys, how="anti")
                 .with_columns(pl.col("cohort").is_in(per_customer["cohort"].unique())
                               .not_().alias("no_customers"),
                               # A month cohort's spend is every channel's together.
                               pl.col("channel") if by == "channel"
                               else pl.lit(None, pl.String).alias("channel"))
                 .group_by("channel", "first_month", "no_customers")
                 .agg(pl.col("spend").sum())
                 .select(pl.col("channel").alias("acquisition_channel"),
                         _month_label(pl.col("first_month")).alias("month"), "spend",
                         pl.when(pl.col("no_customers") & (by == "channel"))
                         .then(pl.lit("channel")).otherwise(pl.lit("month")).alias("unmatched"))
                 .sort("unmatched", "acquisition_channel", "month")
                 .cast(UNMATCHED_SCHEMA))  # type: ignore[arg-type]
    return (spent.join(bought, on="cohort", how="left")
            .with_columns(pl.col("acquired").fill_null(0))), unmatched


@dataclass(frozen=True)
class UnmatchedSpend:
    """One kind of costs rows no customer matched, said the same way by the command (in
    English, :func:`costs_notes`) and the report (in the reader's language).

    ``kind`` "channel": channels no customer was acquired by (``names``), left out of CAC and
    LTV/CAC. ``kind`` "month": months with spend and nobody acquired (``names``: "channel
    month" or "month"); ``counted`` says whether the spend stays in its channel's CAC."""

    kind: str
    names: list[str]
    months: int
    spend: float
    counted: bool = False


def unmatched_spend(unmatched: pl.DataFrame | None) -> list[UnmatchedSpend]:
    """The unmatched costs rows (:attr:`Cohorts.unmatched_costs`) by kind: channels and months
    and counts only (no customer's data)."""
    if unmatched is None or unmatched.height == 0:
        return []
    said = []
    lost = unmatched.filter(pl.col("unmatched") == "channel")
    if lost.height:
        said.append(UnmatchedSpend("channel",
                                   sorted(lost["acquisition_channel"].unique().to_list()),
                                   lost.height, float(lost["spend"].sum())))
    empty = unmatched.filter(pl.col("unmatched") == "month")
    if empty.height:
        by_channel = bool(empty["acquisition_channel"].is_not_null().all())
        shown = (empty.select(pl.format("{} {}", "acquisition_channel", "month")) if by_channel
                 else empty.select("month")).to_series().to_list()
        said.append(UnmatchedSpend("month", shown, empty.height, float(empty["spend"].sum()),
                                   counted=by_channel))
    return said


def shown_names(names: list[str], more: str = "and {count:,} more") -> str:
    """The first six names, then how many more."""
    rest = f" {more.format(count=len(names) - 6)}" if len(names) > 6 else ""
    return ", ".join(names[:6]) + rest


def costs_notes(unmatched: pl.DataFrame | None) -> list[str]:
    """One English sentence per kind of unmatched costs rows (:func:`unmatched_spend`)."""
    notes = []
    for said in unmatched_spend(unmatched):
        if said.kind == "channel":
            notes.append(
                f"{_plural(len(said.names), 'channel')} of the costs file acquired no customer "
                f"(no customer has it as acquisition channel): {', '.join(said.names)}; "
                f"spend {said.spend:,.0f} over {_plural(said.months, 'month')} left out "
                "of CAC and LTV/CAC")
        else:
            fate = ("counted in its channel's CAC (spend that acquired no one)" if said.counted
                    else "left out (no cohort to divide it by)")
            notes.append(
                f"{_plural(said.months, 'month')} of the costs file had spend and no customer "
                f"acquired: {shown_names(said.names)}; spend {said.spend:,.0f} {fate}")
    return notes


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def cohorts(transactions: pl.DataFrame | pl.LazyFrame, as_of: date, by: CohortBy = "month",
            customers: pl.DataFrame | None = None, costs: pl.DataFrame | None = None,
            scores: pl.DataFrame | None = None) -> Cohorts:
    """Cohort figures from transactions before ``as_of`` (module docstring: what each column
    means). ``customers``: the customers table (its ``acquisition_channel`` is used for
    ``by="channel"``); ``costs``: as :func:`load_costs` returns it; ``scores``:
    ``customer_id, clv_12m``."""
    orders = net_orders(window(transactions, None, as_of)).collect()
    return cohorts_of_orders(orders, as_of, by, customers, costs, scores)


def cohorts_of_orders(orders: pl.DataFrame, as_of: date, by: CohortBy = "month",
                      customers: pl.DataFrame | None = None, costs: pl.DataFrame | None = None,
                      scores: pl.DataFrame | None = None) -> Cohorts:
    """:func:`cohorts` from orders already netted (``features.orders.orders`` of the lines
    before ``as_of``), so that month and channel cohorts net the lines once."""
    if by not in COHORT_BY:
        raise ValueError(f"by must be one of {', '.join(COHORT_BY)}, not {by!r}")
    first = _first_purchases(orders)
    members, source = _assign(first, by, customers)
    if members.height == 0:
        empty = pl.DataFrame(schema=SUMMARY_SCHEMA)
        return Cohorts(by, as_of, empty, pl.DataFrame(schema=CURVE_SCHEMA), source)
    mine = orders.join(members.select("customer_id", "cohort"), on="customer_id")
    per_customer = (mine.group_by("customer_id", "cohort")
                    .agg(pl.col("is_purchase").sum().alias("purchases"),
                         pl.col("amount").filter(pl.col("is_purchase")).sum()
                         .alias("purchase_revenue"),
                         pl.col("amount").sum().alias("revenue"))
                    .join(first.select("customer_id", "first_value"), on="customer_id"))
    if scores is not None and scores.height:
        clv = scores.select("customer_id", "clv_12m").unique("customer_id")
        per_customer = per_customer.join(clv, on="customer_id", how="left")
    else:
        per_customer = per_customer.with_columns(pl.lit(None, pl.Float64).alias("clv_12m"))
    summary = (per_customer.group_by("cohort")
               .agg(pl.len().alias("customers"),
                    (pl.col("purchases") >= 2).sum().alias("repeat_customers"),
                    pl.col("purchases").sum().alias("orders"),
                    pl.col("purchase_revenue").sum().alias("purchase_revenue"),
                    pl.col("first_value").mean().alias("first_order_value"),
                    pl.col("revenue").sum(),
                    pl.col("clv_12m").mean().alias("predicted_clv_12m"),
                    pl.col("clv_12m").is_not_null().sum().alias("scored_customers"))
               .with_columns((pl.col("repeat_customers") / pl.col("customers"))
                             .alias("repeat_rate"),
                             (pl.col("purchase_revenue") / pl.col("orders")).alias("aov"),
                             (pl.col("revenue") / pl.col("customers"))
                             .alias("revenue_per_customer")))
    unmatched = None
    if costs is not None:
        spent, unmatched = _spend(
            per_customer.join(members.select("customer_id", "first_month"), on="customer_id"),
            by, costs, as_of)
        # LTV and CAC of the same customers: those the costs' months acquired (_spend).
        summary = summary.join(spent, on="cohort", how="left")
        cac = pl.when(pl.col("acquired") > 0).then(pl.col("spend") / pl.col("acquired"))
        summary = summary.with_columns(cac.alias("cac"))
        summary = summary.with_columns(
            pl.when(pl.col("cac") > 0).then(pl.col("ltv") / pl.col("cac")).alias("ltv_cac"))
    else:
        summary = summary.with_columns(
            *(pl.lit(None, SUMMARY_SCHEMA[c]).alias(c)
              for c in ("spend", "acquired", "cac", "ltv", "ltv_cac")))
    summary = (summary.select(list(SUMMARY_SCHEMA)).cast(SUMMARY_SCHEMA)  # type: ignore[arg-type]
               .sort("cohort") if by == "month"
               else summary.select(list(SUMMARY_SCHEMA)).cast(SUMMARY_SCHEMA)  # type: ignore[arg-type]
               .sort(["customers", "cohort"], descending=[True, False]))
    return Cohorts(by, as_of, summary, _curves(orders, members, by, as_of), source, unmatched)


# ---------------------------------------------------------------------------------------------
# The costs file


_MONTH_NAMES = {name: f"{number:02d}" for number, names in enumerate((
    ("янв", "jan"), ("фев", "feb"), ("мар", "mar"), ("апр", "apr"), ("май", "мая", "may"),
    ("июн", "jun"), ("июл", "jul"), ("авг", "aug"), ("сен", "sep"), ("окт", "oct"),
    ("ноя", "nov"), ("дек", "dec")), start=1) for name in names}


def _month(frame: pl.DataFrame, column: str) -> pl.Expr:
    """``2025-03``, ``2025-03-01``, ``03.2025``, ``мар.25``, ``Март 2025``, ``Mar-25`` or any
    date the contract reads -> the first day of its month (a Date); unreadable -> null."""
    if frame.schema[column] in (pl.Date,) or isinstance(frame.schema[column], pl.Datetime):
        return _datetime(frame, column).dt.truncate("1mo").dt.date()
    text = _text(column)
    # A month by its name, as Excel shows a month cell (Russian "янв.26", "Январь 2026";
    # English "Jan-26", "January 2026"): the name's first three letters and the year.
    named = text.str.to_lowercase().str.extract_groups(
        r"^(?<name>[a-zа-яё]{3})[a-zа-яё]*\.?[\s\-]*(?<year>\d{4}|\d{2})$")
    month = named.struct.field("name").replace_strict(_MONTH_NAMES, default=None,
                                                      return_dtype=pl.String)
    year = named.struct.field("year")
    year = pl.when(year.str.len_chars() == 2).then("20" + year).otherwise(year)
    year_month = pl.coalesce(
        (text + "-01").str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        ("01." + text).str.strptime(pl.Date, "%d.%m.%Y", strict=False),
        (text + "/01").str.strptime(pl.Date, "%Y/%m/%d", strict=False),
        (year + "-" + month + "-01").str.strptime(pl.Date, "%Y-%m-%d", strict=False),
    )
    return pl.coalesce(year_month, _datetime(frame, column).dt.date()).dt.truncate("1mo")


def load_costs(source: str | Path, *, column_map: Mapping[str, str] | None = None,
               on_bad_rows: OnBadRows = "fail", rejects_path: Path | None = None,
               query: str | None = None, options: ReadOptions | None = None) -> Loaded:
    """Read the acquisition costs: ``acquisition_channel, month, spend`` (CSV, Excel,
    Parquet or a database URL, as the other tables), one row per channel and month (rows repeating a
    channel and month are added up). ``month`` is ``2025-03`` or any date in the month;
    ``spend`` a number >= 0 (``1 234,50`` reads). Bad rows get the contract's one error naming
    the file, the column and the lines; ``on_bad_rows="skip"`` writes them to ``rejects_path``.
    Returns ``_row, acquisition_channel, month (Date, first of the month), spend``."""
    name, info = str(source), ReadInfo()
    read = ReadOptions(encoding=options.encoding) if options else None
    raw = _apply_map(read_table(source, query or "SELECT * FROM costs", read, info),
                     column_map or {}, name)
    _require(raw, COSTS_REQUIRED, name, "costs")
    parsed: dict[str, pl.Expr] = {
        "acquisition_channel": _text("acquisition_channel"),
        "month": _month(raw, "month"),
        "spend": _number(raw, "spend"),
    }
    checks = [
        _Check("acquisition_channel", "missing channel", _blank("__acquisition_channel")),
        _Check("month", "unparseable month (expected e.g. 2025-03)", pl.col("__month").is_null()),
        _Check("spend", "not a number", pl.col("__spend").is_null()),
        _Check("spend", "negative spend", pl.col("__spend") < 0),
    ]
    # What reading found (a title, empty rows, a totals row, the encoding) is said, as for
    # the other tables.
    loaded = _with_read_info(
        _validate(raw, parsed, checks, source=name, on_bad_rows=on_bad_rows,
                  rejects_path=rejects_path, line_offset=_line_offset(name)), info, name)
    if loaded.frame.height == 0:
        raise DataError(f"{name}: no costs rows" + (" left after rejecting bad rows"
                                                    if loaded.report.rows_rejected else ""))
    return loaded
