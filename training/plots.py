"""Backtest plots, written as PNG files for MLflow artifacts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl

from retain.training.metrics import reliability_curve


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# The gains curves' series: the backtest frame's column, and the key the report translates.
GAINS_SERIES = (("predicted_revenue", "retain"), ("bgnbd_gg_revenue", "bgnbd_gg"),
                ("formula_revenue", "formula"))
# What the PNGs call each series (the report names them in the reader's language instead).
SERIES_NAMES = {"retain": "retain", "bgnbd_gg": "BG/NBD x GG",
                "formula": "AOV x frequency x lifetime", "random": "random",
                "perfect": "perfect"}
GAINS_POINTS = 100
# A reliability bin of a handful of customers reads 0% or 100% by chance, and drew a zigzag a
# marketer takes for a broken model (a 1,500-customer shop: bins of 2-3 customers at 0%
# between 27% and 55%); bins with fewer customers are left out of the curve.
RELIABILITY_MIN_CUSTOMERS = 20


def backtest_points(frame: pl.DataFrame, points: int = GAINS_POINTS) -> pl.DataFrame:
    """``chart, series, x, y``: the gains curves (``chart`` "gains": the share of the
    horizon's revenue, refunds counted as none, captured by the top ``x`` of customers by each
    prediction, ``points`` + 1 steps, and the ``random`` diagonal) and the reliability curve
    (``chart`` "reliability": the predicted churn probability against the observed churn rate
    per decile bin holding at least ``RELIABILITY_MIN_CUSTOMERS`` customers, and the
    ``perfect`` diagonal). ``series`` are keys, not words: the PNGs
    and the report (``serving.report``, in the reader's language) name them."""
    revenue = np.clip(frame["revenue_h"].to_numpy(), 0, None)
    total = max(float(revenue.sum()), 1e-9)
    share = np.linspace(0, 1, points + 1)
    at = np.round(share * len(revenue)).astype(int)
    rows: list[pl.DataFrame] = []
    for column, key in GAINS_SERIES:
        if column in frame.columns:
            order = np.argsort(-frame[column].fill_null(0).to_numpy(), kind="stable")
            captured = np.concatenate([[0.0], np.cumsum(revenue[order]) / total])
            rows.append(pl.DataFrame({"chart": "gains", "series": key, "x": share,
                                      "y": captured[at]}))
    churned = (~frame["ordered_again"]).to_numpy()
    curve = [point for point in reliability_curve(churned, frame["churn_probability"].to_numpy())
             if point[2] >= RELIABILITY_MIN_CUSTOMERS]
    rows += [
        pl.DataFrame({"chart": "gains", "series": "random", "x": [0.0, 1.0], "y": [0.0, 1.0]}),
        pl.DataFrame({"chart": "reliability", "series": "retain",
                      "x": [p[0] for p in curve], "y": [p[1] for p in curve]},
                     schema={"chart": pl.String, "series": pl.String, "x": pl.Float64,
                             "y": pl.Float64}),
        pl.DataFrame({"chart": "reliability", "series": "perfect", "x": [0.0, 1.0],
                      "y": [0.0, 1.0]}),
    ]
    return pl.concat([r.cast({"x": pl.Float64, "y": pl.Float64}) for r in rows])


def _draw(points: pl.DataFrame, chart: str, ax: plt.Axes) -> None:
    for key, part in points.filter(pl.col("chart") == chart).group_by("series",
                                                                      maintain_order=True):
        name = str(key[0])
        diagonal = name in ("random", "perfect")
        ax.plot(part["x"].to_numpy(), part["y"].to_numpy(),
                "--" if diagonal else ("o-" if chart == "reliability" else "-"),
                color="grey" if diagonal else None, label=SERIES_NAMES.get(name, name))


def reliability(frame: pl.DataFrame, path: Path,
                points: pl.DataFrame | None = None) -> Path:
    """The reliability curve of :func:`backtest_points` (``points``, computed when not
    given) as a PNG."""
    points = backtest_points(frame) if points is None else points
    fig, ax = plt.subplots(figsize=(5, 5))
    _draw(points, "reliability", ax)
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate",
           title="Reliability (backtest)")
    ax.legend()
    return _save(fig, path)


def gains(frame: pl.DataFrame, path: Path, points: pl.DataFrame | None = None) -> Path:
    """Cumulative share of horizon revenue captured by the top x% of customers (the gains
    curves of :func:`backtest_points`) as a PNG."""
    points = backtest_points(frame) if points is None else points
    fig, ax = plt.subplots(figsize=(6, 5))
    _draw(points, "gains", ax)
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


