"""One implementation: a customer decided alone (the API) is decided as in the batch (the nightly
run), a batch cut in chunks (a Spark partition) as the whole, on the simulated shop and on a
real invoice export."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retain.decisions.channels import (
    MAINTENANCE,
    ChannelMeasurements,
    channel_plan,
    measure_channels,
)
from retain.decisions.decide import GOALS, NO_OFFER, decide
from retain.decisions.rules import default_rules
from retain.decisions.segments import ShopReference

RULES = default_rules()
TOLERANCE = {"check_exact": False, "rel_tol": 0, "abs_tol": 1e-9}  # strings, dates: exact


@pytest.fixture(scope="module")
def measurements(shop, scored):
    """The shop's measurements; the same with push tired (in maintenance); none at all."""
    measured = measure_channels(shop.contacts, scored[0], shop.as_of, RULES.channels)
    periods = pl.DataFrame({
        "channel": ["push", "push", "push", "email", "email", "email"],
        "period": [date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1)] * 2,
        "messages": [1000] * 6, "cost": [0.0, 0.0, 0.0, 0.1, 0.1, 0.1],
        "uplift": [0.04, 0.04, 0.005, 0.02, 0.02, 0.02],
    })
    tired = ChannelMeasurements(periods, measured.ignored, shop.as_of)
    assert channel_plan(tired, RULES.channels).filter(
        pl.col("channel") == "push")["status"].item() == MAINTENANCE
    return {"measured": measured, "tired": tired, "none": None}


@pytest.fixture(scope="module")
def consents(shop):
    """The shop's customers table, less a few customers (no row: no consent)."""
    return shop.customers.filter(pl.col("customer_id").hash(seed=1) % 20 != 0)


@pytest.fixture(scope="module")
def contacts(shop, scores):
    """The shop's contacts log plus recent messages that fill the frequency cap for some."""
    as_of = shop.as_of
    ids = scores["customer_id"].gather_every(37).to_list()
    rows = []
    for n, customer in enumerate(ids):
        for ago in [[1, 3, 5], [1, 2, 3, 6], [1, 2], [7, 6, 5]][n % 4]:
            rows.append({"customer_id": customer, "channel": "email", "campaign": "test",
                         "cost": 0.1, "control": n % 9 == 0,
                         "ts": datetime.combine(as_of - timedelta(days=ago),
                                                datetime.min.time()) + timedelta(hours=9)})
    return pl.concat([shop.contacts, pl.DataFrame(rows, schema=shop.contacts.schema)])


def _sample(decided: pl.DataFrame, contacts: pl.DataFrame, consents: pl.DataFrame,
            as_of: date) -> list[int]:
    """Row numbers of ~150 customers: every goal, offer and channel, the frequency cap, no
    consents, one-order customers, plus random ones."""
    rng = random.Random(7)
    indexed = decided.with_row_index("_row")
    picks: set[int] = set()

    def some(condition: pl.Expr, n: int) -> None:
        rows = indexed.filter(condition)["_row"].to_list()
        picks.update(rng.sample(rows, min(n, len(rows))))

    for goal in GOALS:
        some(pl.col("goal") == goal, 8)
    for channel in decided["channel"].drop_nulls().unique().to_list():
        some(pl.col("channel") == channel, 6)
    some(pl.col("channel").is_null() & ~pl.col("goal").is_in(["none", "control"]), 8)
    some(pl.col("offer") != NO_OFFER, 8)
    some(pl.col("send_at") > as_of, 8)
    recent = contacts.filter(pl.col("ts") >= datetime.combine(as_of, datetime.min.time())
                             - timedelta(days=7))["customer_id"]
    some(pl.col("customer_id").is_in(recent.implode()), 12)
    some(~pl.col("customer_id").is_in(consents["customer_id"].implode()), 8)
    some(pl.col("reason").str.contains("One order|Один заказ"), 6)
    picks.update(rng.sample(range(decided.height), 150 - min(len(picks), 150)))
    return sorted(picks)


