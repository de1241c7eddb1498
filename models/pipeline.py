"""The scoring pipeline: raw transactions and an as-of date in, one row of scores per customer.

Features (``features/``) -> BTYD outputs -> LightGBM churn, revenue and timing -> the score
columns below. Training (``training/``) fits the parts; batch scoring and the API call
:meth:`ScoringPipeline.score`, so both compute exactly the same numbers.

Output, one row per customer with a purchase before the as-of date::

    customer_id, as_of, horizon_days, p_alive, churn_probability, expected_orders,
    predicted_revenue, clv_12m, next_order_date, next_order_p10, next_order_p90,
    overdue_days, due_product_id, due_product_date, score_source

``score_source`` is the churn score's model per customer: ``gbm`` (``gbm_one_order`` for a
single order), ``btyd`` or ``baseline``; revenue and timing follow ``ScoringPipeline.choice``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from retain.features import segments as _segments
from retain.features.customers import customer_features
from retain.features.orders import Frame
from retain.features.products import product_candidates
from retain.features.segments import (
    NUMPY_MAX_LINES,
    changes,
    changes_in,
    date_column,
    float_column,
    frame,
    lines_before,
    name_column,
    string_column,
    take,
)
from retain.models._gbm import GBMEstimator
from retain.models.btyd import BTYDModel
from retain.models.churn import ChurnClassifier
from retain.models.due_product import DueProductRanker
from retain.models.timing import NextOrderRegressor
from retain.models.uplift import OfferUpliftModel
from retain.models.value import RevenueRegressor

if TYPE_CHECKING:
    from retain.decisions.channels import ChannelMeasurements
    from retain.decisions.segments import ShopReference

SCORE_COLUMNS = (
    "customer_id", "as_of", "horizon_days", "p_alive", "churn_probability", "expected_orders",
    "predicted_revenue", "clv_12m", "next_order_date", "next_order_p10", "next_order_p90",
    "overdue_days", "due_product_id", "due_product_date", "score_source",
)
# Bumped whenever a fitted part's meaning changes: a pickled pipeline is only valid with the
# code it was fitted with.
PIPELINE_FORMAT = 6  # 6: classes under the one ``retain`` namespace (``retain.models.pipeline``)
TASKS = ("churn", "value", "timing")
# Simplest first: on a tie (a difference within noise) the simpler model is used.
MODEL_KINDS = ("baseline", "btyd", "gbm")
# A product bought at least twice and not overdue beyond this many of its own intervals is
# still in use; beyond it the customer has most likely switched.
DUE_PRODUCT_MAX_OVERDUE = 3.0
CLV_SCALE_BOUNDS = (0.25, 4.0)
# The API scores requests up to this size inline (serving.routes.scores); the scores do not
# depend on it: features and due products are one implementation at any size.
SMALL_BATCH_MAX_CUSTOMERS = 64
SMALL_BATCH_MAX_LINES = 2_000


def with_btyd(features: pl.DataFrame, btyd: BTYDModel, horizon_days: int, as_of: date) -> pl.DataFrame:
    """Add the probabilistic model's outputs (and the season) as model inputs."""
    outputs = btyd.predict_arrays(features, horizon_days)
    # hstack, not with_columns: no query to plan (which costs more than this on small frames).
    return features.hstack([
        _floats("btyd_p_alive", outputs["p_alive"]),
        _floats("btyd_p_no_order", outputs["p_no_order"]),
        _floats("btyd_expected_orders", outputs["expected_orders"]),
        _floats("btyd_expected_revenue", outputs["expected_revenue"]),
        _floats("btyd_clv_12m", outputs["clv_12m"]),
        _int32s("as_of_month", np.full(features.height, as_of.month, np.int32)).cast(pl.Int8),
    ])