# --- The probabilistic model's diagnostics, as lifetimes and PyMC-Marketing users read them.
# Drawn here from the fitted model's own predictions (models/btyd.py), not with
# lifetimes.plotting: no lifetimes outside models/btyd.py, and every point is vectorised.


def _rfm_grid(rfm: pl.DataFrame, points: int = 60) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """Frequency 0..(99th percentile) by recency 0..max T (days), everyone observed for max T."""
    max_t = float(rfm["T"].max() or 1.0)
    top = int(max(5, np.ceil(rfm["frequency"].quantile(0.99) or 0)))
    frequency = np.arange(top + 1, dtype=float)
    recency = np.linspace(0, max_t, points)
    f, r = np.meshgrid(frequency, recency, indexing="ij")
    grid = pl.DataFrame({"customer_id": [str(i) for i in range(f.size)], "frequency": f.ravel(),
                         "recency": r.ravel(), "T": np.full(f.size, max_t),
                         "monetary_value": np.zeros(f.size)})
    return frequency, recency, grid


def _matrix(values: np.ndarray, frequency: np.ndarray, recency: np.ndarray, title: str,
            colour: str, path: Path) -> Path:
    values = values.reshape(len(frequency), len(recency)).astype(float)
    values[0, recency > 0] = np.nan  # no repeat purchase means recency 0: blank, not a guess
    fig, ax = plt.subplots(figsize=(7, 5.5))
    image = ax.imshow(values, origin="lower", aspect="auto",
                      cmap=colour, extent=(recency[0], recency[-1], frequency[0] - 0.5,
                                           frequency[-1] + 0.5))
    fig.colorbar(image, ax=ax)
    ax.set(xlabel="recency: days from first to last purchase",
           ylabel="frequency: repeat purchase days", title=title)
    return _save(fig, path)


def frequency_recency_matrix(model, rfm: pl.DataFrame, horizon_days: int, path: Path) -> Path:
    """Expected purchases in the next ``horizon_days`` by frequency and recency, for a customer
    observed for the longest history (lifetimes' ``plot_frequency_recency_matrix``)."""
    frequency, recency, grid = _rfm_grid(rfm)
    expected = model.predict_expected_orders(grid, horizon_days).to_numpy()
    return _matrix(expected, frequency, recency,
                   f"Expected purchases in the next {horizon_days} days\n"
                   f"(customers observed {recency[-1]:.0f} days)", "viridis", path)


def probability_alive_matrix(model, rfm: pl.DataFrame, path: Path) -> Path:
    """P(alive) by frequency and recency (lifetimes' ``plot_probability_alive_matrix``)."""
    frequency, recency, grid = _rfm_grid(rfm)
    return _matrix(model.predict_p_alive(grid).to_numpy(), frequency, recency,
                   f"Probability alive (customers observed {recency[-1]:.0f} days)", "RdYlGn", path)


def calibration_vs_holdout(frequency_cal: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
                           holdout_days: int, path: Path, top: int = 7) -> Path:
    """Mean repeat purchases in the holdout, actual and predicted, by purchases in the
    calibration period (lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``)."""
    groups = np.minimum(frequency_cal, top).astype(int)
    counts = np.bincount(groups, minlength=top + 1)
    shown = counts > 0
    x = np.arange(top + 1)[shown]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for values, label, style in ((actual, "actual", "o-"), (predicted, "model", "s--")):
        means = np.bincount(groups, weights=values, minlength=top + 1)[shown] / counts[shown]
        ax.plot(x, means, style, label=label)
    ax.set_xticks(x, [f"{i}+" if i == top else str(i) for i in x])
    ax.set(xlabel="repeat purchase days in the calibration period",
           ylabel=f"mean repeat purchase days in the {holdout_days}-day holdout",
           title="Calibration vs holdout purchases")
    ax.legend()
    return _save(fig, path)


def period_transactions(actual: np.ndarray, simulated: np.ndarray, path: Path, top: int = 7) -> Path:
    """Customers by number of repeat purchase days: observed against drawn from the fitted
    model over the same observation periods (lifetimes' ``plot_period_transactions``)."""
    x = np.arange(top + 1)
    width = 0.4
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for offset, values, label in ((-width / 2, actual, "actual"), (width / 2, simulated, "model")):
        counts = np.bincount(np.minimum(values, top).astype(int), minlength=top + 1)
        ax.bar(x + offset, counts, width, label=label)
    ax.set_xticks(x, [f"{i}+" if i == top else str(i) for i in x])
    ax.set(xlabel="repeat purchase days", ylabel="customers",
           title="Frequency of repeat transactions")
    ax.legend()
    return _save(fig, path)