@pytest.mark.parametrize("which", ["measured", "tired", "none"])
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_each_customer_alone_is_decided_as_in_the_whole_shop(shop, scores, features, reference,
                                                            measurements, consents, contacts,
                                                            which, lang):
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements[which], "consents": consents, "contacts": contacts,
              "lang": lang}
    batch = decide(scores, features, **kwargs)
    rows = _sample(batch, contacts, consents, shop.as_of)
    expected = batch[rows]
    # The sample covers what it should.
    assert set(expected["goal"]) == set(batch["goal"])
    assert expected["channel"].null_count() > 0
    assert (expected["offer"] != NO_OFFER).any()
    assert (expected["send_at"] > shop.as_of).any()
    if which == "tired":
        assert (expected["channel"] == "push").any()
    # Alone, with the shop's frames, as in a rescoring of a few customers.
    alone = pl.concat([decide(scores[i:i + 1], features, **kwargs) for i in rows])
    assert_frame_equal(alone, expected, **TOLERANCE)
    # Alone with only their own rows of every frame, as the API passes them.
    for i in rows:
        own = pl.col("customer_id") == scores["customer_id"][i]
        alone = decide(scores[i:i + 1], features.filter(own), **{
            **kwargs, "consents": consents.filter(own), "contacts": contacts.filter(own)})
        assert_frame_equal(alone, batch[i:i + 1], **TOLERANCE)


def test_offers_by_uplift_are_decided_alike_alone_and_in_the_shop(shop, scores, features,
                                                                  reference, measurements,
                                                                  consents, contacts):
    """The uplift model's figures travel with each customer's row."""

    spread = (scores["customer_id"].hash(seed=4) % 1000).to_numpy() / 1000
    uplift, baseline = -0.3 + 0.9 * spread, 0.1 + spread[::-1]
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["measured"], "consents": consents, "contacts": contacts,
              "lang": "en"}
    batch = decide(scores, features, **kwargs, offer_uplift=(uplift, baseline))
    rows = _sample(batch, contacts, consents, shop.as_of)
    assert (batch[rows]["offer"] != NO_OFFER).any() and (batch[rows]["offer"] == NO_OFFER).any()
    for i in rows:
        own = pl.col("customer_id") == scores["customer_id"][i]
        alone = decide(scores[i:i + 1], features.filter(own), **{
            **kwargs, "consents": consents.filter(own), "contacts": contacts.filter(own)},
            offer_uplift=(uplift[i:i + 1], baseline[i:i + 1]))
        assert_frame_equal(alone, batch[i:i + 1], **TOLERANCE)


@pytest.mark.parametrize("size", [1, 7, 500])
def test_chunks_of_a_batch_are_decided_as_the_batch(shop, scores, features, reference,
                                                   measurements, consents, contacts, size):
    """Cut anywhere (a Spark partition, a request of several customers), in any order."""
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["tired"], "consents": consents,
              "contacts": contacts.lazy(), "lang": "ru"}
    batch = decide(scores, features, **kwargs)
    order = list(range(scores.height))
    random.Random(size).shuffle(order)
    order = order[:40 * size]  # a few dozen chunks: enough, and quick
    chunks = [decide(scores[order[start:start + size]], features, **kwargs)
              for start in range(0, len(order), size)]
    assert_frame_equal(pl.concat(chunks), batch[order], **TOLERANCE)


# --- a real invoice export -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    """An Online Retail export (cancellations, float ids, repeated lines), scored."""
    from retain.features.contract import load_transactions
    from retain.features.customers import customer_features
    from retain.models.btyd import BTYDModel
    from retain.models.pipeline import ScoringPipeline
    from tests.fixtures import ONLINE_RETAIL_COLUMN_MAP, write_online_retail

    written = write_online_retail(tmp_path_factory.mktemp("retail") / "Online Retail.csv",
                                  customers=120)
    tx = load_transactions(written.path, column_map=ONLINE_RETAIL_COLUMN_MAP,
                           on_bad_rows="skip").frame.drop("_row")
    as_of = (written.end - timedelta(days=60)).date()
    pipeline = ScoringPipeline(horizon_days=90, channels=[],
                               btyd=BTYDModel().fit(customer_features(tx, as_of)))
    features, products = pipeline.features(tx, as_of)
    scores = pipeline.score_features(features, products, as_of)
    consents = pl.DataFrame({"customer_id": scores["customer_id"]}).with_columns(
        consent_email=pl.col("customer_id").hash(seed=2) % 3 != 0,
        consent_sms=pl.col("customer_id").hash(seed=3) % 2 == 0)
    return scores, features, consents, as_of


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_on_an_invoice_export_each_customer_alone_is_decided_as_in_the_batch(retail, lang):
    scores, features, consents, as_of = retail
    kwargs = {"as_of": as_of, "rules": RULES, "reference": ShopReference.fit(scores, features),
              "consents": consents, "lang": lang}
    batch = decide(scores, features, **kwargs)
    assert batch.height > 100
    assert batch["goal"].n_unique() >= 4 and batch["channel"].null_count() > 0
    assert batch["channel"].drop_nulls().n_unique() >= 1
    for i in range(batch.height):
        own = pl.col("customer_id") == scores["customer_id"][i]
        alone = decide(scores[i:i + 1], features.filter(own),
                       **{**kwargs, "consents": consents.filter(own)})
        assert_frame_equal(alone, batch[i:i + 1], **TOLERANCE)


