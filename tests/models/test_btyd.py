from __future__ import annotations

import pickle

import numpy as np
import pytest

from retain.features.customers import rfm_summary
from retain.features.samples import CDNOW_CALIBRATION_END, cdnow_sample_transactions
from retain.models.btyd import BTYDModel, NotFittedError


@pytest.fixture(scope="module")
def cdnow_rfm():
    return rfm_summary(cdnow_sample_transactions(), CDNOW_CALIBRATION_END)


@pytest.fixture(scope="module")
def bgnbd(cdnow_rfm):
    return BTYDModel().fit(cdnow_rfm)


def test_bgnbd_params_are_close_to_fader_hardie_lee_2005(bgnbd):
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert bgnbd.params_[name] == pytest.approx(value, rel=0.01), name


def test_pareto_nbd_params_are_close_to_published(cdnow_rfm):
    # Fader, Hardie & Lee (2005), Pareto/NBD on the same CDNOW sample (weeks).
    pareto = BTYDModel(model="pareto").fit(cdnow_rfm)
    expected = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in expected.items():
        assert pareto.params_[name] == pytest.approx(value, rel=0.01), name


def test_outputs_are_indexed_by_customer_and_sensible(bgnbd, cdnow_rfm):
    out = bgnbd.predict(cdnow_rfm, horizon_days=90)
    assert list(out.index[:3]) == cdnow_rfm["customer_id"].head(3).to_list()
    assert out["p_alive"].between(0, 1).all() and out["p_no_order"].between(0, 1).all()
    one_timers = (cdnow_rfm["frequency"] == 0).to_numpy()
    assert (out["p_alive"].to_numpy()[one_timers] == 1).all()  # BG/NBD: no repeat, no death
    assert (out["clv_12m"] >= out["expected_revenue"] - 1e-9).all()


def test_longer_horizons_mean_more_orders_and_less_chance_of_none(bgnbd, cdnow_rfm):
    short, long = bgnbd.predict(cdnow_rfm, 30), bgnbd.predict(cdnow_rfm, 180)
    assert (long["expected_orders"] >= short["expected_orders"]).all()
    assert (long["p_no_order"] <= short["p_no_order"] + 1e-12).all()


def test_p_no_order_matches_simulation_for_one_customer(bgnbd, cdnow_rfm):
    """Monte Carlo from the BG/NBD posterior agrees with the closed form."""
    row = cdnow_rfm.filter(cdnow_rfm["frequency"] == 3).head(1)
    x, T = row["frequency"].item(), row["T"].item() / 7
    r, alpha = bgnbd.params_["r"], bgnbd.params_["alpha"]
    rng = np.random.default_rng(0)
    n = 400_000
    p_alive = bgnbd.predict_p_alive(row).item()
    alive = rng.random(n) < p_alive
    rate = rng.gamma(r + x, 1 / (alpha + T), n)
    none_in_window = rng.random(n) < np.exp(-rate * 90 / 7)
    simulated = np.mean(~alive | none_in_window)
    assert bgnbd.predict_p_no_order(row, 90).item() == pytest.approx(simulated, abs=0.005)


def test_predicting_before_fit_fails_loudly(cdnow_rfm):
    with pytest.raises(NotFittedError, match="not been fit"):
        BTYDModel().predict(cdnow_rfm, 90)


def test_init_stores_parameters_only_and_fit_returns_self(cdnow_rfm):
    model = BTYDModel(model="bgnbd", penalizer_coef=0.01)
    assert vars(model) == {"model": "bgnbd", "penalizer_coef": 0.01, "time_unit_days": 7.0,
                           "max_fit_customers": None, "annual_discount_rate": 0.10,
                           "random_state": 0}
    assert model.fit(cdnow_rfm) is model


def test_fitted_model_pickles_and_predicts_the_same(bgnbd, cdnow_rfm):
    restored = pickle.loads(pickle.dumps(bgnbd))
    np.testing.assert_array_equal(restored.predict(cdnow_rfm, 90).to_numpy(),
                                  bgnbd.predict(cdnow_rfm, 90).to_numpy())


