"""Probabilistic "buy till you die" models: BG/NBD or Pareto/NBD with Gamma-Gamma spend.

The only module of retain that imports lifetimes (0.11.3, 2020). It uses just the parts that
work under pandas 3 / numpy 2: the fitters' ``fit``, ``conditional_probability_alive``,
``conditional_expected_number_of_purchases_up_to_time`` and
``conditional_expected_average_profit``. The RFM summary comes from ``features`` (identical to
lifetimes' own, tested), and the 12-month CLV is summed here month by month.

Input: an RFM frame ``customer_id, frequency, recency, T, monetary_value`` in days (the output
of ``features.customers.rfm_summary`` or ``customer_features``). Outputs are pandas frames
indexed by ``customer_id``.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
the Pareto/NBD model"; Schmittlein, Morrison & Colombo (1987); Fader, Hardie & Lee (2005),
"RFM and CLV: using iso-value curves" (Gamma-Gamma).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
import polars as pl

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes warns about a pandas option at import
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
    from lifetimes.utils import ConvergenceError

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
DAYS_PER_MONTH = 30.0


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``."""


def as_pandas_rfm(rfm: pd.DataFrame | pl.DataFrame) -> pd.DataFrame:
    """RFM columns as a float pandas frame indexed by ``customer_id``."""
    if isinstance(rfm, pl.DataFrame):
        rfm = rfm.select("customer_id", *RFM_COLUMNS).to_pandas()
    if "customer_id" in rfm.columns:
        rfm = rfm.set_index("customer_id")
    missing = [c for c in RFM_COLUMNS if c not in rfm.columns]
    if missing:
        raise ValueError(f"RFM frame lacks column(s) {missing}")
    frame = rfm[list(RFM_COLUMNS)].astype("float64")
    if (frame["recency"] > frame["T"]).any():
        raise ValueError("Some values in recency are larger than T: RFM built at another as-of date?")
    return frame


