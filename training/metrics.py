"""Metrics for churn, value and timing, each a plain function of arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def churn_metrics(churned: np.ndarray, score: np.ndarray, *, probabilities: bool = True) -> dict[str, float]:
    """AUC and PR-AUC for any score; log loss and Brier only for probabilities."""
    y = np.asarray(churned, dtype=int)
    s = np.asarray(score, dtype=float)
    if len(np.unique(y)) < 2:
        return {}
    out = {"auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}
    if probabilities:
        clipped = np.clip(s, 1e-6, 1 - 1e-6)
        out["log_loss"] = float(log_loss(y, clipped, labels=[0, 1]))
        out["brier"] = float(brier_score_loss(y, clipped))
    return out


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the predicted ordering divided by the Gini of the perfect ordering."""

    def gini(a: np.ndarray, p: np.ndarray) -> float:
        order = np.lexsort((np.arange(len(p)), -p))
        cumulative = np.cumsum(a[order]) / a.sum()
        return float(cumulative.sum() / len(a) - (len(a) + 1) / (2 * len(a)))

    a = np.clip(np.asarray(actual, dtype=float), 0, None)
    p = np.asarray(predicted, dtype=float)
    if a.sum() == 0:
        return float("nan")
    return gini(a, p) / gini(a, a)


def top_decile_capture(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Share of the total revenue that the top 10% by prediction bring."""
    a = np.clip(np.asarray(actual, dtype=float), 0, None)
    if a.sum() == 0:
        return float("nan")
    k = max(1, int(np.ceil(len(a) * 0.1)))
    top = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")[:k]
    return float(a[top].sum() / a.sum())


def value_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    error = p - a
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "spearman": float(spearmanr(a, p).statistic),
        "gini": normalized_gini(a, p),
        "top_decile_capture": top_decile_capture(a, p),
    }


def timing_metrics(actual_days: np.ndarray, p50: np.ndarray, p10: np.ndarray | None = None,
                   p90: np.ndarray | None = None) -> dict[str, float]:
    """MAE in days on customers who did order; coverage of the p10-p90 range."""
    a = np.asarray(actual_days, dtype=float)
    known = ~np.isnan(a)
    if not known.any():
        return {}
    out = {"mae_days": float(np.abs(np.asarray(p50, dtype=float)[known] - a[known]).mean())}
    if p10 is not None and p90 is not None:
        inside = (a[known] >= np.asarray(p10)[known]) & (a[known] <= np.asarray(p90)[known])
        out["coverage_p10_p90"] = float(inside.mean())
    return out


def reliability_curve(churned: np.ndarray, probability: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed rate, count) per probability decile bin."""
    y = np.asarray(churned, dtype=float)
    p = np.asarray(probability, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [(float(p[which == b].mean()), float(y[which == b].mean()), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]


# --- Paired bootstrap: is a difference between two models more than noise? -----------------
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0


def _auc_rows(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (resamples x n) against the matching row of ``y``
    (Mann-Whitney U from mid-ranks: ties count a half, as in roc_auc_score)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    positives = y.sum(axis=1)
    negatives = y.shape[1] - positives
    u = (ranks * y).sum(axis=1) - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return u / (positives * negatives)


def _spearman_rows(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    a = rankdata(actual, axis=1)
    p = rankdata(predicted, axis=1)
    a -= a.mean(axis=1, keepdims=True)
    p -= p.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * p).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (p * p).sum(axis=1))


def _mae_rows(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.abs(predicted - actual).mean(axis=1)


def _hit_rows(_actual: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Hit rate: the share of 1s in each row of ``hits`` (the outcome is in the hits already)."""
    return hits.mean(axis=1)


ROW_METRICS = {"auc": (_auc_rows, True), "spearman": (_spearman_rows, True),
               "mae_days": (_mae_rows, False), "hit_rate": (_hit_rows, True)}
# Resamples are drawn in blocks of at most this many cells, so a shop of a million customers
# needs a few hundred MB, not the 200 x 1M matrices at once.
BOOTSTRAP_BLOCK_CELLS = 20_000_000


# Differences smaller than this (AUC, Spearman; days for a timing error) mean nothing to a
# user: on CDNOW retain's Pareto/NBD x Gamma-Gamma revenue and the same baseline refitted
# differed by 1e-6 Spearman, an interval of [-0.0000, -0.0000], "worse" without the floor.
NEGLIGIBLE_DIFFERENCE = 1e-4


@dataclass(frozen=True)
class PairedDifference:
    """How much better model A is than model B on one metric: ``diff`` is A minus B in the
    metric's better direction (positive = A better, for an error too), ``lo``/``hi`` its 95%
    paired-bootstrap interval over customers."""

    metric: str
    a: float
    b: float
    diff: float
    lo: float
    hi: float

    @property
    def verdict(self) -> str:
        """"better", "worse", or "tie" when the interval holds zero (within noise) or the
        whole interval is within ``NEGLIGIBLE_DIFFERENCE`` of it (the same model fitted twice
        differs by rounding, and thousands of customers make that "significant")."""
        if not np.isfinite(self.lo) or not np.isfinite(self.hi):
            return "tie"
        if max(abs(self.lo), abs(self.hi)) < NEGLIGIBLE_DIFFERENCE:
            return "tie"
        return "better" if self.lo > 0 else "worse" if self.hi < 0 else "tie"


def point_metric(metric: str, actual: np.ndarray, score: np.ndarray) -> float:
    """``metric`` ("auc", "spearman" or "mae_days") of one score, as the bootstrap computes it."""
    row_metric, _ = ROW_METRICS[metric]
    y = np.asarray(actual, dtype=float)[None, :]
    return float(row_metric(y, np.asarray(score, dtype=float)[None, :])[0])


def paired_bootstrap(metric: str, actual: np.ndarray, score_a: np.ndarray, score_b: np.ndarray,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedDifference:
    """A vs B on the same customers: each resample draws customers with replacement and both
    models are scored on the same draw, so what the customers share cancels out. Vectorised:
    one (resamples x customers) index matrix, no Python loop over resamples."""
    row_metric, higher = ROW_METRICS[metric]
    y = np.asarray(actual, dtype=float)
    a = np.asarray(score_a, dtype=float)
    b = np.asarray(score_b, dtype=float)
    sign = 1.0 if higher else -1.0
    point_a = float(row_metric(y[None, :], a[None, :])[0])
    point_b = float(row_metric(y[None, :], b[None, :])[0])
    if len(y) < 2:
        return PairedDifference(metric, point_a, point_b, sign * (point_a - point_b), np.nan, np.nan)
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_CELLS // len(y))
    parts = []
    for start in range(0, resamples, block):
        index = rng.integers(0, len(y), size=(min(block, resamples - start), len(y)))
        parts.append(sign * (row_metric(y[index], a[index]) - row_metric(y[index], b[index])))
    diffs = np.concatenate(parts)
    diffs = diffs[np.isfinite(diffs)]
    lo, hi = (np.quantile(diffs, [0.025, 0.975]) if diffs.size else (np.nan, np.nan))
    return PairedDifference(metric, point_a, point_b, sign * (point_a - point_b), float(lo), float(hi))
