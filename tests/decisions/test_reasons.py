"""Reasons: each goal's sentence, filled with the numbers of its own row, in English and Russian."""

from __future__ import annotations

import re
from datetime import date

import polars as pl
import pytest

from retain.decisions.reasons import LANGUAGES, TEMPLATES, reasons

SCHEMA = {"customer_id": pl.String, "goal": pl.String, "lifecycle_stage": pl.String,
          "interval_median": pl.Float64, "days_since_last_order": pl.Float64,
          "_days_since_first": pl.Int64, "churn_probability": pl.Float64,
          "due_product_id": pl.String, "due_product_date": pl.Date,
          "next_order_date": pl.Date, "revenue": pl.Float64, "_step": pl.String,
          "channel": pl.String, "offer": pl.String}


def _row(name: str, goal: str, **changes) -> dict:
    row = {"customer_id": name, "goal": goal, "lifecycle_stage": "active",
           "interval_median": 9.0, "days_since_last_order": 16.0, "_days_since_first": 300,
           "churn_probability": 0.423, "due_product_id": "X", "due_product_date":
           date(2025, 7, 10), "next_order_date": date(2025, 7, 12), "revenue": 45_210.4,
           "_step": "repeat_offer", "channel": "email", "offer": "none"}
    row.update(changes)
    return row


ROWS = [
    _row("replenish", "replenish"),
    _row("reactivate", "reactivate", days_since_last_order=75.0, interval_median=21.4,
         churn_probability=0.666),
    _row("reactivate_once", "reactivate", days_since_last_order=50.0, interval_median=None),
    _row("win_back", "win_back", lifecycle_stage="lost", days_since_last_order=240.0),
    _row("onboard", "onboard", _days_since_first=1, _step="guide"),
    _row("onboard_review", "onboard", _days_since_first=5, _step="review"),
    _row("cross_sell", "cross_sell", interval_median=30.0, days_since_last_order=12.0,
         churn_probability=0.35),
    _row("keep_vip", "keep_vip"),
    _row("none", "none", churn_probability=0.08, channel=None),
    _row("none_lost", "none", lifecycle_stage="lost", days_since_last_order=400.0,
         channel=None),
    _row("control", "control", channel=None),
    _row("no_channel", "reactivate", days_since_last_order=75.0, channel=None),
    _row("discount", "reactivate", days_since_last_order=75.0, offer="discount_10"),
]

EXPECTED = {
    "en": {
        "replenish": "Orders every 9 days; last order 16 days ago; product X runs out around "
                     "2025-07-10.",
        "reactivate": "No order for 75 days, usually every 21 days; churn risk 67%.",
        "reactivate_once": "One order, 50 days ago, and no second yet; churn risk 42%.",
        "win_back": "No order for 240 days, but spent 45210 in all: worth winning back.",
        "onboard": "First order 1 days ago: next comes the product guide.",
        "onboard_review": "First order 5 days ago: next comes the review request.",
        "cross_sell": "Orders every 30 days, last 12 days ago; churn risk 35%: time for a "
                      "complementary product.",
        "keep_vip": "One of the most valuable customers; next order expected around "
                    "2025-07-12.",
        "none": "Likely to order anyway (churn risk 8%): best left alone.",
        "none_lost": "No order for 400 days and little value: no action.",
        "control": "In the global control group: no action, so the effect can be measured.",
        "no_channel": "No order for 75 days, usually every 9 days; churn risk 42%; no channel "
                      "with consent works for them.",
        "discount": "No order for 75 days, usually every 9 days; churn risk 42%; a 10% "
                    "discount pays for itself here.",
    },
    "ru": {
        "replenish": "Покупает раз в 9 дн.; последний заказ 16 дн. назад; товар X закончится "
                     "около 10.07.2025.",
        "reactivate": "Нет заказов 75 дн., обычно раз в 21 дн.; риск ухода 67%.",
        "win_back": "Нет заказов 240 дн., но всего потратил 45210: стоит вернуть.",
        "onboard": "Первый заказ 1 дн. назад: дальше инструкция к товару.",
        "keep_vip": "Один из самых ценных клиентов; следующий заказ ожидается около "
                    "12.07.2025.",
        "control": "В глобальной контрольной группе: без действий, чтобы измерить эффект.",
        "discount": "Нет заказов 75 дн., обычно раз в 9 дн.; риск ухода 42%; скидка 10% здесь "
                    "окупается.",
    },
}


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=SCHEMA)


def _reasons(rows: pl.DataFrame, lang: str, discount: float = 10) -> dict[str, str]:
    out = rows.with_columns(reasons(rows, lang, discount))
    return dict(zip(out["customer_id"], out["reason"], strict=True))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_goal_renders_with_the_numbers_of_its_row(rows, lang):
    got = _reasons(rows, lang)
    for name, sentence in EXPECTED[lang].items():
        assert got[name] == sentence, name


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_reason_is_one_filled_sentence(rows, lang):
    for name, reason in _reasons(rows, lang).items():
        assert reason, name
        assert reason.endswith(".") and reason[0].isupper(), reason
        # One sentence: no full stop followed by a new capitalised one ("дн. назад" is fine).
        assert not re.search(r"[.!?]\s+[A-ZА-ЯЁ]", reason), reason
        assert "{" not in reason and "null" not in reason and "None" not in reason, reason
    if lang == "ru":
        assert all(re.search("[а-яА-Я]", r) for r in _reasons(rows, lang).values())


def test_the_same_row_gets_a_different_sentence_per_goal(rows):
    reasons = _reasons(rows, "en")
    assert len(set(reasons.values())) == len(reasons)


def test_the_discount_percent_comes_from_the_rules(rows):
    assert _reasons(rows, "en", discount=7.5)["discount"].endswith(
        "a 7.5% discount pays for itself here.")


def test_the_templates_have_the_same_parts_and_placeholders_in_both_languages():
    english, russian = TEMPLATES["en"], TEMPLATES["ru"]
    assert english.keys() == russian.keys()
    for key in english:
        assert set(re.findall(r"\{(\w+)\}", english[key])) == set(
            re.findall(r"\{(\w+)\}", russian[key])), key


def test_an_unknown_language_is_refused(rows):
    with pytest.raises(ValueError, match="en, ru"):
        reasons(rows, "de", 10)  # type: ignore[arg-type]