def due_products(products: pl.DataFrame, as_of: date, ranker: DueProductRanker | None = None,
                 customer_ids: pl.Series | None = None) -> pl.DataFrame:
    """Per customer, the product most likely in the next order and when it runs out:
    ``customer_id, due_product_id, due_product_date``, one row per customer in ``products``
    or, given ``customer_ids`` (sorted), one row per id in that order (nulls for an id without
    products).

    ``products``: ``features.products.product_candidates`` (sorted by customer). With a
    ``ranker`` (``models.due_product``), its top-scored candidate (ties to the most bought);
    without one, the customer's most bought product (``purchase_rank`` 1: most lines, ties to
    the smallest id): on simulated shops the previous rule (products bought twice, weighted by
    their own cadence) lost to it. ``due_product_date`` is the product's own next due date,
    never before the as-of date, and null when it has no cadence (bought on one day) or is
    overdue beyond ``DUE_PRODUCT_MAX_OVERDUE`` of its intervals (the customer has most likely
    switched).
    """
    rank = products.get_column("purchase_rank").to_numpy()
    if ranker is None:
        chosen = np.flatnonzero(rank == 1)  # one per customer
    else:
        # Non-candidates (NaN) never win: the most bought product is always a candidate.
        score = ranker.scores(products)
        owner = np.cumsum(_runs(products.get_column("customer_id"))) - 1
        rows = (~np.isnan(score)).nonzero()[0]
        rows = rows[np.lexsort((rank[rows], -score[rows], owner[rows]))]
        chosen = rows[changes(owner[rows])]
    overdue = products.get_column("overdue_ratio").to_numpy()[chosen]
    next_due = products.get_column("next_due").cast(pl.Int32).to_numpy()[chosen]
    with np.errstate(invalid="ignore"):
        in_use = overdue <= DUE_PRODUCT_MAX_OVERDUE  # NaN (no cadence): not in use
    # Day numbers from an integer column: NaN (null) is the only non-finite value, so this is
    # np.nan_to_num without its checks for infinities.
    when = np.where(in_use, np.maximum(np.where(np.isnan(next_due), 0.0, next_due), _day(as_of)),
                    np.nan)
    ids = take(products.get_column("customer_id"), chosen)
    # Align: a sorted merge, no join to plan; nothing to do when the ids are the same (the
    # API's one customer with products).
    if customer_ids is not None and not ids.equals(customer_ids):
        found, has = _sorted_lookup(ids, customer_ids)
        chosen = np.append(chosen, -1)[np.where(has, found, len(ids))]
        when = np.append(when, np.nan)[np.where(has, found, len(ids))]
        ids = customer_ids
    return frame([
        ids.alias("customer_id"),
        name_column("due_product_id", products.get_column("product_id"), chosen),
        date_column("due_product_date", when),
    ])


def _day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _runs(values: pl.Series) -> np.ndarray:
    """``changes_in(values)`` (nulls equal to each other). A request's few values are compared
    in numpy as Python objects: ~2 us against ~40 us for the polars comparison's query."""
    if len(values) > NUMPY_MAX_LINES:
        return changes_in(values)
    return changes(values.to_numpy())  # object array: None != None is False, as ne_missing


