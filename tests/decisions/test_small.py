"""The plain-Python decisions for small batches equal the polars decisions, frame for frame."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import retain.decisions.decide as decide_module
import retain.decisions.small as small_module
from retain.decisions.channels import (
    MAINTENANCE,
    ChannelMeasurements,
    channel_plan,
    measure_channels,
)
from retain.decisions.decide import GOALS, NO_OFFER, decide
from retain.decisions.rules import default_rules
from retain.decisions.small import SMALL_DECISIONS_MAX, decide_small

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
        days_ago = [[1, 3, 5], [1, 2, 3, 6], [1, 2], [7, 6, 5]][n % 4]
        for ago in days_ago:
            rows.append({"customer_id": customer, "channel": "email", "campaign": "test",
                         "cost": 0.1, "control": n % 9 == 0,
                         "ts": datetime.combine(as_of - timedelta(days=ago),
                                                datetime.min.time()) + timedelta(hours=9)})
    extra = pl.DataFrame(rows, schema=shop.contacts.schema)
    return pl.concat([shop.contacts, extra])


def polars_decide(monkeypatch, scores: pl.DataFrame, features: pl.DataFrame,
                  **kwargs) -> pl.DataFrame:
    """``decide`` on the polars path, whatever the batch size."""
    with monkeypatch.context() as patch:
        patch.setattr(small_module, "SMALL_DECISIONS_MAX", -1)
        return decide(scores, features, **kwargs)


def assert_same(monkeypatch, scores: pl.DataFrame, features: pl.DataFrame,
                **kwargs) -> pl.DataFrame:
    expected = polars_decide(monkeypatch, scores, features, **kwargs)
    got = decide_small(scores, features, **kwargs)
    assert_frame_equal(got, expected, **TOLERANCE)
    return got


# --- the whole shop, one customer at a time --------------------------------------------------------


def _sample(decided: pl.DataFrame, contacts: pl.DataFrame, consents: pl.DataFrame,
            as_of: date) -> list[int]:
    """Row numbers of ~300 customers: every goal, offer and channel, the frequency cap, no
    consents, one-order customers, plus random ones."""
    rng = random.Random(7)
    indexed = decided.with_row_index("_row")
    picks: set[int] = set()

    def some(condition: pl.Expr, n: int) -> None:
        rows = indexed.filter(condition)["_row"].to_list()
        picks.update(rng.sample(rows, min(n, len(rows))))

    for goal in GOALS:
        some(pl.col("goal") == goal, 20)
    for channel in decided["channel"].drop_nulls().unique().to_list():
        some(pl.col("channel") == channel, 10)
    some(pl.col("channel").is_null() & ~pl.col("goal").is_in(["none", "control"]), 15)
    some(pl.col("offer") != NO_OFFER, 15)
    some(pl.col("send_at") > as_of, 15)
    recent = contacts.filter(pl.col("ts") >= datetime.combine(as_of, datetime.min.time())
                             - timedelta(days=7))["customer_id"]
    some(pl.col("customer_id").is_in(recent.implode()), 25)
    some(~pl.col("customer_id").is_in(consents["customer_id"].implode()), 15)
    some(pl.col("reason").str.contains("One order|Один заказ"), 10)
    rows = list(range(decided.height))
    picks.update(rng.sample(rows, 300 - min(len(picks), 300)))
    return sorted(picks)


@pytest.mark.parametrize("which", ["measured", "tired", "none"])
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_each_customer_alone_equals_the_whole_shop_batch(shop, scores, features, reference,
                                                         measurements, consents, contacts,
                                                         which, lang):
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements[which], "consents": consents, "contacts": contacts,
              "lang": lang}
    assert scores.height > SMALL_DECISIONS_MAX  # the polars path
    batch = decide(scores, features, **kwargs)
    rows = _sample(batch, contacts, consents, shop.as_of)
    expected = batch[rows]
    alone = pl.concat([decide_small(scores[i:i + 1], features, **kwargs) for i in rows])
    assert_frame_equal(alone, expected, **TOLERANCE)
    # The sample covers what it should.
    assert set(expected["goal"]) == set(batch["goal"])
    assert expected["channel"].null_count() > 0
    assert (expected["offer"] != NO_OFFER).any()
    if which == "tired":
        assert (expected["channel"] == "push").any()
    # Each customer's own frames alone (as the API passes them) decide the same.
    for i in rows[:40]:
        customer = scores["customer_id"][i]
        own = pl.col("customer_id") == customer
        alone = decide_small(scores[i:i + 1], features.filter(own), **{
            **kwargs, "consents": consents.filter(own), "contacts": contacts.filter(own)})
        assert_frame_equal(alone, batch[i:i + 1], **TOLERANCE)


def test_a_small_batch_in_any_order_equals_the_batch(shop, scores, features, reference,
                                                     measurements, consents, contacts):
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["measured"], "consents": consents,
              "contacts": contacts.lazy(), "lang": "ru"}
    batch = decide(scores, features, **kwargs)
    rows = random.Random(3).sample(range(scores.height), SMALL_DECISIONS_MAX)
    assert_frame_equal(decide_small(scores[rows], features, **kwargs), batch[rows],
                       **TOLERANCE)


# --- edge cases -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def few(scores):
    """40 customers: every goal the shop has, and one-order customers among them."""
    return scores[list(range(0, 4000, 100))]


@pytest.mark.parametrize("missing", ["consents", "contacts", "channels"])
def test_without_consents_contacts_or_measurements(monkeypatch, shop, few, features, reference,
                                                   measurements, missing):
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["measured"], "consents": shop.customers,
              "contacts": shop.contacts, missing: None}
    out = assert_same(monkeypatch, few, features, **kwargs)
    if missing == "consents":
        assert out["channel"].null_count() == out.height


def test_one_order_customers_and_a_null_due_product(monkeypatch, shop, scores, features,
                                                    reference, measurements):
    one_order = features.filter(pl.col("interval_median").is_null())["customer_id"]
    assert one_order.len() > 0
    due = scores.filter(pl.col("due_product_date").is_not_null())["customer_id"].head(10)
    pick = pl.col("customer_id").is_in(pl.concat([one_order.head(20), due]).implode())
    some = scores.filter(pick)
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["measured"], "consents": shop.customers,
              "contacts": shop.contacts}
    for lang in ("en", "ru"):
        assert_same(monkeypatch, some, features, lang=lang, **kwargs)
        # A due product with no id, or no date: the replenish goal and its reason follow.
        for column in ("due_product_id", "due_product_date"):
            assert_same(monkeypatch, some.with_columns(pl.lit(None).cast(some.schema[column])
                                                       .alias(column)), features, lang=lang,
                        **kwargs)


def test_nulls_and_nans_where_the_features_allow_them(monkeypatch, shop, few, features,
                                                      reference, measurements):
    """Nulls compare as polars compares them; a reason whose number is missing is null."""
    ids = few["customer_id"]
    mine = features.filter(pl.col("customer_id").is_in(ids.implode()))
    n = mine.height
    odd = mine.with_columns(
        pl.Series("interval_cv", [math.nan if i % 3 == 0 else v
                                  for i, v in enumerate(mine["interval_cv"])]),
        pl.Series("aov", [None if i % 4 == 1 else math.nan if i % 4 == 3 else v
                          for i, v in enumerate(mine["aov"])], dtype=pl.Float64),
        pl.Series("interval_median", [None if i % 5 == 2 else v
                                      for i, v in enumerate(mine["interval_median"])],
                  dtype=pl.Float64),
    )
    oddly_scored = few.with_columns(
        pl.Series("next_order_date", [None if i % 2 else v
                                      for i, v in enumerate(few["next_order_date"])],
                  dtype=pl.Date),
        pl.Series("churn_probability", [math.nan if i == 7 else v
                                        for i, v in enumerate(few["churn_probability"])]),
    )
    # And a customer without features at all.
    odd = odd.filter(pl.col("customer_id") != ids[3])
    assert odd.height == n - 1
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "channels": measurements["measured"], "consents": shop.customers,
              "contacts": shop.contacts}
    for lang in ("en", "ru"):
        assert_same(monkeypatch, oddly_scored, odd, lang=lang, **kwargs)


def test_duplicate_consent_rows_and_a_lazy_contacts_log(monkeypatch, shop, few, features,
                                                        reference, measurements):
    ids = few["customer_id"].implode()
    consents = shop.customers.filter(pl.col("customer_id").is_in(ids))
    withdrawn = consents.with_columns(pl.lit(False).alias("consent_push"),
                                      pl.lit(None, pl.Boolean).alias("consent_email"))
    assert_same(monkeypatch, few, features, as_of=shop.as_of, rules=RULES,
                reference=reference, channels=measurements["measured"],
                consents=pl.concat([withdrawn, consents]), contacts=shop.contacts.lazy())


def test_no_customers(monkeypatch, shop, scores, features, reference):
    out = assert_same(monkeypatch, scores.head(0), features, as_of=shop.as_of, rules=RULES,
                      reference=reference)
    assert out.height == 0


def test_an_unknown_language_is_refused(shop, few, features, reference):
    with pytest.raises(ValueError, match="language"):
        decide_small(few, features, as_of=shop.as_of, rules=RULES, reference=reference,
                     lang="de")


# --- which path decide takes -----------------------------------------------------------------------


def test_decide_takes_the_small_path_for_small_batches(monkeypatch, shop, scores, features,
                                                       reference):
    def no_polars(*args, **kwargs):
        raise AssertionError("the polars path was taken")

    monkeypatch.setattr(decide_module, "_with_channel", no_polars)
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference}
    assert decide(scores.head(1), features, **kwargs).height == 1
    assert decide(scores.head(SMALL_DECISIONS_MAX), features, **kwargs).height \
        == SMALL_DECISIONS_MAX
    with pytest.raises(AssertionError, match="polars path"):
        decide(scores.head(SMALL_DECISIONS_MAX + 1), features, **kwargs)


def test_decide_hands_its_arguments_to_the_small_path(monkeypatch, shop, scores, features,
                                                      reference):
    seen = {}

    def fake(scores, features, **kwargs):
        seen.update(kwargs, height=scores.height)
        return "small"

    monkeypatch.setattr(small_module, "decide_small", fake)
    out = decide(scores.head(2), features, as_of=shop.as_of, rules=RULES, reference=reference,
                 consents=shop.customers, contacts=shop.contacts, lang="ru")
    assert out == "small"
    assert seen.pop("consents") is shop.customers
    assert seen.pop("contacts") is shop.contacts
    assert seen == {"as_of": shop.as_of, "rules": RULES, "reference": reference,
                    "channels": None, "lang": "ru", "height": 2}



def test_channels_of_equal_cost_and_uplift_go_to_the_first_by_name(monkeypatch, shop, few,
                                                                   features, reference):
    """Unmeasured channels at one price tie: both paths take the first by name, whatever the
    batch."""
    tied = ("max", "telegram", "vk")
    consents = pl.DataFrame({"customer_id": few["customer_id"]}).with_columns(
        *(pl.lit(True).alias(f"consent_{c}") for c in (*tied, "sms")))
    kwargs = {"as_of": shop.as_of, "rules": RULES, "reference": reference,
              "consents": consents}
    out = decide_small(few, features, **kwargs)
    assert set(out["channel"].drop_nulls()) == {"max"}
    batch = polars_decide(monkeypatch, few, features, **kwargs)
    assert_frame_equal(out, batch, **TOLERANCE)