def test_rfm_from_another_as_of_is_refused(bgnbd, cdnow_rfm):
    broken = cdnow_rfm.with_columns(cdnow_rfm["T"] - 300)
    with pytest.raises(ValueError, match="recency are larger than T"):
        bgnbd.predict(broken, 90)


def test_sample_fit_is_seeded(cdnow_rfm):
    a = BTYDModel(max_fit_customers=1000, random_state=1).fit(cdnow_rfm).params_
    b = BTYDModel(max_fit_customers=1000, random_state=1).fit(cdnow_rfm).params_
    assert a == b


def test_gamma_gamma_spend_is_close_to_fader_hardie_lee_2005(bgnbd):
    # "RFM and CLV: using iso-value curves", CDNOW sample: p = 6.25, q = 3.74, v = 15.44.
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert bgnbd.spend_params_[name] == pytest.approx(value, rel=0.01), name


def test_bgnbd_and_gamma_gamma_predictions_equal_lifetimes(bgnbd, cdnow_rfm):
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    x, t_x, T, m = (np.asarray(cdnow_rfm[c].to_numpy(), dtype=float)
                    for c in ("frequency", "recency", "T", "monetary_value"))
    t_x, T = t_x / bgnbd.time_unit_days, T / bgnbd.time_unit_days
    ours, theirs = bgnbd.frequency_model_, BetaGeoFitter()
    theirs.params_ = dict(bgnbd.params_)
    np.testing.assert_allclose(ours.conditional_probability_alive(x, t_x, T),
                               theirs.conditional_probability_alive(x, t_x, T), rtol=1e-14)
    for t in (1.0, 13.0, np.arange(1, 53, dtype=float)[:, None]):  # one horizon and many
        np.testing.assert_allclose(
            ours.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
            theirs.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T), rtol=1e-13)
    spend, their_spend = bgnbd.spend_model_, GammaGammaFitter()
    their_spend.params_ = dict(bgnbd.spend_params_)
    repeat = x > 0
    np.testing.assert_allclose(
        spend.conditional_expected_average_profit(x[repeat], m[repeat]),
        their_spend.conditional_expected_average_profit(x[repeat], m[repeat]), rtol=1e-14)


def test_bgnbd_expected_orders_of_very_frequent_buyers_take_the_overflow_form():
    from lifetimes import BetaGeoFitter
    from scipy.special import hyp2f1

    from retain.models.btyd import BGNBDPredictions

    params = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
    x = np.array([0.0, 1, 50, 300, 1000, 3000])
    T = np.full(len(x), 60.0)
    t_x = T - 1
    z = 52 / (params["alpha"] + T + 52)
    overflowing = np.isinf(np.log(hyp2f1(params["r"] + x, params["b"] + x,
                                         params["a"] + params["b"] + x - 1, z)))
    assert overflowing.any() and not overflowing.all()
    theirs = BetaGeoFitter()
    theirs.params_ = dict(params)
    with np.errstate(all="ignore"):
        ours = BGNBDPredictions(**params).conditional_expected_number_of_purchases_up_to_time(
            52.0, x, t_x, T)
        expected = theirs.conditional_expected_number_of_purchases_up_to_time(52.0, x, t_x, T)
    np.testing.assert_allclose(ours, expected, rtol=1e-13)


def test_customers_first_buying_on_the_last_day_are_scored_not_fitted(cdnow_rfm):
    """T = 0 made lifetimes refuse the whole fit ("zero length vector"): such customers are
    left out of the fit, and scored like everyone else."""
    import polars as pl

    newcomers = pl.DataFrame({"customer_id": ["new1", "new2"], "frequency": [0.0, 0.0],
                              "recency": [0.0, 0.0], "T": [0.0, 0.0], "monetary_value": [0.0, 0.0]})
    rfm = pl.concat([cdnow_rfm.select(newcomers.columns), newcomers])
    for kind in ("bgnbd", "mbgnbd"):
        model = BTYDModel(model=kind).fit(rfm)
        out = model.predict_arrays(rfm.tail(2), 90)
        assert np.isfinite(out["p_no_order"]).all() and out["p_no_order"].max() < 1
        if kind == "bgnbd":  # without a repeat purchase, BG/NBD has nobody dead yet
            assert (out["p_alive"] == 1).all()
        assert np.isfinite(out["expected_orders"]).all() and (out["expected_orders"] > 0).all()


