"""The backtest plots' points (training/plots.py): what the PNGs draw and the report redraws in
the reader's language."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from retain.training.plots import backtest_points, gains, reliability


def backtest_frame(n: int = 400) -> pl.DataFrame:
    """retain ranks by the very revenue that came; the formula by noise."""
    rng = np.random.default_rng(3)
    revenue = rng.exponential(50.0, n) * (rng.random(n) < 0.4)
    churn = rng.random(n)
    return pl.DataFrame({"revenue_h": revenue, "predicted_revenue": revenue,
                         "formula_revenue": rng.random(n),
                         "ordered_again": rng.random(n) > churn, "churn_probability": churn})


def test_the_points_hold_each_gains_curve_and_the_reliability_bins(tmp_path):
    points = backtest_points(backtest_frame())
    assert points.columns == ["chart", "series", "x", "y"]
    gain = points.filter(pl.col("chart") == "gains")
    assert set(gain["series"]) == {"retain", "formula", "random"}  # no BG/NBD column: left out
    for _, curve in gain.group_by("series"):
        assert curve["y"][0] == pytest.approx(0.0) and curve["y"][-1] == pytest.approx(1.0)
    half = dict(gain.filter(pl.col("x") == 0.5).select("series", "y").iter_rows())
    # Fewer than half bought: ranked by what came, the top half holds all of the revenue.
    assert half["retain"] == pytest.approx(1.0)
    assert 0.3 < half["formula"] < 0.7
    # Churn drawn with the predicted probability: each bin's observed rate is near it.
    bins = points.filter((pl.col("chart") == "reliability") & (pl.col("series") == "retain"))
    assert bins.height == 10 and ((bins["y"] - bins["x"]).abs() < 0.2).all()
    for draw, name in ((gains, "gains.png"), (reliability, "reliability.png")):
        assert draw(backtest_frame(), tmp_path / name, points).read_bytes()[:4] == b"\x89PNG"


def test_a_reliability_bin_of_a_few_customers_is_left_out_of_the_curve():
    from retain.training.plots import RELIABILITY_MIN_CUSTOMERS

    frame = backtest_frame()
    # Three customers predicted around 0.25, none of whom left: a bin that reads 0% by chance.
    thin = frame.head(3).with_columns(pl.lit(0.25).alias("churn_probability"),
                                      pl.lit(True).alias("ordered_again"))
    rest = frame.filter((pl.col("churn_probability") < 0.2) | (pl.col("churn_probability") >= 0.3))
    points = backtest_points(pl.concat([rest, thin]))
    bins = points.filter((pl.col("chart") == "reliability") & (pl.col("series") == "retain"))
    assert bins.height == 9 and not ((bins["x"] > 0.2) & (bins["x"] < 0.3)).any()
    assert 3 < RELIABILITY_MIN_CUSTOMERS <= 40  # the 40-customer bins of the frame stay
