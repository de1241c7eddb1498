"""Probabilistic "buy till you die" models: BG/NBD or Pareto/NBD with Gamma-Gamma spend.

The only module of retain that imports lifetimes (0.11.3, 2020). It uses just the parts that
work under pandas 3 / numpy 2: the fitters' ``fit``, and for Pareto/NBD its
``conditional_probability_alive`` and ``conditional_expected_number_of_purchases_up_to_time``.
BG/NBD's and Gamma-Gamma's predictions are the same closed forms written here in plain numpy
(:class:`BGNBDPredictions`, :class:`GammaGammaPredictions`, tested equal to lifetimes'): cheaper
per call than lifetimes' autograd-wrapped ones. The RFM summary comes from ``features``
(identical to lifetimes' own, tested), and the 12-month CLV is summed here month by month.

Input: an RFM frame ``customer_id, frequency, recency, T, monetary_value`` in days (the output
of ``features.customers.rfm_summary`` or ``customer_features``). Outputs are pandas frames
indexed by ``customer_id``.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
the Pareto/NBD model"; Schmittlein, Morrison & Colombo (1987); Fader, Hardie & Lee (2005),
"RFM and CLV: using iso-value curves" (Gamma-Gamma).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import polars as pl
from scipy.special import expit, hyp2f1

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes warns about a pandas option at import
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
    from lifetimes.utils import ConvergenceError

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
DAYS_PER_MONTH = 30.0


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``."""


class InsufficientHistoryError(ValueError):
    """Too little history to fit a model: too few customers, or nobody bought twice. The
    message says what the shop has and what is needed; the CLI prints it as one line."""