class BTYDModel:
    """Probability alive, expected orders and revenue in a horizon, and 12-month CLV.

    Parameters
    ----------
    model : "bgnbd" or "pareto"
        BG/NBD (Fader, Hardie & Lee 2005) or Pareto/NBD (Schmittlein et al. 1987).
    penalizer_coef : float
        L2 penalty on the parameters; 0 reproduces the papers.
    time_unit_days : float
        Fit in this unit (7 = weeks, as in the papers): better conditioned than days.
    max_fit_customers : int
        Fit on at most this many customers (a seeded sample); predictions cover everyone.
    annual_discount_rate : float
        Discount rate for the CLV, per year.
    """

    def __init__(
        self,
        model: Literal["bgnbd", "pareto"] = "bgnbd",
        penalizer_coef: float = 0.0,
        time_unit_days: float = 7.0,
        max_fit_customers: int = 200_000,
        annual_discount_rate: float = 0.10,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.penalizer_coef = penalizer_coef
        self.time_unit_days = time_unit_days
        self.max_fit_customers = max_fit_customers
        self.annual_discount_rate = annual_discount_rate
        self.random_state = random_state

    def fit(self, rfm: pd.DataFrame | pl.DataFrame) -> BTYDModel:
        frame = as_pandas_rfm(rfm)
        if len(frame) > self.max_fit_customers:
            frame = frame.sample(self.max_fit_customers, random_state=self.random_state)
        unit = self.time_unit_days
        # Identical histories are fitted once with a weight: far fewer likelihood terms.
        grouped = (
            frame.assign(recency=frame["recency"] / unit, T=frame["T"] / unit)
            .groupby(["frequency", "recency", "T"], as_index=False)
            .size()
        )
        if self.model not in ("bgnbd", "pareto"):
            raise ValueError(f"model must be 'bgnbd' or 'pareto', got {self.model!r}")
        fitter = self._fit_frequency(grouped)
        repeat = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
        self.spend_params_: dict[str, float] = self._fit_spend(repeat) if len(repeat) >= 10 else {}
        # Only the parameters are kept: lifetimes' fitters hold lambdas and do not pickle.
        self.params_ = {k: float(v) for k, v in fitter.params_.items()}
        # Customers with no repeat purchase (or when spend cannot be fitted) spend the mean.
        self.mean_order_value_ = float(frame["monetary_value"][frame["monetary_value"] > 0].mean()
                                       if (frame["monetary_value"] > 0).any() else 0.0)
        return self

    def _fit_frequency(self, grouped: pd.DataFrame) -> BetaGeoFitter | ParetoNBDFitter:
        """Fit, retrying with a growing penalty when the optimiser does not converge (small or
        odd shops); the penalty used is kept in ``penalizer_used_``."""
        penalties = [self.penalizer_coef] + [p for p in (1e-3, 1e-2, 1e-1) if p > self.penalizer_coef]
        for penalty in penalties:
            fitter = (BetaGeoFitter if self.model == "bgnbd" else ParetoNBDFitter)(penalizer_coef=penalty)
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    fitter.fit(grouped["frequency"], grouped["recency"], grouped["T"],
                               weights=grouped["size"])
            except ConvergenceError:
                continue
            self.penalizer_used_ = penalty
            return fitter
        raise ConvergenceError(
            f"{self.model} did not converge even with penalizer {penalties[-1]}: "
            "too few or too uniform customers? Check the as-of date and the history."
        )

    def _fit_spend(self, repeat: pd.DataFrame) -> dict[str, float]:
        """Gamma-Gamma on spend in units of its median: amounts in tenge or rubles run to
        millions and stall the optimiser. The expected spend is linear in (v, spend), so the
        scale goes back into v. Empty (mean spend is used) if it does not converge."""
        scale = float(repeat["monetary_value"].median()) or 1.0
        for penalty in (self.penalizer_coef, 1e-4, 1e-3, 1e-2, 1e-1):
            spend = GammaGammaFitter(penalizer_coef=penalty)
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    spend.fit(repeat["frequency"], repeat["monetary_value"] / scale)
            except ConvergenceError:
                continue
            params = {k: float(v) for k, v in spend.params_.items()}
            params["v"] *= scale
            return params
        return {}

    def _check(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("Model has not been fit yet: call fit(rfm) first.")

    @property
    def frequency_model_(self) -> BetaGeoFitter | ParetoNBDFitter:
        fitter = BetaGeoFitter() if self.model == "bgnbd" else ParetoNBDFitter()
        fitter.params_ = pd.Series(self.params_)
        return fitter

    @property
    def spend_model_(self) -> GammaGammaFitter | None:
        if not self.spend_params_:
            return None
        fitter = GammaGammaFitter()
        fitter.params_ = pd.Series(self.spend_params_)
        return fitter

    def _scaled(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        unit = self.time_unit_days
        return (frame["frequency"].to_numpy(), frame["recency"].to_numpy() / unit,
                frame["T"].to_numpy() / unit)

    def _expected_orders(self, frame: pd.DataFrame, days: float) -> np.ndarray:
        x, t_x, T = self._scaled(frame)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = self.frequency_model_.conditional_expected_number_of_purchases_up_to_time(
                days / self.time_unit_days, x, t_x, T
            )
        return np.nan_to_num(np.asarray(expected, dtype=float), nan=0.0, posinf=0.0)

    def predict_p_alive(self, rfm: pd.DataFrame | pl.DataFrame) -> pd.Series:
        self._check()
        frame = as_pandas_rfm(rfm)
        x, t_x, T = self._scaled(frame)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = np.asarray(self.frequency_model_.conditional_probability_alive(x, t_x, T), dtype=float)
            # Pareto/NBD's hypergeometric terms overflow for very frequent buyers; for them the
            # chance of a silence as long as the current one at their own rate is a close stand-in.
            rate = np.divide(x, t_x, out=np.zeros_like(t_x), where=t_x > 0)
            p = np.where(np.isfinite(p), p, np.exp(-rate * (T - t_x)))
        return pd.Series(np.clip(p, 0, 1), index=frame.index, name="p_alive")

    def predict_expected_orders(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.Series:
        self._check()
        frame = as_pandas_rfm(rfm)
        return pd.Series(self._expected_orders(frame, horizon_days), index=frame.index,
                         name="expected_orders")

    def predict_p_no_order(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.Series:
        """P(no order in the next ``horizon_days``).

        BG/NBD: a customer alive now stays alive until the next purchase, so
        P = 1 - P(alive) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)), exactly.
        Pareto/NBD: the same Poisson-gamma term, ignoring death within the horizon (an upper
        bound on the probability of ordering).
        """
        self._check()
        frame = as_pandas_rfm(rfm)
        x, _, T = self._scaled(frame)
        r, alpha = self.params_["r"], self.params_["alpha"]
        t = horizon_days / self.time_unit_days
        p_order_if_alive = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x)
        p = 1.0 - self.predict_p_alive(frame).to_numpy() * p_order_if_alive
        return pd.Series(np.clip(p, 0, 1), index=frame.index, name="p_no_order")

    def predict_order_value(self, rfm: pd.DataFrame | pl.DataFrame) -> pd.Series:
        """Expected value of a future order (Gamma-Gamma), the fitted mean for one-timers."""
        self._check()
        frame = as_pandas_rfm(rfm)
        value = np.full(len(frame), self.mean_order_value_)
        spend_model = self.spend_model_
        if spend_model is not None:
            usable = ((frame["frequency"] > 0) & (frame["monetary_value"] > 0)).to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = np.asarray(spend_model.conditional_expected_average_profit(
                    frame["frequency"].where(usable, 1.0), frame["monetary_value"].where(usable, 1.0)
                ), dtype=float)
                population = spend_model.conditional_expected_average_profit(
                    pd.Series([0.0]), pd.Series([1.0])
                )
            value = np.where(usable, value, float(np.asarray(population)[0]))
        return pd.Series(value, index=frame.index, name="order_value")

    def predict_expected_revenue(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.Series:
        frame = as_pandas_rfm(rfm)
        revenue = self.predict_expected_orders(frame, horizon_days) * self.predict_order_value(frame)
        return revenue.rename("expected_revenue")

    def predict_clv(self, rfm: pd.DataFrame | pl.DataFrame, months: int = 12) -> pd.Series:
        """Discounted revenue over the next ``months``: each month's expected orders times the
        expected order value, discounted at ``annual_discount_rate``."""
        self._check()
        frame = as_pandas_rfm(rfm)
        monthly_rate = (1 + self.annual_discount_rate) ** (1 / 12) - 1
        value = self.predict_order_value(frame).to_numpy()
        clv = np.zeros(len(frame))
        previous = np.zeros(len(frame))
        for month in range(1, months + 1):
            cumulative = self._expected_orders(frame, month * DAYS_PER_MONTH)
            clv += (cumulative - previous) * value / (1 + monthly_rate) ** month
            previous = cumulative
        return pd.Series(clv, index=frame.index, name=f"clv_{months}m")

    def predict(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.DataFrame:
        """All outputs: ``p_alive, p_no_order, expected_orders, expected_revenue, clv_12m``."""
        frame = as_pandas_rfm(rfm)
        orders = self.predict_expected_orders(frame, horizon_days)
        return pd.DataFrame({
            "p_alive": self.predict_p_alive(frame),
            "p_no_order": self.predict_p_no_order(frame, horizon_days),
            "expected_orders": orders,
            "expected_revenue": orders * self.predict_order_value(frame),
            "clv_12m": self.predict_clv(frame, 12),
        })


__all__ = ["BTYDModel", "ConvergenceError", "NotFittedError", "as_pandas_rfm"]
