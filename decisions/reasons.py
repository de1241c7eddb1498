"""One plain sentence per decision, in English or Russian, from the numbers behind it.

Placeholders are filled per customer by :func:`reason_expression`: ``{interval}`` (usual days
between orders), ``{days}`` (since the last order), ``{first}`` (since the first order),
``{churn}`` (churn risk, %), ``{product}``, ``{due}`` (date the product runs out), ``{next}``
(expected next order), ``{revenue}`` (spent in all), ``{step}`` (next post-purchase message),
``{discount}`` (%).
"""

from __future__ import annotations

import re
from typing import Literal

import polars as pl

Language = Literal["en", "ru"]
LANGUAGES: tuple[Language, ...] = ("en", "ru")

TEMPLATES: dict[Language, dict[str, str]] = {
    "en": {
        "control": "In the global control group: no action, so the effect can be measured",
        "replenish": "Orders every {interval} days; last order {days} days ago; "
                     "product {product} runs out around {due}",
        "reactivate": "No order for {days} days, usually every {interval} days; "
                      "churn risk {churn}%",
        "reactivate_one_order": "One order, {days} days ago, and no second yet; "
                                "churn risk {churn}%",
        "win_back": "No order for {days} days, but spent {revenue} in all: worth winning back",
        "onboard": "First order {first} days ago: next comes the {step}",
        "cross_sell": "Orders every {interval} days, last {days} days ago; churn risk {churn}%: "
                      "time for a complementary product",
        "keep_vip": "One of the most valuable customers; next order expected around {next}",
        "none": "Likely to order anyway (churn risk {churn}%): best left alone",
        "none_lost": "No order for {days} days and little value: no action",
        "no_channel": "; no channel with consent works for them",
        "offer": "; a {discount}% discount pays for itself here",
        "step_guide": "product guide", "step_review": "review request",
        "step_cross_sell": "cross-sell", "step_repeat_offer": "repeat-order offer",
    },
    "ru": {
        "control": "В глобальной контрольной группе: без действий, чтобы измерить эффект",
        "replenish": "Покупает раз в {interval} дн.; последний заказ {days} дн. назад; "
                     "товар {product} закончится около {due}",
        "reactivate": "Нет заказов {days} дн., обычно раз в {interval} дн.; риск ухода {churn}%",
        "reactivate_one_order": "Один заказ, {days} дн. назад, второго пока нет; "
                                "риск ухода {churn}%",
        "win_back": "Нет заказов {days} дн., но всего потратил {revenue}: стоит вернуть",
        "onboard": "Первый заказ {first} дн. назад: дальше {step}",
        "cross_sell": "Покупает раз в {interval} дн., последний заказ {days} дн. назад; "
                      "риск ухода {churn}%: время для сопутствующего товара",
        "keep_vip": "Один из самых ценных клиентов; следующий заказ ожидается около {next}",
        "none": "Скорее всего, купит и так (риск ухода {churn}%): лучше не беспокоить",
        "none_lost": "Нет заказов {days} дн., ценность низкая: без действий",
        "no_channel": "; нет канала с согласием, который на него действует",
        "offer": "; скидка {discount}% здесь окупается",
        "step_guide": "инструкция к товару", "step_review": "просьба об отзыве",
        "step_cross_sell": "сопутствующий товар", "step_repeat_offer": "предложение повторить заказ",
    },
}
DATE_FORMAT: dict[Language, str] = {"en": "%Y-%m-%d", "ru": "%d.%m.%Y"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(template: str, values: dict[str, pl.Expr]) -> pl.Expr:
    names = PLACEHOLDER.findall(template)
    return pl.format(PLACEHOLDER.sub("{}", template), *(values[name] for name in names))


def reason_expression(lang: Language, discount_percent: float) -> pl.Expr:
    """The ``reason`` column, from the columns :func:`decisions.decide.decide` has built."""
    if lang not in TEMPLATES:
        raise ValueError(f"language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    text = TEMPLATES[lang]
    dates = DATE_FORMAT[lang]

    def whole(column: str) -> pl.Expr:
        return pl.col(column).round(0).cast(pl.Int64).cast(pl.String)

    values = {
        "interval": whole("interval_median"),
        "days": whole("days_since_last_order"),
        "first": whole("_days_since_first"),
        "churn": (pl.col("churn_probability") * 100).round(0).cast(pl.Int64).cast(pl.String),
        "product": pl.col("due_product_id"),
        "due": pl.col("due_product_date").dt.strftime(dates),
        "next": pl.col("next_order_date").dt.strftime(dates),
        "revenue": whole("revenue"),
        "step": pl.col("_step").replace_strict(
            ["guide", "review", "cross_sell", "repeat_offer"],
            [text["step_guide"], text["step_review"], text["step_cross_sell"],
             text["step_repeat_offer"]], default=None),
        "discount": pl.lit(f"{discount_percent:g}"),
    }
    goal = pl.col("goal")
    core = (
        pl.when(goal == "control").then(_fill(text["control"], values))
        .when(goal == "replenish").then(_fill(text["replenish"], values))
        .when((goal == "reactivate") & pl.col("interval_median").is_null())
        .then(_fill(text["reactivate_one_order"], values))
        .when(goal == "reactivate").then(_fill(text["reactivate"], values))
        .when(goal == "win_back").then(_fill(text["win_back"], values))
        .when(goal == "onboard").then(_fill(text["onboard"], values))
        .when((goal == "cross_sell") & pl.col("interval_median").is_null())
        .then(_fill(text["reactivate_one_order"], values))
        .when(goal == "cross_sell").then(_fill(text["cross_sell"], values))
        .when(goal == "keep_vip").then(_fill(text["keep_vip"], values))
        .when(pl.col("lifecycle_stage") == "lost").then(_fill(text["none_lost"], values))
        .otherwise(_fill(text["none"], values))
    )
    acting = ~goal.is_in(["none", "control"])
    return pl.concat_str(
        core,
        pl.when(acting & pl.col("channel").is_null()).then(pl.lit(text["no_channel"]))
        .otherwise(pl.lit("")),
        pl.when(pl.col("offer") != "none").then(_fill(text["offer"], values))
        .otherwise(pl.lit("")),
        pl.lit("."),
    ).alias("reason")
