"""Drift between score runs: the population stability index (PSI) per feature and per score.

A score run is compared with a **reference**: the previous complete run in the score store.
That reference was chosen over the training data's distribution because it needs nothing
from the model (models trained before this module score and are watched alike), it answers
the question asked each run ("what changed since last time?"), and a run and its reference are
built by the same code at comparable as-of dates. A slow drift that moves a little each run
shows as a series of small readings; against an older run's profile (:func:`drift_table` takes
any two) it shows whole.

Each run keeps a compact **profile** of every watched column (a few dozen numbers, never a
customer's value): for a numeric column the edges of its own deciles and the share of customers
in each bin (null is a bin of its own), for a categorical one the share of each of its
:data:`MAX_CATEGORIES` commonest categories (the rest share "(other)"). The next run is binned
by this profile's edges, so the PSI of run B against run A reads A's profile only, not A's rows:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

with ``expected`` the reference's share and ``actual`` the current run's, both floored at
:data:`SHARE_FLOOR` so that a bin empty on one side gives a large but finite term. Ties in a
column (orders: half the customers have one) collapse deciles into fewer bins: the edges are
the distinct deciles, bins ``(-inf, e1], (e1, e2], ..., (ek, inf)``.

The usual reading: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 shifted (:func:`level`).

Watched columns (:func:`watched_columns`): the model's customer features (numbers, and the top
channel as a category; dates, the as-of month and product ids are left out: a date moves every
run by design and a product id is one of thousands), the scores (churn probability, expected
orders and revenue, CLV, P(alive), overdue days) and the decisions (lifecycle stage, value tier,
behaviour, segment, goal, channel, offer; the expected incremental revenue).
Columnar throughout, no loop over customers: per numeric column one partial sort (the deciles)
and one comparison per edge (the counts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

__all__ = [
    "DRIFT_TABLE_SCHEMA", "MAX_CATEGORIES", "MODERATE", "N_BINS", "SHARE_FLOOR", "SHIFTED",
    "Profile", "drift_table", "level", "profile", "profiles", "psi", "record_run_drift",
    "reference_profiles", "run_drift", "summary_lines", "watched_columns",
]

Kind = Literal["feature", "score", "decision"]

N_BINS = 10
SHARE_FLOOR = 1e-4  # one customer in 10,000: an empty bin counts as this share
MAX_CATEGORIES = 20
MODERATE, SHIFTED = 0.1, 0.25

SCORE_COLUMNS = ("churn_probability", "p_alive", "expected_orders", "predicted_revenue",
                 "clv_12m", "overdue_days")
DECISION_NUMBERS = ("expected_incremental_revenue",)
DECISION_CATEGORIES = ("lifecycle_stage", "value_tier", "behaviour_type", "segment", "goal",
                       "channel", "offer")
FEATURE_CATEGORIES = ("top_channel", "intervals_lengthening")
# Identifiers and dates: not distributions worth watching (see the module doc).
# as_of_month is one value per run, different every month by design.
_NOT_WATCHED = ("customer_id", "top_product_id", "first_purchase", "last_purchase",
                "as_of_month")

# One row per watched column of a run, as drift_table returns it and the store keeps it.
DRIFT_TABLE_SCHEMA = {
    "name": pl.String, "kind": pl.String, "psi": pl.Float64, "level": pl.String,
    "customers": pl.Int64, "reference_customers": pl.Int64,
}


def level(value: float | None) -> str:
    """``stable`` (< 0.1), ``moderate`` (0.1 to 0.25) or ``shifted`` (> 0.25); ``new`` when
    there is nothing to compare with (no reference, or a column the reference lacks)."""
    if value is None or not np.isfinite(value):
        return "new"
    if value < MODERATE:
        return "stable"
    return "moderate" if value <= SHIFTED else "shifted"


def psi(expected: np.ndarray | list[float], actual: np.ndarray | list[float],
        floor: float = SHARE_FLOOR) -> float:
    """The population stability index of ``actual`` shares against ``expected`` shares (the
    same bins, each summing to 1), both floored at ``floor``."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class Profile:
    """One column's distribution in one run: ``edges`` (numeric) or ``categories``
    (categorical) and ``shares`` per bin, the null bin last; ``rows`` customers."""

    name: str
    kind: Kind
    rows: int
    shares: tuple[float, ...]
    edges: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        return self.edges is not None

    def shares_of(self, column: pl.Series) -> np.ndarray:
        """``column``'s shares in this profile's bins."""
        if column.len() == 0:
            return np.zeros(len(self.shares))
        if self.edges is not None:
            counts = _numeric_counts(_floats(column), np.asarray(self.edges))
        else:
            counts = _category_counts(column, self.categories or ())
        return counts / column.len()

    def to_json(self) -> str:
        body: dict = {"rows": self.rows, "shares": [round(s, 8) for s in self.shares]}
        if self.edges is not None:
            body["edges"] = list(self.edges)
        else:
            body["categories"] = list(self.categories or ())
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, name: str, kind: str, text: str) -> Profile:
        body = json.loads(text)
        edges = body.get("edges")
        categories = body.get("categories")
        return cls(name, kind, int(body["rows"]), tuple(body["shares"]),  # type: ignore[arg-type]
                   tuple(edges) if edges is not None else None,
                   tuple(categories) if categories is not None else None)


