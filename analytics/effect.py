"""The measured effect of the messages: treated customers against the global control group.

``measure_effect(transactions, contacts, start, end, ...)`` answers the question a CRM team is
asked every month, "what did our messages earn, and is it real?", one row per period, split and
metric (:data:`EFFECT_COLUMNS`).

Who is compared, per period (a calendar month or quarter inside ``[start, end)``):

* **treated**: customers with at least one message actually sent in the period (a contacts-log
  row with ``control`` false);
* **control**: customers of the global control group the log marks in the period (rows with
  ``control`` true and no sent row: the campaign would have written to them, and did not).
  Both sides are chosen by the same campaigns, so they are alike but for the messages; a
  customer with a sent row counts as treated even if another row marks them control.

The outcome window is the period itself: each customer's net revenue, purchase orders and
whether they bought at all (``buyers``, 0 or 1) between the period's first and last day
(orders as :func:`retain.features.orders.orders` nets them). The difference of the two groups'
means is the effect per treated customer; its ``confidence`` interval (90% by default) is a
percentile bootstrap resampling both groups independently (``n_boot`` resamples of the Bayesian
bootstrap, seeded: the same inputs give the same interval).

**CUPED** (Deng et al., 2013, "Improving the sensitivity of online controlled experiments by
utilizing pre-experiment data") narrows the interval: each outcome ``y`` is replaced by
``y - theta (x - mean x)`` where ``x`` is the same metric over the ``pre_days`` before the period
and ``theta = cov(x, y) / var(x)`` on both groups pooled. The covariate must not be moved by the
messages themselves, and a global control group is permanent, so the treated customers' past
spend holds the effect of their past messages; ``x`` therefore leaves out every order placed
within ``response_days`` after a message or control row of that customer (the project's
definition of a response, ``channels.response_days`` in the rules), alike on both sides.

``difference`` is that estimate (CUPED's when ``cuped``), not the plain difference of the two
means: on a thin period the two can differ even in sign, so each row also holds
``raw_difference`` = ``treated_mean - control_mean``, what was measured, and the command shows
both. Per row: ``relative_lift`` = difference / control mean; on the ``revenue`` rows
``incremental_revenue`` = difference x treated customers and ``romi`` = (incremental revenue x
``margin`` - cost) / cost, the return on the messages' cost in gross profit (``margin`` 1
gives it on revenue); both are null on the ``orders`` and ``buyers`` rows. ``cost`` (the sent
messages' cost in the period and split, from the log) is on every row.

Splits: none (``split`` = ``all``); ``channel`` (a customer counts under every channel that
wrote to them in the period; control customers under the channel their control rows name, or
all of them when the log names none); ``goal`` and ``segment`` from a score run's decisions
(``assignments``: ``customer_id, segment, goal`` and the inputs of :func:`planned_goals`), where
control customers, whose stored goal is ``control``, are compared under the goal the rules
would have given them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import polars as pl

from retain.decisions.channels import period_label
from retain.features.orders import Frame, midnight, orders

__all__ = [
    "EFFECT_COLUMNS",
    "EFFECT_SCHEMA",
    "METRICS",
    "MIN_GROUP",
    "PERIOD_DATES",
    "RAW_DIFFERENCE",
    "SPLITS",
    "EffectError",
    "measure_effect",
    "period_bounds",
    "planned_goals",
    "too_small",
    "unmatched_customers",
    "with_raw_difference",
]

METRICS = ("revenue", "orders", "buyers")
SPLITS = ("goal", "channel", "segment")
ALL = "all"
EFFECT_SCHEMA = {
    "period": pl.String, "split": pl.String, "metric": pl.String,
    "treated_customers": pl.Int64, "control_customers": pl.Int64,
    "treated_mean": pl.Float64, "control_mean": pl.Float64, "difference": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "relative_lift": pl.Float64,
    "incremental_revenue": pl.Float64, "cost": pl.Float64, "romi": pl.Float64,
}
EFFECT_COLUMNS = tuple(EFFECT_SCHEMA)
# After the 14 columns: the days a row covers, first and last (inclusive). A period cut
# by --from or --to keeps its calendar label (2026-Q1) and says here it covers only March.
PERIOD_DATES = ("period_start", "period_end")
# Last: the plain difference of the two means, as measured (``difference`` is CUPED's estimate
# of it, which can differ in sign where the interval is wide). Not stored: derived from the
# means wherever rows are read back (serving.effect_store).
RAW_DIFFERENCE = "raw_difference"
_OUTPUT_SCHEMA = {**EFFECT_SCHEMA, "period_start": pl.Date, "period_end": pl.Date,
                  RAW_DIFFERENCE: pl.Float64}
_ROW_SCHEMA = {k: v for k, v in _OUTPUT_SCHEMA.items() if k != RAW_DIFFERENCE}
Period = Literal["month", "quarter"]
# Above this many weights per group (customers x resamples) the bootstrap draws its means from
# their normal limit instead: the same interval to within a few parts in a thousand for groups
# that large, at a fraction of the time.
_EXACT_BOOTSTRAP_LIMIT = 40_000_000
# Fewer customers than this on either side and the interval is left null: a bootstrap of a
# handful of control customers draws a narrow interval around a guess (one customer's spend).
MIN_GROUP = 30
_CHUNK_WEIGHTS = 4_000_000


class EffectError(ValueError):
    """The effect cannot be measured from what was given; the message says what is missing."""


@dataclass(frozen=True)
class _Group:
    y: np.ndarray  # (n, 3): revenue, orders, buyer in the period
    x: np.ndarray  # (n, 3): the CUPED covariates (pre-period revenue, orders, orders)


def period_bounds(start: date, end: date, by: Period) -> list[tuple[str, date, date]]:
    """Calendar periods covering ``[start, end)``, each clipped to it: ``(label, first day,
    day after the last)``; labels ``2026-03`` for months and ``2026-Q1`` for quarters."""
    if by not in ("month", "quarter"):
        raise EffectError(f"by: expected month or quarter, got {by!r}")
    if end <= start:
        raise EffectError(f"the period is empty: --to {end} is not after --from {start}")
    step = 3 if by == "quarter" else 1
    month = (start.month - 1) // step * step + 1
    first = date(start.year, month, 1)
    periods = []
    while first < end:
        index = first.year * 12 + first.month - 1 + step
        following = date(index // 12, index % 12 + 1, 1)
        periods.append((first, max(first, start), min(following, end)))
        first = following
    # Labelled by the one rule `retain channels` and GET /v1/channels use too.
    firsts = pl.lit(pl.Series([p[0] for p in periods], dtype=pl.Date))
    labels = pl.select(period_label(firsts, by)).to_series().to_list()
    return [(label, *p[1:]) for label, p in zip(labels, periods, strict=True)]


def planned_goals(assignments: pl.DataFrame, *, replenish_within_days: int,
                  none_below_churn_probability: float) -> pl.Series:
    """Each customer's goal, with the goal the rules would have given the control group.

    ``assignments``: a score run's rows (``goal, lifecycle_stage, value_tier, as_of,
    due_product_date, churn_probability``). The control group's stored goal is ``control``;
    the others keep theirs. For control customers the rules' order is replayed on the stored
    columns (decisions.decide): lost -> win back (VIP tier; the decisions' "top past spenders"
    is not stored, the tier is its nearest stored stand-in) or none; sleeping -> reactivate;
    new -> onboard; a product due within ``replenish_within_days`` -> replenish; at risk ->
    reactivate; VIP -> keep VIP; churn probability below the threshold -> none; else
    cross-sell.
    """
    stage, due = pl.col("lifecycle_stage"), pl.col("due_product_date")
    due_soon = (due - pl.col("as_of")).dt.total_days() <= replenish_within_days
    replayed = (
        pl.when((stage == "lost") & (pl.col("value_tier") == "vip")).then(pl.lit("win_back"))
        .when(stage == "lost").then(pl.lit("none"))
        .when(stage == "sleeping").then(pl.lit("reactivate"))
        .when(stage == "new").then(pl.lit("onboard"))
        .when(due_soon.fill_null(False)).then(pl.lit("replenish"))
        .when(stage == "at_risk").then(pl.lit("reactivate"))
        .when(pl.col("value_tier") == "vip").then(pl.lit("keep_vip"))
        .when(pl.col("churn_probability") < none_below_churn_probability).then(pl.lit("none"))
        .otherwise(pl.lit("cross_sell"))
    )
    return assignments.select(
        pl.when(pl.col("goal") == "control").then(replayed).otherwise(pl.col("goal"))
        .alias("goal")).to_series()


def measure_effect(
    transactions: Frame,
    contacts: Frame,
    start: date,
    end: date,
    *,
    by: Period = "month",
    split: str | None = None,
    assignments: pl.DataFrame | None = None,
    margin: float = 1.0,
    response_days: int = 7,
    pre_days: int = 90,
    cuped: bool = True,
    n_boot: int = 1000,
    confidence: float = 0.9,
    seed: int = 0,
    min_group: int = MIN_GROUP,
) -> pl.DataFrame:
    """One row per period, split and metric with :data:`EFFECT_COLUMNS` (module doc), then
    :data:`PERIOD_DATES`: the first and last day (inclusive) the row covers, the calendar
    period clipped to ``[start, end)``, then :data:`RAW_DIFFERENCE` (the means' plain
    difference, as measured; ``difference`` is CUPED's estimate of it when ``cuped``).

    ``transactions``: contract-typed lines (``customer_id, order_id, ts, amount [, quantity]``);
    ``contacts``: the contacts log (``customer_id, ts, channel, cost, control``);
    ``assignments``: ``customer_id`` with ``segment`` (for ``split="segment"``) or ``goal``
    already replayed for the control group (:func:`planned_goals`, for ``split="goal"``);
    with an ``as_of`` column it may hold several score runs, and each period reads the
    latest run on or before its first day (else the earliest).
    ``min_group``: with fewer treated or control customers than this in a row, its
    ``ci_low``/``ci_high`` stay null (the means and difference are still given; :func:`too_small`
    counts such rows).
    Raises :class:`EffectError` when the inputs cannot answer (no messages or no control
    customers in the span, a goal or segment split without assignments).
    """
    if split is not None and split not in SPLITS:
        raise EffectError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if not 0 < confidence < 1:
        raise EffectError(f"confidence must be between 0 and 1, got {confidence}")
    periods = period_bounds(start, end, by)
    if split in ("goal", "segment"):
        if assignments is None or split not in assignments.columns:
            raise EffectError(
                f"--split {split} needs each customer's {split} from a score run (the score "
                f"store of `retain score`); none was given")
        runs = [pl.col("as_of")] if "as_of" in assignments.columns else []
        assignments = assignments.select(
            pl.col("customer_id").cast(pl.String), pl.col(split).cast(pl.String).alias("key"),
            *runs,
        )

    log = contacts.lazy().select(
        pl.col("customer_id").cast(pl.String), "ts", pl.col("channel").cast(pl.String),
        pl.col("cost").cast(pl.Float64).fill_null(0.0), pl.col("control").cast(pl.Boolean),
    ).collect()
    in_span = log.filter((pl.col("ts") >= midnight(start)) & (pl.col("ts") < midnight(end)))
    if in_span.filter(~pl.col("control")).height == 0:
        raise EffectError(f"the contacts log has no message sent between {start} and {end}: "
                          "nothing to measure")
    if in_span.filter(pl.col("control")).height == 0:
        raise EffectError(
            f"the contacts log marks no control customer between {start} and {end}: the effect "
            "is measured against the global control group, whose customers must appear in the "
            "log with control = true for the campaigns that left them out")
    purchases = _orders(transactions)
    known = in_span.select("customer_id").unique().join(
        purchases.select("customer_id").unique(), on="customer_id")
    if known.height == 0:
        raise EffectError(
            "no customer of the contacts log has an order in the transactions: both files "
            "must name customers with the same ids (a prefix or a different id column?)")
    # Only the orders of the covariate windows (pre_days before each period) are read from it.
    masked = _outside_responses(
        purchases.filter(pl.col("ts") >= midnight(start - timedelta(days=pre_days))),
        log, response_days)

    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for label, first, after in periods:
        keys = _keys_in_force(assignments, first)
        units = _units(in_span, first, after, split, keys)
        if units.height == 0:
            continue
        outcomes = _outcomes(purchases, masked, units, first, after, pre_days)
        dates = {"period_start": first, "period_end": after - timedelta(days=1)}
        rows.extend({**row, **dates} for row in _period_rows(
            label, outcomes, in_span, first, after, split, keys, margin=margin, cuped=cuped,
            n_boot=n_boot, confidence=confidence, rng=rng, min_group=min_group))
    return with_raw_difference(
        pl.DataFrame(rows, schema=_ROW_SCHEMA, orient="row")
        if rows else pl.DataFrame(schema=_ROW_SCHEMA))


def with_raw_difference(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with :data:`RAW_DIFFERENCE` = ``treated_mean - control_mean`` last: what was
    measured, beside ``difference`` (CUPED's estimate when ``--cuped``)."""
    return rows.with_columns(
        (pl.col("treated_mean") - pl.col("control_mean")).alias(RAW_DIFFERENCE))


def _keys_in_force(assignments: pl.DataFrame | None, first: date) -> pl.DataFrame | None:
    """``customer_id, key`` from the run in force at the period's start: of several runs
    (an ``as_of`` column), the latest on or before ``first``, else the earliest."""
    if assignments is None:
        return None
    if "as_of" in assignments.columns:
        runs = assignments.get_column("as_of").unique().sort()
        before = runs.filter(runs <= first)
        chosen = before.max() if before.len() else runs.min()
        assignments = assignments.filter(pl.col("as_of") == chosen)
    return assignments.select("customer_id", "key").unique("customer_id", keep="first")


def _orders(transactions: Frame) -> pl.DataFrame:
    """Per order: ``customer_id, ts, amount, is_purchase`` (returns netted within the order)."""
    lines = transactions.lazy()
    if "quantity" not in lines.collect_schema().names():
        lines = lines.with_columns(pl.lit(None, pl.Float64).alias("quantity"))
    if "channel" not in lines.collect_schema().names():
        lines = lines.with_columns(pl.lit(None, pl.String).alias("channel"))
    return (orders(lines.with_columns(pl.col("customer_id").cast(pl.String)))
            .select("customer_id", "ts", "amount", "is_purchase").sort("ts").collect())


def _outside_responses(purchases: pl.DataFrame, log: pl.DataFrame,
                       response_days: int) -> pl.DataFrame:
    """The orders no message can have caused: none placed within ``response_days`` after a
    row of the log (sent or control, so both groups lose alike)."""
    marks = log.select("customer_id", pl.col("ts").alias("contact_ts")).sort("contact_ts")
    # join_asof needs each side sorted by time; polars cannot check it within each customer.
    return (
        purchases.join_asof(marks, left_on="ts", right_on="contact_ts", by="customer_id",
                            strategy="backward", check_sortedness=False)
        .filter(pl.col("contact_ts").is_null()
                | (pl.col("ts") - pl.col("contact_ts") >= pl.duration(days=response_days)))
        .drop("contact_ts")
    )


def _units(log: pl.DataFrame, first: date, after: date, split: str | None,
           assignments: pl.DataFrame | None) -> pl.DataFrame:
    """``customer_id, key, treated`` for the period: who is compared under which split key."""
    rows = log.filter((pl.col("ts") >= midnight(first)) & (pl.col("ts") < midnight(after)))
    treated = rows.group_by("customer_id").agg((~pl.col("control")).any().alias("treated"))
    if split == "channel":
        keyed = (
            rows.join(treated, on="customer_id")
            # A treated customer counts under the channels that wrote; a control customer
            # under the channels of their control rows.
            .filter(pl.col("treated") != pl.col("control"))
            .select("customer_id", pl.col("channel").alias("key"), "treated").unique()
        )
    elif split in ("goal", "segment"):
        assert assignments is not None
        keyed = (treated.join(assignments, on="customer_id", how="left")
                 .with_columns(pl.col("key").fill_null("unknown")))
    else:
        keyed = treated.with_columns(pl.lit(ALL).alias("key"))
    return keyed.select("customer_id", "key", "treated")


def _outcomes(purchases: pl.DataFrame, masked: pl.DataFrame, units: pl.DataFrame, first: date,
              after: date, pre_days: int) -> pl.DataFrame:
    """``units`` with ``revenue, orders, buyers`` in the period and ``pre_revenue,
    pre_orders`` (outside response windows) over the ``pre_days`` before it."""
    begin, finish = midnight(first), midnight(after)
    pre_begin = midnight(first - timedelta(days=pre_days))
    now = (
        purchases.filter((pl.col("ts") >= begin) & (pl.col("ts") < finish))
        .group_by("customer_id")
        .agg(pl.col("amount").sum().alias("revenue"),
             pl.col("is_purchase").sum().cast(pl.Float64).alias("orders"))
    )
    before = (
        masked.filter((pl.col("ts") >= pre_begin) & (pl.col("ts") < begin))
        .group_by("customer_id")
        .agg(pl.col("amount").sum().alias("pre_revenue"),
             pl.col("is_purchase").sum().cast(pl.Float64).alias("pre_orders"))
    )
    return (
        units.join(now, on="customer_id", how="left").join(before, on="customer_id", how="left")
        .with_columns(pl.col("revenue", "orders", "pre_revenue", "pre_orders").fill_null(0.0))
        .with_columns((pl.col("orders") > 0).cast(pl.Float64).alias("buyers"))
    )


def _period_rows(label: str, outcomes: pl.DataFrame, log: pl.DataFrame, first: date,
                 after: date, split: str | None, assignments: pl.DataFrame | None, *,
                 margin: float, cuped: bool, n_boot: int, confidence: float,
                 rng: np.random.Generator, min_group: int) -> list[dict]:
    costs = _costs(log, first, after, split, assignments)
    # Each customer's bootstrap weight follows their place in the group: in customer order, the
    # same seed gives the same interval (the joins' multi-threaded order differs run to run).
    outcomes = outcomes.sort("key", "customer_id")
    control_all = outcomes.filter(~pl.col("treated"))
    # Control rows without a channel name (a log that records none) compare every channel with
    # the whole control group.
    rows = []
    for (key,), part in sorted(outcomes.group_by("key"), key=lambda item: str(item[0][0])):
        treated = part.filter("treated")
        if treated.height == 0:
            continue  # a key only the control group has (a goal no message went to)
        control = part.filter(~pl.col("treated"))
        if split == "channel" and control.height == 0:
            control = control_all.unique("customer_id")
        cost = costs.get(key, 0.0)
        rows.extend(_compare(label, str(key), _group(treated), _group(control), cost,
                             margin=margin, cuped=cuped, n_boot=n_boot,
                             confidence=confidence, rng=rng, min_group=min_group))
    return rows


def _costs(log: pl.DataFrame, first: date, after: date, split: str | None,
           assignments: pl.DataFrame | None) -> dict[str, float]:
    sent = log.filter(~pl.col("control") & (pl.col("ts") >= midnight(first))
                      & (pl.col("ts") < midnight(after)))
    if split == "channel":
        keyed = sent.with_columns(pl.col("channel").alias("key"))
    elif split in ("goal", "segment"):
        assert assignments is not None
        keyed = (sent.join(assignments, on="customer_id", how="left")
                 .with_columns(pl.col("key").fill_null("unknown")))
    else:
        keyed = sent.with_columns(pl.lit(ALL).alias("key"))
    return dict(keyed.group_by("key").agg(pl.col("cost").sum()).iter_rows())


def _group(frame: pl.DataFrame) -> _Group:
    y = frame.select("revenue", "orders", "buyers").to_numpy().astype(np.float64)
    pre = frame.select("pre_revenue", "pre_orders").to_numpy().astype(np.float64)
    # Buying at all is adjusted by the past orders too: more telling than a past 0/1.
    x = pre.reshape(-1, 2)[:, [0, 1, 1]]
    return _Group(y=y.reshape(-1, 3), x=x)


def _compare(label: str, key: str, treated: _Group, control: _Group, cost: float, *,
             margin: float, cuped: bool, n_boot: int, confidence: float,
             rng: np.random.Generator, min_group: int) -> list[dict]:
    n_t, n_c = len(treated.y), len(control.y)
    mean_t = treated.y.mean(axis=0)
    mean_c = control.y.mean(axis=0) if n_c else np.full(3, np.nan)
    rng = _stream(rng, label, key)
    if n_c == 0:
        difference = low = high = np.full(3, np.nan)
    else:
        moments_t, moments_c = _moments(treated, cuped), _moments(control, cuped)
        difference = _difference(moments_t.mean(axis=0), moments_c.mean(axis=0), n_t, n_c)
        # theta is estimated afresh in every resample: its own uncertainty is in the interval.
        if min(n_t, n_c) < min_group:
            low = high = np.full(3, np.nan)  # too few to judge: no interval, not a narrow one
        else:
            boot = _difference(_bootstrap_means(moments_t, n_boot, rng),
                               _bootstrap_means(moments_c, n_boot, rng), n_t, n_c)
            tail = (1 - confidence) / 2
            low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    rows = []
    for m, metric in enumerate(METRICS):
        lift = difference[m] / mean_c[m] if n_c and mean_c[m] != 0 else None
        incremental = romi = None
        if metric == "revenue" and np.isfinite(difference[m]):
            incremental = float(difference[m] * n_t)
            romi = (incremental * margin - cost) / cost if cost > 0 else None
        rows.append({
            "period": label, "split": key, "metric": metric,
            "treated_customers": n_t, "control_customers": n_c,
            "treated_mean": float(mean_t[m]), "control_mean": _finite(mean_c[m]),
            "difference": _finite(difference[m]), "ci_low": _finite(low[m]),
            "ci_high": _finite(high[m]), "relative_lift": _finite(lift),
            "incremental_revenue": incremental, "cost": float(cost), "romi": romi,
        })
    return rows


def unmatched_customers(transactions: Frame, contacts: Frame, start: date,
                        end: date) -> dict[str, tuple[int, int]]:
    """``{"treated": (without a transaction, all), "control": (...)}``: the customers of the
    log in ``[start, end)`` with no transaction line before ``end``. They are counted in the
    groups, with zero revenue (a subscriber who never bought is a customer the messages may
    win); many of them on both sides lower both means alike, and a large share usually means
    the two files name customers differently."""
    log = contacts.lazy().select(
        pl.col("customer_id").cast(pl.String), "ts", pl.col("control").cast(pl.Boolean))
    in_span = log.filter((pl.col("ts") >= midnight(start)) & (pl.col("ts") < midnight(end)))
    sides = in_span.group_by("customer_id").agg((~pl.col("control")).any().alias("treated"))
    buyers = (transactions.lazy().filter(pl.col("ts") < midnight(end))
              .select(pl.col("customer_id").cast(pl.String)).unique()
              .with_columns(pl.lit(True).alias("known")))
    counts = (
        sides.join(buyers, on="customer_id", how="left")
        .group_by("treated")
        .agg(pl.col("known").is_null().sum().alias("unknown"), pl.len().alias("all"))
        .collect()
    )
    out = {"treated": (0, 0), "control": (0, 0)}
    for treated, unknown, total in counts.iter_rows():
        out["treated" if treated else "control"] = (int(unknown), int(total))
    return out


def too_small(rows: pl.DataFrame, min_group: int = MIN_GROUP) -> int:
    """How many (period, split) comparisons had fewer than ``min_group`` customers on a side
    (their intervals are null)."""
    small = rows.filter((pl.col("treated_customers") < min_group)
                        | (pl.col("control_customers") < min_group))
    return small.select("period", "split").unique().height


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _moments(group: _Group, cuped: bool) -> np.ndarray:
    """Per customer the columns whose means make the estimate: ``y`` and, for CUPED, ``x``,
    ``x**2`` and ``x*y`` (3 metrics each)."""
    if not cuped:
        return group.y
    return np.hstack([group.y, group.x, group.x**2, group.x * group.y])


def _difference(treated: np.ndarray, control: np.ndarray, n_t: int, n_c: int) -> np.ndarray:
    """Treated minus control from the groups' (resampled) means of :func:`_moments`, rows of
    ``(..., 3)`` or ``(..., 12)``. With CUPED the difference is ``(y_t - y_c) - theta (x_t -
    x_c)``, theta = cov(x, y) / var(x) on both groups pooled (Deng et al. 2013)."""
    gap = treated[..., 0:3] - control[..., 0:3]
    if treated.shape[-1] == 3:
        return gap
    pooled = (n_t * treated + n_c * control) / (n_t + n_c)
    y, x, xx, xy = (pooled[..., k:k + 3] for k in (0, 3, 6, 9))
    variance, covariance = xx - x**2, xy - x * y
    theta = np.divide(covariance, variance, out=np.zeros_like(covariance),
                      where=variance > 1e-12 * np.maximum(xx, 1.0))
    return gap - theta * (treated[..., 3:6] - control[..., 3:6])


def _stream(root: np.random.Generator, label: str, key: str) -> np.random.Generator:
    """The bootstrap's generator of one period and split key, from the seed of ``root`` (never
    drawn from): a row's interval depends on the seed alone, not on which other periods or
    keys the same call measured (the report's six months and ``retain effect --from`` one
    month gave the month different intervals)."""
    seed = root.bit_generator.seed_seq
    tag = zlib.crc32(f"{label}\x1f{key}".encode())
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(tag,)))


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` resampled column means of ``values`` (n, k): the Bayesian bootstrap (Rubin,
    1981), each row weighted by an Exp(1) draw, as the usual bootstrap's Poisson(1) counts
    are weights of mean 1 and variance 1, but five times faster to draw (float32)."""
    n = len(values)
    mean = values.mean(axis=0)
    if n * n_boot > _EXACT_BOOTSTRAP_LIMIT:
        spread = values.std(axis=0) / np.sqrt(n)
        return mean + rng.standard_normal((n_boot, 1)) * spread
    # Centred, the float32 product keeps its precision whatever the amounts' size.
    centred = (values - mean).astype(np.float32)
    means = np.empty((n_boot, values.shape[1]))
    chunk = max(1, _CHUNK_WEIGHTS // max(n, 1))
    for begin in range(0, n_boot, chunk):
        weights = rng.standard_exponential((min(chunk, n_boot - begin), n), dtype=np.float32)
        means[begin:begin + len(weights)] = mean + (
            (weights @ centred) / weights.sum(axis=1, keepdims=True)).astype(np.float64)
    return means
