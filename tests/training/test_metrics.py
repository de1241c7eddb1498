"""The paired bootstrap: intervals that hold the truth, blocks that change nothing."""

from __future__ import annotations

import numpy as np
import pytest

from retain.training import metrics
from retain.training.metrics import paired_bootstrap


def test_hit_rate_gain_and_its_interval():
    same = np.array([1.0, 0.0, 1.0, 1.0])
    tie = paired_bootstrap("hit_rate", same, same, same)
    assert (tie.diff, tie.lo, tie.hi, tie.verdict) == (0.0, 0.0, 0.0, "tie")
    better = np.ones(400)
    worse = (np.arange(400) % 2 == 0).astype(float)
    gain = paired_bootstrap("hit_rate", better, better, worse)
    assert gain.diff == pytest.approx(0.5) and 0.4 < gain.lo < 0.5 < gain.hi < 0.6
    assert gain.verdict == "better"
    assert paired_bootstrap("hit_rate", worse, worse, better).verdict == "worse"


def test_an_error_metric_counts_lower_as_better():
    actual = np.linspace(0, 100, 500)
    close, far = actual + 1.0, actual + 10.0
    d = paired_bootstrap("mae_days", actual, close, far)
    assert d.diff == pytest.approx(9.0) and d.verdict == "better"


def test_resamples_in_blocks_give_the_same_interval_as_one_draw(monkeypatch):
    rng = np.random.default_rng(3)
    churned = rng.random(2_000) < 0.4
    a = churned + rng.normal(0, 1.0, churned.size)
    b = churned + rng.normal(0, 1.2, churned.size)
    whole = paired_bootstrap("auc", churned, a, b)
    monkeypatch.setattr(metrics, "BOOTSTRAP_BLOCK_CELLS", 2_000 * 7)  # 7 resamples a block
    blocked = paired_bootstrap("auc", churned, a, b)
    assert (blocked.lo, blocked.hi) == pytest.approx((whole.lo, whole.hi), abs=0.01)
    assert blocked.diff == whole.diff