# Below this many customers, or without a single repeat buyer, the frequency models have
# nothing to learn a repeat rate from (lifetimes ends in "Singular matrix" or NaN parameters).
MIN_FIT_CUSTOMERS = 10
MIN_FIT_REPEAT_BUYERS = 1
BTYD_KINDS = ("bgnbd", "pareto", "mbgnbd")
BTYD_NAMES = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD"}


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
    model : "bgnbd", "pareto" or "mbgnbd"
        BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (Schmittlein et al. 1987) or MBG/NBD
        (Batislam et al. 2007: BG/NBD where a customer may also drop out before any repeat).
    penalizer_coef : float
        L2 penalty on the parameters; 0 reproduces the papers.
    time_unit_days : float
        Fit in this unit (7 = weeks, as in the papers): better conditioned than days.
    max_fit_customers : int or None
        Fit on at most this many customers (a seeded sample); predictions cover everyone.
        None (the default) fits every customer: the fit runs on the distinct histories
        (:func:`grouped_rfm`), whose number stops growing with the shop.
    annual_discount_rate : float
        Discount rate for the CLV, per year.
    """

    def __init__(
        self,
        model: Literal["bgnbd", "pareto", "mbgnbd"] = "bgnbd",
        penalizer_coef: float = 0.0,
        time_unit_days: float = 7.0,
        max_fit_customers: int | None = None,
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
        if self.model not in BTYD_KINDS:
            raise ValueError(f"model must be one of {BTYD_KINDS}, got {self.model!r}")
        frame = as_pandas_rfm(rfm)
        if self.max_fit_customers is not None and len(frame) > self.max_fit_customers:
            frame = frame.sample(self.max_fit_customers, random_state=self.random_state)
        # A customer whose first purchase is on the last day has T = 0: lifetimes refuses the
        # whole fit ("zero length vector"). They carry no information on the repeat rate yet;
        # they are left out of the fit only and scored like everyone else.
        frame = frame[frame["T"] > 0]
        repeat_buyers = int((frame["frequency"] > 0).sum())
        if len(frame) < MIN_FIT_CUSTOMERS or repeat_buyers < MIN_FIT_REPEAT_BUYERS:
            raise InsufficientHistoryError(
                f"too little history for any model: {len(frame)} customer(s) with a purchase "
                f"before the last day, {repeat_buyers} of them bought more than once (need at "
                f"least {MIN_FIT_CUSTOMERS} customers and {MIN_FIT_REPEAT_BUYERS} repeat buyer). "
                "Pass a longer history or a later --as-of."
            )
        unit = self.time_unit_days
        grouped = grouped_rfm(frame.assign(recency=frame["recency"] / unit, T=frame["T"] / unit))
        self.fit_customers_ = len(frame)
        self.fit_groups_ = len(grouped)
        fitter = self._fit_frequency(grouped)
        repeat = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
        self.spend_params_: dict[str, float] = self._fit_spend(repeat) if len(repeat) >= 10 else {}
        # Only the parameters are kept: lifetimes' fitters hold lambdas and do not pickle.
        self.params_ = {k: float(v) for k, v in fitter.params_.items()}
        # Customers with no repeat purchase (or when spend cannot be fitted) spend the mean.
        self.mean_order_value_ = float(frame["monetary_value"][frame["monetary_value"] > 0].mean()
                                       if (frame["monetary_value"] > 0).any() else 0.0)
        return self

    def _fit_frequency(self, grouped: pd.DataFrame) -> BetaGeoFitter | ParetoNBDFitter | ModifiedBetaGeoFitter:
        """Fit, retrying with a growing penalty when the optimiser does not converge (small or
        odd shops); the penalty used is kept in ``penalizer_used_``."""
        penalties = [self.penalizer_coef] + [p for p in (1e-3, 1e-2, 1e-1) if p > self.penalizer_coef]
        weights = grouped["size"].to_numpy()
        # lifetimes' Pareto/NBD divides the weighted log-likelihood by the mean weight, not the
        # sum: the penalty is rescaled so the grouped objective is the per-customer one times
        # a constant, and the fit the same. Its Nelder-Mead start is random by default
        # (np.random.normal(1, 0.05)): the fixed start at that mean makes refits identical.
        scale = float(weights.mean()) if self.model == "pareto" else 1.0
        extra = {"initial_params": np.ones(4)} if self.model == "pareto" else {}
        for penalty in penalties:
            fitter = FITTERS[self.model](penalizer_coef=penalty / scale)
            try:
                with _quiet():
                    fitter.fit(grouped["frequency"], grouped["recency"], grouped["T"],
                               weights=weights, **extra)
            except (ConvergenceError, np.linalg.LinAlgError):
                continue
            if not np.isfinite(np.asarray(fitter.params_, dtype=float)).all():
                continue
            self.penalizer_used_ = penalty
            return fitter
        raise InsufficientHistoryError(
            f"the {BTYD_NAMES[self.model]} model did not converge even with penalizer "
            f"{penalties[-1]}: too few or too uniform customers. Check the as-of date and the history."
        )

    def _fit_spend(self, repeat: pd.DataFrame) -> dict[str, float]:
        """Gamma-Gamma on spend in units of its median: amounts in tenge or rubles run to
        millions and stall the optimiser. The expected spend is linear in (v, spend), so the
        scale goes back into v. Fitted on :func:`grouped_spend` (spend rounded to
        ``SPEND_SIGNIFICANT_DIGITS``). Empty (mean spend is used) if it does not converge."""
        scale = float(repeat["monetary_value"].median()) or 1.0
        grouped = grouped_spend(repeat["frequency"].to_numpy(),
                                repeat["monetary_value"].to_numpy() / scale)
        self.spend_groups_ = len(grouped)
        for penalty in (self.penalizer_coef, 1e-4, 1e-3, 1e-2, 1e-1):
            spend = GammaGammaFitter(penalizer_coef=penalty)
            try:
                with _quiet():
                    spend.fit(grouped["frequency"], grouped["monetary_value"],
                              weights=grouped["size"].to_numpy())
            except ConvergenceError:
                continue
            params = {k: float(v) for k, v in spend.params_.items()}
            params["v"] *= scale
            return params
        return {}

    def _check(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("Model has not been fit yet: call fit(rfm) first.")

    def fitted_params(self) -> dict[str, float]:
        """The fitted parameters under their papers' names, for logging: the frequency model's
        (``r, alpha, a, b`` for BG/NBD and MBG/NBD, ``r, alpha, s, beta`` for Pareto/NBD) in
        the fitting time unit (``time_unit_days``), the penalty the fit ended with
        (``penalizer``), and Gamma-Gamma's ``gg.p, gg.q, gg.v`` (``v`` in the data's currency)
        when spend was fitted."""
        self._check()
        out = dict(self.params_)
        out["penalizer"] = float(getattr(self, "penalizer_used_", self.penalizer_coef))
        out.update({f"gg.{k}": v for k, v in self.spend_params_.items()})
        return out

    def simulate_frequency(self, T_days: np.ndarray, random_state: int = 0) -> np.ndarray:
        """Repeat purchase days each of a population of new customers would make in ``T_days``
        (one per customer), drawn from the fitted model: what lifetimes'
        ``plot_period_transactions`` compares with the observed ``frequency``.

        BG/NBD: purchase rate ``lambda ~ Gamma(r, alpha)``, and after each repeat purchase the
        customer drops out with ``p ~ Beta(a, b)``; MBG/NBD may also drop out at the first
        purchase; Pareto/NBD: a lifetime ``~ Exp(mu)``, ``mu ~ Gamma(s, beta)``."""
        self._check()
        rng = np.random.default_rng(random_state)
        T = np.asarray(T_days, dtype=float) / self.time_unit_days
        n, params = len(T), self.params_
        rate = rng.gamma(params["r"], 1.0 / params["alpha"], n)
        if self.model == "pareto":
            # A death rate drawn as 0 (tiny s) is a customer who never leaves: lifetime inf.
            with np.errstate(divide="ignore"):
                lifetime = rng.exponential(1.0 / rng.gamma(params["s"], 1.0 / params["beta"], n))
            return rng.poisson(rate * np.minimum(lifetime, T)).astype(float)
        # Beta draws may round to exactly 0 (a tiny ``a``): a customer who never drops out.
        p = np.clip(rng.beta(params["a"], params["b"], n), 1e-12, 1.0)
        # Repeat purchases before dropping out: geometric from 1 (BG/NBD) or from 0 (MBG/NBD).
        before_dropout = rng.geometric(p) - (1 if self.model == "mbgnbd" else 0)
        return np.minimum(rng.poisson(rate * T), before_dropout).astype(float)

    @property
    def frequency_model_(self) -> BGNBDPredictions | ParetoNBDFitter | ModifiedBetaGeoFitter:
        if self.model == "bgnbd":
            return BGNBDPredictions(**self.params_)
        fitter = FITTERS[self.model]()
        # A dict, not the pd.Series lifetimes builds: its predictions read parameters by name
        # only, and a Series costs more than the prediction itself on one customer.
        fitter.params_ = dict(self.params_)
        return fitter

    @property
    def spend_model_(self) -> GammaGammaPredictions | None:
        return GammaGammaPredictions(**self.spend_params_) if self.spend_params_ else None

    def _arrays(self, rfm: pd.DataFrame | pl.DataFrame) -> _RFM:
        """One conversion per call: the column arrays, time scaled to the fitting unit."""
        self._check()
        if isinstance(rfm, pl.DataFrame):  # straight to numpy: no pandas frame on the hot path
            missing = [c for c in ("customer_id", *RFM_COLUMNS) if c not in rfm.columns]
            if missing:
                raise ValueError(f"RFM frame lacks column(s) {missing}")
            ids = rfm.get_column("customer_id")
            # The features' columns are Float64 already: a cast that changes nothing still
            # costs a few microseconds a column on one customer.
            columns = [rfm.get_column(c) for c in RFM_COLUMNS]
            x, t_x, T, m = (c.to_numpy() if c.dtype == pl.Float64 else c.cast(pl.Float64).to_numpy()
                            for c in columns)
            if (t_x > T).any():
                raise ValueError("Some values in recency are larger than T: RFM built at another as-of date?")
        else:
            frame = as_pandas_rfm(rfm)
            ids = frame.index
            x, t_x, T, m = (frame[c].to_numpy() for c in RFM_COLUMNS)
        unit = self.time_unit_days
        return _RFM(ids, x, t_x / unit, T / unit, m)

    def _expected_orders(self, a: _RFM, days: np.ndarray | float,
                         fitter: BGNBDPredictions | ParetoNBDFitter) -> np.ndarray:
        """Expected orders up to each of ``days`` (a column vector gives one row per horizon)."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = fitter.conditional_expected_number_of_purchases_up_to_time(
                np.asarray(days, dtype=float) / self.time_unit_days, a.x, a.t_x, a.T
            )
        return np.nan_to_num(np.asarray(expected, dtype=float), nan=0.0, posinf=0.0)

    def _p_alive(self, a: _RFM, fitter: BGNBDPredictions | ParetoNBDFitter) -> np.ndarray:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = np.asarray(fitter.conditional_probability_alive(a.x, a.t_x, a.T), dtype=float)
            # Pareto/NBD's hypergeometric terms overflow for very frequent buyers; for them the
            # chance of a silence as long as the current one at their own rate is a close stand-in.
            rate = np.divide(a.x, a.t_x, out=np.zeros_like(a.t_x), where=a.t_x > 0)
            p = np.where(np.isfinite(p), p, np.exp(-rate * (a.T - a.t_x)))
        return np.clip(p, 0, 1)

    def _p_no_order(self, a: _RFM, horizon_days: float, p_alive: np.ndarray) -> np.ndarray:
        r, alpha = self.params_["r"], self.params_["alpha"]
        t = horizon_days / self.time_unit_days
        p_order_if_alive = 1.0 - ((alpha + a.T) / (alpha + a.T + t)) ** (r + a.x)
        return np.clip(1.0 - p_alive * p_order_if_alive, 0, 1)

    def _order_value(self, a: _RFM) -> np.ndarray:
        spend_model = self.spend_model_
        if spend_model is None:
            return np.full(len(a.x), self.mean_order_value_)
        usable = (a.x > 0) & (a.m > 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = np.asarray(spend_model.conditional_expected_average_profit(
                np.where(usable, a.x, 1.0), np.where(usable, a.m, 1.0)), dtype=float)
            population = np.asarray(spend_model.conditional_expected_average_profit(
                np.array([0.0]), np.array([1.0])), dtype=float)[0]
        return np.where(usable, value, population)

    def _clv(self, a: _RFM, months: int, value: np.ndarray,
             fitter: BGNBDPredictions | ParetoNBDFitter,
             cumulative: np.ndarray | None = None) -> np.ndarray:
        """``cumulative``: the expected orders up to each month, if already computed."""
        monthly_rate = (1 + self.annual_discount_rate) ** (1 / 12) - 1
        month = np.arange(1, months + 1, dtype=float)[:, None]
        if cumulative is None:
            cumulative = self._expected_orders(a, month * DAYS_PER_MONTH, fitter)  # months x customers
        # np.diff(cumulative, axis=0, prepend=0.0), the same subtractions without its set-up.
        per_month = cumulative.copy()
        per_month[1:] -= cumulative[:-1]
        return (per_month * value / (1 + monthly_rate) ** month).sum(axis=0)

    def predict_p_alive(self, rfm: pd.DataFrame | pl.DataFrame) -> pd.Series:
        a = self._arrays(rfm)
        return pd.Series(self._p_alive(a, self.frequency_model_), index=a.customer_index(), name="p_alive")

    def predict_expected_orders(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.Series:
        a = self._arrays(rfm)
        return pd.Series(self._expected_orders(a, horizon_days, self.frequency_model_),
                         index=a.customer_index(), name="expected_orders")

    def predict_p_no_order(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.Series:
        """P(no order in the next ``horizon_days``).

        BG/NBD: a customer alive now stays alive until the next purchase, so
        P = 1 - P(alive) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)), exactly.
        Pareto/NBD: the same Poisson-gamma term, ignoring death within the horizon (an upper
        bound on the probability of ordering).
        """
        a = self._arrays(rfm)
        p_alive = self._p_alive(a, self.frequency_model_)
        return pd.Series(self._p_no_order(a, horizon_days, p_alive), index=a.customer_index(),
                         name="p_no_order")

    def predict_order_value(self, rfm: pd.DataFrame | pl.DataFrame) -> pd.Series:
        """Expected value of a future order (Gamma-Gamma), the fitted mean for one-timers."""
        a = self._arrays(rfm)
        return pd.Series(self._order_value(a), index=a.customer_index(), name="order_value")

    def predict_expected_revenue(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.Series:
        a = self._arrays(rfm)
        revenue = self._expected_orders(a, horizon_days, self.frequency_model_) * self._order_value(a)
        return pd.Series(revenue, index=a.customer_index(), name="expected_revenue")

    def predict_clv(self, rfm: pd.DataFrame | pl.DataFrame, months: int = 12) -> pd.Series:
        """Discounted revenue over the next ``months``: each month's expected orders times the
        expected order value, discounted at ``annual_discount_rate``."""
        a = self._arrays(rfm)
        return pd.Series(self._clv(a, months, self._order_value(a), self.frequency_model_),
                         index=a.customer_index(), name=f"clv_{months}m")

    def predict(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> pd.DataFrame:
        """All outputs: ``p_alive, p_no_order, expected_orders, expected_revenue, clv_12m``."""
        a = self._arrays(rfm)
        return pd.DataFrame(self._predict_arrays(a, horizon_days), index=a.customer_index())

    def predict_arrays(self, rfm: pd.DataFrame | pl.DataFrame, horizon_days: float) -> dict[str, np.ndarray]:
        """``predict`` as plain arrays in ``rfm``'s row order: no pandas on the scoring path."""
        return self._predict_arrays(self._arrays(rfm), horizon_days)

    def _predict_arrays(self, a: _RFM, horizon_days: float) -> dict[str, np.ndarray]:
        fitter = self.frequency_model_  # built once per call: building one costs ~60 us
        p_alive = self._p_alive(a, fitter)
        # The horizon and the CLV's 12 months in one evaluation (one customer: ~60 us less).
        days = np.append(float(horizon_days), np.arange(1, 13) * DAYS_PER_MONTH)[:, None]
        expected = self._expected_orders(a, days, fitter)
        orders = expected[0]
        value = self._order_value(a)
        return {
            "p_alive": p_alive,
            "p_no_order": self._p_no_order(a, horizon_days, p_alive),
            "expected_orders": orders,
            "expected_revenue": orders * value,
            "clv_12m": self._clv(a, 12, value, fitter, cumulative=expected[1:]),
        }


# Gamma-Gamma needs each repeat buyer's mean spend, a continuous value: few customers share
# one exactly. Rounded to 4 significant digits (at most 0.005% off each customer's spend), the
# distinct (frequency, spend) pairs stop growing with the shop; the parameters moved by at most
# 7e-5 relative on CDNOW (docs/scale.md has the measurements).
SPEND_SIGNIFICANT_DIGITS = 4


def grouped_rfm(frame: pd.DataFrame) -> pd.DataFrame:
    """``frequency, recency, T, size``: one row per distinct history and how many customers
    have it. The BTYD likelihoods depend on a customer only through (frequency, recency, T),
    so fitting the groups with ``weights=size`` is the same fit as on every customer (Fader
    & Hardie fit CDNOW this way) in far fewer terms: with recency and T in whole days a shop
    of any size has at most (history days)^2 / 2 histories per frequency."""
    return frame.groupby(["frequency", "recency", "T"], as_index=False, sort=True).size()


def grouped_spend(frequency: np.ndarray, spend: np.ndarray,
                  digits: int = SPEND_SIGNIFICANT_DIGITS) -> pd.DataFrame:
    """``frequency, monetary_value, size``: repeat buyers' mean spend rounded to ``digits``
    significant digits, grouped with their frequency, for a weighted Gamma-Gamma fit."""
    spend = np.asarray(spend, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = 10.0 ** (np.floor(np.log10(np.abs(spend))) - (digits - 1))
    rounded = np.where(spend > 0, np.round(spend / unit) * unit, spend)
    frame = pd.DataFrame({"frequency": np.asarray(frequency, dtype=float), "monetary_value": rounded})
    return frame.groupby(["frequency", "monetary_value"], as_index=False, sort=True).size()


FITTERS = {"bgnbd": BetaGeoFitter, "pareto": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}


@contextlib.contextmanager
def _quiet():
    """No warnings, and nothing on stdout: lifetimes prints scipy's whole OptimizeResult before
    it raises ConvergenceError, which the retries here expect and handle. On a real log (UCI
    Online Retail) that was 16 dumps in the middle of `retain train`'s output and of any table
    a command writes to stdout."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class BGNBDPredictions:
    """lifetimes' ``BetaGeoFitter`` predictions, the same formulas in plain numpy: lifetimes
    runs them through autograd's numpy wrappers, ~1 us per operation, which made them most of
    the probabilistic model's cost on the API's one-customer requests. Tested equal."""

    r: float
    alpha: float
    a: float
    b: float

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """Fader, Hardie & Lee (2005), equation (10): expected repeat purchases in (T, T + t]."""
        r, alpha, a, b, x = self.r, self.alpha, self.a, self.b, frequency
        _a, _b, _c, _z = r + x, b + x, a + b + x - 1, t / (alpha + T + t)
        ln_hyp_term = np.log(hyp2f1(_a, _b, _c, _z))
        overflowed = np.isinf(ln_hyp_term)
        if overflowed.any():  # there, an equivalent form (Euler's transformation)
            ln_hyp_term_alt = (np.log(hyp2f1(_c - _a, _c - _b, _c, _z))
                               + (_c - _a - _b) * np.log(1 - _z))
            ln_hyp_term = np.where(overflowed, ln_hyp_term_alt, ln_hyp_term)
        first_term = (a + b + x - 1) / (a - 1)
        second_term = 1 - np.exp(ln_hyp_term + (r + x) * np.log((alpha + T) / (alpha + t + T)))
        denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + recency)) ** (r + x)
        return first_term * second_term / denominator

    def conditional_probability_alive(self, frequency, recency, T):
        """Hardie's note 021: P(alive | x, t_x, T); 1 for customers without a repeat."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_div = ((r + frequency) * np.log((alpha + T) / (alpha + recency))
                   + np.log(a / (b + np.maximum(frequency, 1) - 1)))
        return np.atleast_1d(np.where(frequency == 0, 1.0, expit(-log_div)))


@dataclass(frozen=True)
class GammaGammaPredictions:
    """lifetimes' ``GammaGammaFitter.conditional_expected_average_profit`` in plain numpy."""

    p: float
    q: float
    v: float

    def conditional_expected_average_profit(self, frequency, monetary_value):
        """Hardie's note 025, equation (5): a weighted mean of the customer's and the
        population's average order value."""
        individual_weight = self.p * frequency / (self.p * frequency + self.q - 1)
        population_mean = self.v * self.p / (self.q - 1)
        return (1 - individual_weight) * population_mean + individual_weight * monetary_value


class _RFM(NamedTuple):
    ids: pl.Series | pd.Index
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray

    def customer_index(self) -> pd.Index:
        """``customer_id`` as a pandas index, built only for the pandas outputs."""
        if isinstance(self.ids, pd.Index):
            return self.ids
        return pd.Index(self.ids.to_list(), name="customer_id")


__all__ = [
    "BTYD_KINDS",
    "BTYD_NAMES",
    "SPEND_SIGNIFICANT_DIGITS",
    "BTYDModel",
    "ConvergenceError",
    "InsufficientHistoryError",
    "NotFittedError",
    "as_pandas_rfm",
    "grouped_rfm",
    "grouped_spend",
]