# --- edge cases ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def few(scores):
    """40 customers: every goal the shop has, and one-order customers among them."""
    return scores[list(range(0, 4000, 100))]


def test_nulls_and_nans_where_the_features_allow_them(shop, few, features, reference,
                                                      measurements):
    """Nulls compare as polars compares them (a rule on null does not hold), NaN as the
    greatest value; a reason whose number is missing is null; alone as in the batch."""
    ids = few["customer_id"]
    mine = features.filter(pl.col("customer_id").is_in(ids.implode()))
    odd = mine.with_columns(
        pl.Series("interval_cv", [math.nan if i % 3 == 0 else v
                                  for i, v in enumerate(mine["interval_cv"])]),
        pl.Series("aov", [None if i % 4 == 1 else math.nan if i % 4 == 3 else v
                          for i, v in enumerate(mine["aov"])], dtype=pl.Float64),
        pl.Series("interval_median", [None if i % 5 == 2 else v
                                      for i, v in enumerate(mine["interval_median"])],
                  dtype=pl.Float64),
    ).filter(pl.col("customer_id") != ids[3])  # and a customer without features at all
    oddly_scored = few.with_columns(
        pl.Series("next_order_date", [None if i % 2 else v
                                      for i, v in enumerate(few["next_order_date"])],
                  dtype=pl.Date),
        pl.Series("p_alive", [None if i == 11 else v for i, v in enumerate(few["p_alive"])],
                  dtype=pl.Float64),
    )
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["measured"], "consents": shop.customers,
              "contacts": shop.contacts}
    for lang in ("en", "ru"):
        batch = decide(oddly_scored, odd, lang=lang, **kwargs)
        alone = pl.concat([decide(oddly_scored[i:i + 1], odd, lang=lang, **kwargs)
                           for i in range(few.height)])
        assert_frame_equal(alone, batch, **TOLERANCE)
    # The customer without features: no rule on their missing numbers holds.
    stranger = batch.row(3, named=True)
    assert stranger["lifecycle_stage"] == "active" and stranger["behaviour_type"] == "occasional"
    assert stranger["reason"] is None or stranger["goal"] in ("control", "keep_vip")
    # Without p_alive a channel is still chosen when free, but its value is unknown.
    no_p = batch.row(11, named=True)
    if no_p["channel"] is not None:
        assert no_p["expected_incremental_revenue"] is None


def test_duplicate_consent_rows_count_any_consent_given(shop, few, features, reference):
    consents = pl.DataFrame({"customer_id": few["customer_id"]}).with_columns(
        consent_push=pl.lit(True), consent_email=pl.lit(True))
    withdrawn = consents.with_columns(pl.lit(False).alias("consent_push"),
                                      pl.lit(None, pl.Boolean).alias("consent_email"))
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference}
    once = decide(few, features, consents=consents, **kwargs)
    twice = decide(few, features, consents=pl.concat([withdrawn, consents]), **kwargs)
    assert_frame_equal(twice, once)
    only_withdrawn = decide(few, features, consents=withdrawn, **kwargs)
    assert only_withdrawn["channel"].null_count() == few.height


def test_no_customers(shop, scores, features, reference):
    out = decide(scores.head(0), features, as_of=shop.as_of, rules=RULES, reference=reference)
    assert out.height == 0
    assert out.schema == decide(scores.head(1), features, as_of=shop.as_of, rules=RULES,
                                reference=reference).schema


def test_an_unknown_language_is_refused(shop, few, features, reference):
    with pytest.raises(ValueError, match="language"):
        decide(few, features, as_of=shop.as_of, rules=RULES, reference=reference, lang="de")


def test_channels_of_equal_cost_and_uplift_go_to_the_first_by_name(shop, few, features,
                                                                   reference):
    """Unmeasured channels at one price tie: the first by name, whatever the batch."""
    tied = ("max", "telegram", "vk")
    consents = pl.DataFrame({"customer_id": few["customer_id"]}).with_columns(
        *(pl.lit(True).alias(f"consent_{c}") for c in (*tied, "sms")))
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "consents": consents}
    out = decide(few, features, **kwargs)
    assert set(out["channel"].drop_nulls()) == {"max"}
    alone = pl.concat([decide(few[i:i + 1], features, **kwargs) for i in range(few.height)])
    assert_frame_equal(alone, out, **TOLERANCE)