def _sorted_lookup(ids: pl.Series, wanted: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(position in ids, found)`` of each of ``wanted`` (``ids`` sorted and distinct, no
    nulls; a position is meaningful only where found)."""
    if len(ids) + len(wanted) <= NUMPY_MAX_LINES:
        # Python strings compare by code point, as polars sorts strings (UTF-8 byte order):
        # the same positions, without search_sorted's query (~45 us).
        names, asked = ids.to_numpy(), wanted.to_numpy()
        at = np.searchsorted(names, asked)
        found = np.minimum(at, len(ids) - 1) if len(ids) else np.zeros(len(at), np.int64)
        has = (at < len(ids)) & (names[found] == asked) if len(ids) else at < 0
        return found, np.asarray(has, dtype=bool)
    at = np.asarray(ids.search_sorted(wanted), dtype=np.int64)
    found = np.minimum(at, len(ids))
    has = at < len(ids)
    if has.any():
        rows = has.nonzero()[0]
        has[rows] = (take(ids, found[rows]) == take(wanted, rows)).to_numpy()
    return found, has


@dataclass(frozen=True)
class RecencyChurnRule:
    """The marketer's rule "the longer since the last order, the likelier gone", as a
    probability: the churn rate observed per band of days since the last order (training
    origins), interpolated and kept non-decreasing. A hair of slope keeps its ranking exactly
    that of the days, so it scores the AUC the backtest measured for ``recency_days``."""

    days: np.ndarray
    rates: np.ndarray

    @classmethod
    def fit(cls, days_since_last: np.ndarray, churned: np.ndarray, bands: int = 20) -> RecencyChurnRule:
        d = np.asarray(days_since_last, dtype=float)
        y = np.asarray(churned, dtype=float)
        edges = np.unique(np.quantile(d, np.linspace(0, 1, bands + 1)))
        which = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, max(len(edges) - 2, 0))
        counts = np.bincount(which, minlength=len(edges))
        used = counts > 0
        centres = np.bincount(which, weights=d, minlength=len(edges))[used] / counts[used]
        rates = np.bincount(which, weights=y, minlength=len(edges))[used] / counts[used]
        return cls(centres, np.maximum.accumulate(rates))

    def churn_probability(self, days_since_last: np.ndarray) -> np.ndarray:
        d = np.asarray(days_since_last, dtype=float)
        return np.clip(np.interp(d, self.days, self.rates) + 1e-9 * d, 0.0, 1.0)


@dataclass(frozen=True)
class ExpectedOrdersChurn:
    """Churn probability from a BTYD model's expected orders in the horizon, for when ranking
    by expected orders beat ranking by P(no order). One customer at a time (the API scores
    so): a fixed, strictly decreasing logistic map of log expected orders, fitted at training
    to the same model's own P(no order), so its AUC is exactly the expected-orders ranking and
    its level stays close to the model's probability.

    ``kind``: the BTYD kind whose expected orders it reads (``bgnbd``, ``pareto``, ...).
    """

    kind: str
    intercept: float
    slope: float  # < 0: more expected orders, less likely to churn

    # Below this many expected orders the log runs to -700 (BTYD models give 1e-44 to the
    # long gone) and the logistic would round to exactly 1 for all of them, tying their
    # ranks: there the scale is compressed (log of the log), still strictly decreasing.
    KNEE = 1e-6

    @classmethod
    def scale(cls, expected_orders: np.ndarray) -> np.ndarray:
        """log expected orders above ``KNEE``; below it, a slower strictly increasing curve."""
        e = np.maximum(np.asarray(expected_orders, dtype=float), 1e-300)
        knee = np.log(cls.KNEE)
        x = np.log(e)
        return np.where(x >= knee, x, knee - np.log1p(knee - np.minimum(x, knee)))

    @classmethod
    def fit(cls, kind: str, expected_orders: np.ndarray, p_no_order: np.ndarray) -> ExpectedOrdersChurn:
        x = cls.scale(expected_orders)
        p = np.clip(np.asarray(p_no_order, dtype=float), 1e-6, 1 - 1e-6)
        used = np.isfinite(x) & np.isfinite(p)
        slope, intercept = -1.0, 0.0
        if used.sum() >= 2 and np.ptp(x[used]) > 0:
            # Least squares on the logit: a one-line regression, no optimiser.
            slope, intercept = (float(v) for v in np.polyfit(x[used], np.log(p[used] / (1 - p[used])), 1))
        # The ranking must be that of the expected orders, whatever the fit says.
        return cls(kind, intercept, min(slope, -1e-3))

    def churn_probability(self, expected_orders: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.intercept + self.slope * self.scale(expected_orders))))


@dataclass
class ScoringPipeline:
    """Fitted parts plus what scoring needs to reproduce training's inputs.

    ``eligible`` is False when the shop had too little history for the LightGBM models; then
    every score comes from the probabilistic model (``score_source = "btyd"``). Customers with at
    most ``cold_start_max_orders`` orders get the probabilistic scores too (default 0: none, as
    the LightGBM models, trained on one-order histories as well, rank them better); one-order
    customers scored by LightGBM are flagged ``score_source = "gbm_one_order"``.

    ``choice`` names the model each task is scored by (``churn``, ``value``, ``timing`` ->
    ``baseline``, ``btyd`` or ``gbm``), as the backtest chose it (``training.backtest``);
    without an entry, LightGBM when fitted, else the probabilistic model (timing: the
    customer's own interval). ``btyd_variant`` is the probabilistic model the ``btyd`` choices
    score with when it is not ``btyd`` (e.g. Pareto/NBD won, while the LightGBM models read
    BG/NBD's outputs); ``recency_rule`` scores a churn ``baseline`` choice;
    ``btyd_comparison`` is how the BTYD kind was chosen on a short history; ``orders_churn``,
    when set, makes a ``btyd`` churn choice rank by the model's expected orders in the horizon
    rather than by its P(no order) (:class:`ExpectedOrdersChurn`).

    ``reference`` (shop-wide figures for segments) and ``channel_measurements`` (what the
    contacts log showed) are fitted at training for the decisions (``decisions/``), so the
    batch and the API decide alike.
    """

    horizon_days: int
    channels: Sequence[str]
    btyd: BTYDModel
    churn: ChurnClassifier | None = None
    value: RevenueRegressor | None = None
    timing: NextOrderRegressor | None = None
    cold_start_max_orders: int = 0
    trained_as_of: date | None = None
    reference: ShopReference | None = None
    channel_measurements: ChannelMeasurements | None = None
    notes: list[str] = field(default_factory=list)
    # The due-product ranker when it beat "the most bought product" on the backtest
    # (training.due_product.choose_due_product); None: the most bought product.
    due_product: DueProductRanker | None = None
    choice: dict[str, str] = field(default_factory=dict)
    btyd_variant: BTYDModel | None = None
    recency_rule: RecencyChurnRule | None = None
    btyd_comparison: dict = field(default_factory=dict)
    orders_churn: ExpectedOrdersChurn | None = None
    format_version: int = PIPELINE_FORMAT
    # The offer uplift model, when the contacts log held past random offers
    # (training.uplift.fit_offer_uplift); None: the rules' discount_uplift decides offers.
    offer_uplift: OfferUpliftModel | None = None

    def chosen(self, task: str) -> str:
        """The model ``task`` is scored by (see the class doc)."""
        if task == "due_product":  # the LightGBM ranker, or the customer's most bought product
            return "gbm" if self.due_product_ranker is not None else "baseline"
        if task in self.choice:
            return self.choice[task]
        if self.eligible:
            return "gbm"
        return "baseline" if task == "timing" else "btyd"

    @property
    def eligible(self) -> bool:
        return self.churn is not None and self.value is not None and self.timing is not None

    @property
    def due_product_ranker(self) -> DueProductRanker | None:
        # Pipelines pickled before the field existed have no attribute: the most bought product.
        return getattr(self, "due_product", None)

    def features(self, transactions: Frame, as_of: date) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Customer features (with the probabilistic model's outputs) and customer x product
        candidates (``features.products.product_candidates``)."""
        lines = lines_before(transactions, as_of)  # one sort for both frames
        customers = customer_features(lines, as_of, self.channels)
        products = product_candidates(lines, as_of)
        return with_btyd(customers, self.btyd, self.horizon_days, as_of), products

    def score(self, transactions: Frame, as_of: date) -> pl.DataFrame:
        """Scores for every customer with a purchase before ``as_of`` (see module doc)."""
        frame, products = self.features(transactions, as_of)
        return self.score_features(frame, products, as_of)

    def score_features(self, frame: pl.DataFrame, products: pl.DataFrame, as_of: date) -> pl.DataFrame:
        if frame.height == 0:
            return empty_scores()
        # numpy arrays (nulls as NaN) rather than polars Series or expressions: each polars
        # operation has a fixed cost that, on the API's one-customer requests, came to ~1 ms
        # of the score; numpy's is a few microseconds and it is as fast on a whole shop.
        column = frame.get_column
        values = {name: column(name).to_numpy() for name in (
            "btyd_p_no_order", "btyd_expected_revenue", "btyd_clv_12m", "interval_median",
            "days_since_last_order", "orders", "btyd_p_alive", "btyd_expected_orders")}
        interval, since_last = values["interval_median"], values["days_since_last_order"]
        chosen = {task: self.chosen(task) for task in TASKS}
        if self.btyd_variant is not None and "btyd" in (chosen["churn"], chosen["value"]):
            variant = self.btyd_variant.predict_arrays(frame, self.horizon_days)
            values.update({f"btyd_{k}": variant[k] for k in (
                "p_no_order", "expected_revenue", "clv_12m", "p_alive", "expected_orders")})
        churn = values["btyd_p_no_order"]
        orders_churn = getattr(self, "orders_churn", None)  # absent from older pickles
        if chosen["churn"] == "btyd" and orders_churn is not None:
            churn = orders_churn.churn_probability(values["btyd_expected_orders"])
        revenue = btyd_revenue = values["btyd_expected_revenue"]
        source = np.full(frame.height, "btyd", dtype=object)
        if chosen["churn"] == "baseline" and self.recency_rule is not None:
            churn = self.recency_rule.churn_probability(since_last)
            source[:] = "baseline"
        if chosen["value"] == "baseline":
            # The marketer's formula: order value x purchase rate over the tenure x horizon.
            tenure = np.maximum(column("T").to_numpy() + 1, 1)
            revenue = np.nan_to_num(column("aov").to_numpy() * values["orders"] / tenure
                                    * self.horizon_days)
        # Timing fallback: the customer's own median interval from the last order; the shop's
        # typical cadence for one-timers.
        # The shop's cadence is the one fitted at training (decisions.segments.ShopReference), so
        # a customer's date does not depend on who else is in the batch: the API's one customer,
        # the nightly batch and a Spark partition agree. The batch's own median only for a
        # pipeline fitted without a reference.
        if self.reference is not None:
            shop_interval = self.reference.median_interval or float(self.horizon_days)
        else:
            known = interval[~np.isnan(interval)]
            shop_interval = ((float(np.median(known)) if known.size else 0.0)
                             or float(self.horizon_days))
        own = np.maximum(interval - since_last, 0.0)
        p50 = np.where(np.isnan(own), shop_interval, own)
        p10, p90 = p50 * 0.5, p50 * 2.0 + 7
        if self.eligible:
            orders = values["orders"]
            warm = orders > self.cold_start_max_orders
            assert self.churn and self.value and self.timing
            churn_X, value_X, timing_X = model_inputs(frame, [self.churn, self.value, self.timing])
            if chosen["churn"] == "gbm":
                churn = np.where(warm, self.churn.churn_probability(frame, churn_X), churn)
                # One order is little to go on: say so per customer, so a CRM can treat it apart.
                source = np.where(warm, np.where(orders <= 1, "gbm_one_order", "gbm"), source)
            if chosen["value"] == "gbm":
                revenue = np.where(warm, self.value.revenue(frame, value_X), revenue)
            if chosen["timing"] == "gbm":
                timing = self.timing.days_to_next_order(frame, timing_X)
                p10 = np.where(warm, timing[:, 0], p10)
                p50 = np.where(warm, timing[:, 1], p50)
                p90 = np.where(warm, timing[:, 2], p90)
        # CLV: the probabilistic model's 12-month shape, scaled to the better horizon revenue.
        scale = np.clip((revenue + 1e-9) / (btyd_revenue + 1e-9), *CLV_SCALE_BOUNDS)
        # Built by segments' direct constructors: pl.Series(numpy) costs ~10-40 us a column
        # in checks, most of this frame's cost on one customer.
        n = frame.height
        scores = {series.name: series for series in (
            column("customer_id"),
            date_column("as_of", np.full(n, _day(as_of), dtype=np.int32)),
            _int32s("horizon_days", np.full(n, self.horizon_days, dtype=np.int32)),
            _floats("p_alive", values["btyd_p_alive"]),
            _floats("churn_probability", churn),
            _floats("expected_orders", values["btyd_expected_orders"]),
            _floats("predicted_revenue", revenue),
            _floats("clv_12m", values["btyd_clv_12m"] * scale),
            days_after(as_of, p50, "next_order_date"),
            days_after(as_of, p10, "next_order_p10"),
            days_after(as_of, p90, "next_order_p90"),
            # Null (NaN here) without an interval, as in the features.
            float_column("overdue_days", np.maximum(since_last - interval, 0.0)),
            string_column("score_source", source.tolist()),
        )}
        due = due_products(products, as_of, self.due_product_ranker, scores["customer_id"])
        scores.update({name: due.get_column(name) for name in ("due_product_id",
                                                               "due_product_date")})
        return _segments.frame([scores[name] for name in SCORE_COLUMNS])


def _floats(name: str, values: np.ndarray) -> pl.Series:
    """Float64, NaN kept as NaN (``segments.float_column`` makes it null)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if _segments._FAST:
        return pl.Series._from_pyseries(_segments._PySeries.new_f64(name, values, False))
    return pl.Series(name, values)


def _int32s(name: str, values: np.ndarray) -> pl.Series:
    values = np.ascontiguousarray(values, dtype=np.int32)
    if _segments._FAST:
        return pl.Series._from_pyseries(_segments._PySeries.new_i32(name, values, True))
    return pl.Series(name, values)


def days_after(day: date, days: np.ndarray, name: str = "") -> pl.Series:
    """``day`` plus ``days`` rounded half to even, as dates (null for NaN)."""
    shifted = _day(day) + np.round(np.asarray(days, dtype=np.float64))
    if np.isnan(shifted).any():
        return date_column(name, shifted)
    return date_column(name, shifted.astype(np.int32))


def model_inputs(frame: pl.DataFrame, models: Sequence[GBMEstimator]) -> list[np.ndarray]:
    """Each model's input matrix, built once per feature list: the pipeline's models are
    fitted on one frame, so one matrix usually serves all."""
    built: dict[tuple[str, ...], np.ndarray] = {}
    for model in models:
        names = tuple(model.feature_names_)
        if names not in built:
            built[names] = model.inputs(frame)
    return [built[tuple(model.feature_names_)] for model in models]


def empty_scores() -> pl.DataFrame:
    schema = {
        "customer_id": pl.String, "as_of": pl.Date, "horizon_days": pl.Int32,
        "p_alive": pl.Float64, "churn_probability": pl.Float64, "expected_orders": pl.Float64,
        "predicted_revenue": pl.Float64, "clv_12m": pl.Float64, "next_order_date": pl.Date,
        "next_order_p10": pl.Date, "next_order_p90": pl.Date, "overdue_days": pl.Float64,
        "due_product_id": pl.String, "due_product_date": pl.Date, "score_source": pl.String,
    }
    return pl.DataFrame(schema=schema)

