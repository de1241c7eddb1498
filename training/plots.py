"""Backtest plots, written as PNG files for MLflow artifacts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl

from training.metrics import reliability_curve


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability(frame: pl.DataFrame, path: Path) -> Path:
    churned = (~frame["ordered_again"]).to_numpy()
    points = reliability_curve(churned, frame["churn_probability"].to_numpy())
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label="retain churn")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate",
           title="Reliability (backtest)")
    ax.legend()
    return _save(fig, path)


def gains(frame: pl.DataFrame, path: Path) -> Path:
    """Cumulative share of horizon revenue captured by the top x% of customers."""
    revenue = np.clip(frame["revenue_h"].to_numpy(), 0, None)
    fig, ax = plt.subplots(figsize=(6, 5))
    share = np.arange(1, len(revenue) + 1) / len(revenue)
    for column, label in (("predicted_revenue", "retain"), ("bgnbd_gg_revenue", "BG/NBD x GG"),
                          ("formula_revenue", "AOV x frequency x lifetime")):
        if column in frame.columns:
            order = np.argsort(-frame[column].fill_null(0).to_numpy(), kind="stable")
            ax.plot(share, np.cumsum(revenue[order]) / max(revenue.sum(), 1e-9), label=label)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="random")
    ax.set(xlabel="share of customers (by prediction)", ylabel="share of horizon revenue",
           title="Gains (backtest)")
    ax.legend()
    return _save(fig, path)


def predicted_vs_actual(frame: pl.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    actual = np.clip(frame["revenue_h"].to_numpy(), 0, None)
    predicted = frame["predicted_revenue"].to_numpy()
    ax.scatter(np.log1p(predicted), np.log1p(actual), s=3, alpha=0.2)
    top = max(np.log1p(actual).max(), np.log1p(predicted).max())
    ax.plot([0, top], [0, top], "--", color="grey")
    ax.set(xlabel="log1p predicted revenue", ylabel="log1p actual revenue",
           title="Revenue in the horizon (backtest)")
    return _save(fig, path)


def feature_importance(importance: pd.Series, path: Path, top: int = 20) -> Path:
    shown = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1))
    ax.barh(shown.index, shown.to_numpy())
    ax.set(xlabel="gain", title="Churn model: feature importance")
    return _save(fig, path)