def test_without_a_repeat_buyer_there_is_one_clear_error(cdnow_rfm):
    import polars as pl

    from retain.models.btyd import InsufficientHistoryError

    once = cdnow_rfm.with_columns(pl.lit(0.0).alias("frequency"), pl.lit(0.0).alias("recency"),
                                  pl.lit(0.0).alias("monetary_value"))
    with pytest.raises(InsufficientHistoryError, match="0 of them bought more than once"):
        BTYDModel().fit(once)
    with pytest.raises(InsufficientHistoryError, match="1 customer"):
        BTYDModel().fit(cdnow_rfm.head(1))


def test_a_fit_that_needs_a_retry_prints_nothing(cdnow_rfm, capsys, monkeypatch):
    # lifetimes prints scipy's OptimizeResult before raising ConvergenceError; the retry with a
    # larger penalty is expected, so the dump must not reach the commands' stdout.
    from lifetimes import fitters

    real = fitters.minimize
    calls = []

    def first_fails(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            result.success = False
        return result

    monkeypatch.setattr(fitters, "minimize", first_fails)
    model = BTYDModel().fit(cdnow_rfm)
    assert len(calls) >= 2 and model.penalizer_used_ > 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("kind", ["bgnbd", "mbgnbd", "pareto"])
def test_simulated_repeat_counts_match_the_cdnow_sample_and_the_models_mean(cdnow_rfm, kind):
    """The period-transactions diagnostic: customers drawn from the fitted model over the
    sample's own observation periods make repeat purchases as the sample's customers did
    (Fader, Hardie & Lee 2005, figure 2: the models track the histogram closely), and on
    average as many as the model expects of a new customer."""
    model = BTYDModel(model=kind).fit(cdnow_rfm)
    T = cdnow_rfm["T"].to_numpy()
    simulated = model.simulate_frequency(T, random_state=3)
    actual = cdnow_rfm["frequency"].to_numpy()
    assert simulated.shape == actual.shape and (simulated >= 0).all()
    for count in (0, 1, 2):
        assert abs((simulated == count).mean() - (actual == count).mean()) < 0.03, count
    assert abs(simulated.mean() - actual.mean()) < 0.1 * actual.mean()
    # Seeded: the same draw twice.
    np.testing.assert_array_equal(simulated, model.simulate_frequency(T, random_state=3))


def test_fitted_params_name_the_papers_parameters(bgnbd):
    params = bgnbd.fitted_params()
    assert {"r", "alpha", "a", "b", "penalizer", "gg.p", "gg.q", "gg.v"} <= set(params)
    assert params["r"] == pytest.approx(0.243, rel=0.01) and params["penalizer"] == 0.0
    with pytest.raises(NotFittedError):
        BTYDModel().fitted_params()


@pytest.mark.parametrize("kind", ["bgnbd", "pareto"])
def test_simulated_frequencies_survive_degenerate_draws(cdnow_rfm, kind):
    """A fit on a real log can put the dropout or death parameters near zero (UCI Online
    Retail did): draws that round to 0 mean customers who never leave, not an error."""
    model = BTYDModel(model=kind).fit(cdnow_rfm)
    tiny = {"a": 1e-300} if kind == "bgnbd" else {"s": 1e-300}
    model.params_ = {**model.params_, **tiny}
    simulated = model.simulate_frequency(cdnow_rfm["T"].to_numpy(), random_state=1)
    assert np.isfinite(simulated).all() and (simulated >= 0).all()


@pytest.fixture(scope="module")
def cdnow_full_rfm():
    from datetime import date

    from retain.features.samples import cdnow_transactions

    return rfm_summary(cdnow_transactions(), date(1997, 10, 1))


def _per_customer_fit(kind: str, rfm, unit: float = 7.0):
    """lifetimes' fit on one row per customer (no weights): what the grouped fit must equal."""
    from retain.models.btyd import FITTERS, _quiet

    frame = rfm.to_pandas()
    frame = frame[frame["T"] > 0]
    fitter = FITTERS[kind]()
    extra = {"initial_params": np.ones(4)} if kind == "pareto" else {}
    with _quiet():
        fitter.fit(frame["frequency"], frame["recency"] / unit, frame["T"] / unit, **extra)
    return {k: float(v) for k, v in fitter.params_.items()}


@pytest.mark.parametrize("kind", ["bgnbd", "mbgnbd"])
def test_grouped_fit_equals_the_fit_on_every_customer_on_full_cdnow(cdnow_full_rfm, kind):
    """All 23,500 CDNOW customers fall into 8,683 distinct (frequency, recency, T) histories:
    the weighted fit on those is the per-customer fit (measured: 2e-13 relative)."""
    model = BTYDModel(model=kind).fit(cdnow_full_rfm)
    assert model.fit_customers_ == 23_500 and model.fit_groups_ < 0.4 * model.fit_customers_
    expected = _per_customer_fit(kind, cdnow_full_rfm)
    for name, value in expected.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-6), name


