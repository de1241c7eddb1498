"""Raw LightGBM predictions for a few rows through LightGBM's single-row C API.

``Booster.predict`` parses its parameters and builds a C++ predictor at every call: about 40 us,
more than a hundred trees take on one row, paid five times per scored customer (churn, revenue
and three timing quantiles). ``LGBM_BoosterPredictForMatSingleRowFast`` does that set-up once
per booster. Same trees, same iterations, same float32 input: the same numbers (tested equal).

LightGBM's Python package keeps its library handle and helpers private, so this module is the
one place that touches them. ``raw_scores`` falls back on ``Booster.predict`` when they are
missing (another LightGBM version) or the set-up fails, and for what this path does not cover:
inputs other than float32 (a float64 value could fall the other side of a split once rounded),
models with several outputs per row, and boosters holding more iterations than the best one
(the C API takes the iteration range from the booster, which every ``predict`` call resets).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref

import lightgbm as lgb
import numpy as np

log = logging.getLogger(__name__)

# Up to this many rows, one C call per row beats Booster.predict's set-up.
MAX_ROWS = 64

_predictors: weakref.WeakKeyDictionary[lgb.Booster, _RowPredictor | None] = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()


def raw_scores(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """``booster.predict(X, raw_score=True, num_threads=1)``, faster for up to ``MAX_ROWS``."""
    predictor = (_predictor(booster, X.shape[1])
                 if len(X) <= MAX_ROWS and X.dtype == np.float32 else None)
    if predictor is None:
        return booster.predict(X, raw_score=True, num_threads=1)
    return predictor.predict(X)


def _predictor(booster: lgb.Booster, n_features: int) -> _RowPredictor | None:
    with _lock:
        if booster not in _predictors:
            try:
                _predictors[booster] = _RowPredictor(booster, n_features)
            except (AttributeError, ImportError, lgb.basic.LightGBMError) as exc:
                log.warning("LightGBM's single-row predictions unavailable (%s: %s): using "
                            "Booster.predict", type(exc).__name__, exc)
                _predictors[booster] = None
        predictor = _predictors[booster]
    return predictor if predictor is not None and predictor.n_features == n_features else None


class _RowPredictor:
    def __init__(self, booster: lgb.Booster, n_features: int) -> None:
        from lightgbm import basic

        if booster.num_model_per_iteration() != 1:
            raise lgb.basic.LightGBMError("several outputs per row")
        if 0 < booster.best_iteration != booster.current_iteration():
            raise lgb.basic.LightGBMError("more iterations kept than the best one")
        self.n_features = n_features
        # One caller at a time: the single-row predictor keeps per-call buffers, and whether
        # LightGBM locks them itself is not part of its API.
        self._calling = threading.Lock()
        self._lib = basic._LIB
        self._check = basic._safe_call
        self._config = ctypes.c_void_p()
        self._predict = self._lib.LGBM_BoosterPredictForMatSingleRowFast
        self._check(self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle,
            ctypes.c_int(basic._C_API_PREDICT_RAW_SCORE),
            ctypes.c_int(0),  # start iteration
            # As Booster.predict: the early-stopping best iteration, or all (<= 0).
            ctypes.c_int(booster.best_iteration),
            ctypes.c_int(basic._C_API_DTYPE_FLOAT32),
            ctypes.c_int32(n_features),
            basic._c_str("num_threads=1"),
            ctypes.byref(self._config),
        ))

    def predict(self, X: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(X)
        n = len(rows)
        out = np.empty(n, dtype=np.float64)
        row_bytes = rows.strides[0] if n else 0
        row_pointer = rows.ctypes.data
        # Each value through one ctypes double, then copied: a pointer cast per row cost more
        # (~3 us a call) than the copy.
        written, value = ctypes.c_int64(0), ctypes.c_double()
        predict, config, check = self._predict, self._config, self._check
        with self._calling:
            for i in range(n):
                check(predict(config, ctypes.c_void_p(row_pointer + i * row_bytes),
                              ctypes.byref(written), ctypes.byref(value)))
                out[i] = value.value
        return out

    def __del__(self) -> None:
        config = getattr(self, "_config", None)  # None when __init__ failed early
        if config:
            self._lib.LGBM_FastConfigFree(config)