def _floats(column: pl.Series) -> np.ndarray:
    """The column as float64 with NaN for null (booleans and integers alike)."""
    return column.cast(pl.Float64).fill_nan(None).to_numpy(allow_copy=True).astype(np.float64)


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Customers per bin ``(-inf, e1], (e1, e2], ..., (ek, inf)``, then the nulls (NaN).
    One comparison per edge: a few milliseconds per million, where a binary search of each
    value costs ten times that on unsorted data."""
    missing = int(np.isnan(values).sum())
    at_most = [np.count_nonzero(values <= edge) for edge in edges]  # NaN <= edge is False
    counts = np.diff(np.array([0, *at_most, values.size - missing], dtype=np.float64))
    return np.append(counts, float(missing))


def _deciles(present: np.ndarray, n_bins: int) -> np.ndarray:
    """The distinct observed values at the 1/n_bins, 2/n_bins, ... quantiles (numpy's
    "inverted_cdf": no interpolation, so a count column's edges stay whole numbers and its
    ties collapse into their bins), by one partial sort."""
    if not present.size:
        return np.array([])
    ranks = np.ceil(present.size * np.arange(1, n_bins) / n_bins).astype(np.int64) - 1
    ranks = np.unique(np.clip(ranks, 0, present.size - 1))
    return np.unique(np.partition(present, ranks)[ranks])


def _category_counts(column: pl.Series, categories: tuple[str, ...]) -> np.ndarray:
    text = column.cast(pl.String)
    counts = dict(text.value_counts().iter_rows())
    known = [float(counts.get(c, 0)) for c in categories]
    nulls = float(counts.get(None, 0))
    other = column.len() - sum(known) - nulls
    return np.array([*known, other, nulls])


def profile(column: pl.Series, kind: Kind, n_bins: int = N_BINS) -> Profile:
    """The profile of one column (numeric by dtype; strings and booleans by category)."""
    name, rows = column.name, column.len()
    if column.dtype.is_numeric():
        values = _floats(column)
        edges = _deciles(values[~np.isnan(values)], n_bins)
        counts = _numeric_counts(values, edges)
        return Profile(name, kind, rows, tuple((counts / max(rows, 1)).tolist()),
                       edges=tuple(edges.tolist()))
    text = column.cast(pl.String)
    common = (text.drop_nulls().value_counts(sort=True).head(MAX_CATEGORIES)
              .get_column(text.name).sort().to_list())
    counts = _category_counts(column, tuple(common))
    return Profile(name, kind, rows, tuple((counts / max(rows, 1)).tolist()),
                   categories=tuple(common))


def watched_columns(scores: pl.DataFrame, features: pl.DataFrame | None = None
                    ) -> dict[str, tuple[pl.Series, Kind]]:
    """The columns drift watches (see the module doc), by name, with their kind. ``scores``:
    a score run's frame (any subset of its columns); ``features``: the customers' features
    the run scored from (``ScoringPipeline.features``), or None (scores and decisions only)."""
    watched: dict[str, tuple[pl.Series, Kind]] = {}
    if features is not None:
        for name, dtype in features.schema.items():
            if name in _NOT_WATCHED or dtype in (pl.Date, pl.Datetime):
                continue
            if dtype.is_numeric() or name in FEATURE_CATEGORIES:
                watched[name] = (features.get_column(name), "feature")
    for names, kind in ((SCORE_COLUMNS, "score"), (DECISION_NUMBERS, "decision"),
                        (DECISION_CATEGORIES, "decision")):
        for name in names:
            if name in scores.columns:
                watched[name] = (scores.get_column(name), kind)  # type: ignore[assignment]
    return watched


def profiles(scores: pl.DataFrame, features: pl.DataFrame | None = None) -> dict[str, Profile]:
    """A run's profile of every watched column."""
    return {name: profile(column.rename(name), kind)
            for name, (column, kind) in watched_columns(scores, features).items()}