def test_grouped_pareto_fit_equals_the_fit_on_every_customer(cdnow_rfm):
    """Pareto/NBD too, although lifetimes divides its weighted likelihood by the mean weight:
    the penalty is rescaled and the start fixed, so the same Nelder-Mead path is taken."""
    model = BTYDModel(model="pareto").fit(cdnow_rfm)
    assert model.fit_groups_ < 0.5 * model.fit_customers_
    for name, value in _per_customer_fit("pareto", cdnow_rfm).items():
        assert model.params_[name] == pytest.approx(value, rel=1e-6), name


def test_pareto_refits_are_identical(cdnow_rfm):
    # lifetimes starts Nelder-Mead at a random point unless told where: the same data gave
    # parameters differing in the 5th digit from one run to the next.
    a = BTYDModel(model="pareto").fit(cdnow_rfm).params_
    b = BTYDModel(model="pareto").fit(cdnow_rfm).params_
    assert a == b


def test_gamma_gamma_on_rounded_spend_is_within_2e_4_of_every_customer(cdnow_full_rfm, bgnbd, cdnow_rfm):
    """Spend rounded to 4 significant digits, then grouped: the parameters move by at most
    2e-4 relative (measured 7e-5 on full CDNOW, 1.5e-4 on its 1/10 sample)."""
    from lifetimes import GammaGammaFitter

    from retain.models.btyd import _quiet

    for rfm, model in ((cdnow_full_rfm, BTYDModel().fit(cdnow_full_rfm)), (cdnow_rfm, bgnbd)):
        frame = rfm.to_pandas()
        repeat = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
        scale = repeat["monetary_value"].median()
        fitter = GammaGammaFitter()
        with _quiet():
            fitter.fit(repeat["frequency"], repeat["monetary_value"] / scale)
        expected = {k: float(v) for k, v in fitter.params_.items()}
        expected["v"] *= scale
        assert model.spend_groups_ < len(repeat)
        for name, value in expected.items():
            assert model.spend_params_[name] == pytest.approx(value, rel=2e-4), name


def test_grouped_spend_rounds_to_significant_digits_and_counts_customers():
    from retain.models.btyd import grouped_spend

    out = grouped_spend(np.array([1.0, 1, 2, 1]), np.array([12.344, 12.341, 12.344, 0.0012345]))
    assert out["frequency"].tolist() == [1.0, 1.0, 2.0] and out["size"].tolist() == [1, 2, 1]
    assert out["monetary_value"].tolist() == pytest.approx([0.001234, 12.34, 12.34], rel=1e-12)
