"""Metrics for churn, value and timing, each a plain function of arrays."""

from __future__ import annotations

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