def drift_table(current: Mapping[str, Profile], reference: Mapping[str, Profile] | None,
                columns: Mapping[str, pl.Series] | None = None) -> pl.DataFrame:
    """PSI of every column of ``current`` against ``reference`` (:data:`DRIFT_TABLE_SCHEMA`), the
    most shifted first; ``psi`` is null (level ``new``) without a reference for the column.

    The current run's shares in the reference's bins come from ``columns`` (the run's values,
    by name) when given, else from the current profile, which must then share the reference's
    bins (the same run re-profiled). With ``columns`` this is exact; it is what ``retain
    score`` does."""
    rows = []
    for name, current_profile in current.items():
        ref = (reference or {}).get(name)
        value = None
        if ref is not None and (ref.numeric == current_profile.numeric):
            if columns is not None and name in columns:
                shares = ref.shares_of(columns[name])
            elif (ref.edges, ref.categories) == (current_profile.edges, current_profile.categories):
                shares = np.asarray(current_profile.shares)
            else:
                shares = None
            if shares is not None:
                value = psi(ref.shares, shares)
        rows.append({"name": name, "kind": current_profile.kind, "psi": value,
                     "level": level(value), "customers": current_profile.rows,
                     "reference_customers": ref.rows if ref is not None else None})
    table = pl.DataFrame(rows, schema=DRIFT_TABLE_SCHEMA, orient="row")
    return table.sort(["psi", "name"], descending=[True, False], nulls_last=True)


def run_drift(scores: pl.DataFrame, features: pl.DataFrame | None,
              reference: Mapping[str, Profile] | None) -> tuple[pl.DataFrame, dict[str, Profile]]:
    """A new run's drift table against ``reference`` (the previous run's profiles, or None)
    and its own profiles, to keep as the next run's reference."""
    watched = watched_columns(scores, features)
    own = {name: profile(column.rename(name), kind) for name, (column, kind) in watched.items()}
    table = drift_table(own, reference, {name: column for name, (column, _) in watched.items()})
    return table, own


def summary_lines(table: pl.DataFrame, top: int = 5) -> list[str]:
    """A few lines for a terminal: how many columns moved, and the most shifted ones."""
    measured = table.filter(pl.col("psi").is_not_null())
    if measured.height == 0:
        return ["drift: no earlier run to compare with; this run is the reference for the next"]
    counts = dict(measured.group_by("level").len().iter_rows())
    lines = [(f"drift against the previous run (PSI; < {MODERATE} stable, > {SHIFTED} shifted): "
             f"{counts.get('shifted', 0)} shifted, {counts.get('moderate', 0)} moderate, "
             f"{counts.get('stable', 0)} stable of {measured.height} columns")]
    moved = measured.filter(pl.col("level") != "stable").head(top)
    lines += [f"  {row['kind']} {row['name']}: PSI {row['psi']:.3f} ({row['level']})"
              for row in moved.iter_rows(named=True)]
    return lines


def reference_profiles(store, run_id: str) -> dict[str, Profile]:
    """The profiles of a stored run (``store``: an open ``serving.store.ScoreStore``): its drift
    rows, or, for a run scored before drift was kept, its stored scores and decisions profiled
    now (features were not stored then: they start being compared from the next run)."""
    rows = store.drift(run_id)
    if rows.height:
        return {row["name"]: Profile.from_json(row["name"], row["kind"], row["profile"])
                for row in rows.iter_rows(named=True) if row["profile"] is not None}
    columns = [*SCORE_COLUMNS, *DECISION_NUMBERS, *DECISION_CATEGORIES]
    scores = store.scores(run_id)
    return profiles(scores.select([c for c in columns if c in scores.columns]))


def record_run_drift(store, run_id: str, reference_run_id: str | None, scores: pl.DataFrame,
                     features: pl.DataFrame | None) -> pl.DataFrame:
    """Measure a new run's drift against ``reference_run_id`` (None: the first run) and keep
    it in ``store`` with the run's profiles; returns the drift table (:data:`DRIFT_TABLE_SCHEMA`)."""
    reference = reference_profiles(store, reference_run_id) if reference_run_id else None
    table, own = run_drift(scores, features, reference)
    kept = table.with_columns(
        pl.col("name").replace_strict({name: p.to_json() for name, p in own.items()},
                                      return_dtype=pl.String).alias("profile"))
    store.write_drift(run_id, kept, reference_run_id=reference_run_id)
    return table
