"""One plain sentence per decision, in English or Russian, from the numbers behind it.

Placeholders are filled per customer by :func:`reason_texts`: ``{interval}`` (usual days
between orders), ``{days}`` (since the last order), ``{first}`` (since the first order),
``{churn}`` (churn risk, %), ``{product}``, ``{due}`` (date the product runs out), ``{next}``
(expected next order), ``{revenue}`` (spent in all), ``{step}`` (next post-purchase message),
``{discount}`` (%).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import polars as pl

from retain.decisions.arrays import Column

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
STEPS = ("guide", "review", "cross_sell", "repeat_offer")  # the post-purchase sequence
# The sentence each customer gets, first match wins (see reason_texts).
_KEYS = ("control", "replenish", "reactivate_one_order", "reactivate", "win_back", "onboard",
         "cross_sell", "keep_vip", "none_lost", "none")
_TEXT = np.dtypes.StringDType()
_DATE_PART = re.compile(r"(%[Ymd])")


@dataclass(frozen=True)
class ReasonInputs:
    """What the sentences are made of, one entry per customer: ``goal`` as indexes into
    ``goal_names``, ``step`` into :data:`STEPS`, dates as day numbers."""

    goal: np.ndarray
    goal_names: tuple[str, ...]
    lost: np.ndarray
    interval: Column
    days: Column
    first: Column
    churn: Column
    product: pl.Series
    due: Column
    next: Column
    revenue: Column
    step: np.ndarray
    no_channel: np.ndarray
    offer: np.ndarray


def reason_texts(inputs: ReasonInputs, lang: Language, discount_percent: float) -> np.ndarray:
    """The ``reason`` column as an object array: one sentence per customer, None where a
    number it needs is null (or not finite)."""
    text = _templates(lang)
    goal, names = inputs.goal, inputs.goal_names
    # The sentence of each goal, then the two that depend on more than the goal.
    key = _key_of_goal(names)[goal]
    n = len(goal)
    one_order = inputs.interval.is_null()
    if one_order.any():
        key[one_order & ((key == _KEYS.index("reactivate"))
                         | (key == _KEYS.index("cross_sell")))] = _KEYS.index(
            "reactivate_one_order")
    key[(key == _KEYS.index("none")) & inputs.lost] = _KEYS.index("none_lost")
    values = _Placeholders(inputs, lang, discount_percent)
    core = np.empty(n, dtype=_TEXT)
    ok = np.ones(n, dtype=bool)
    # One template at a time, over the customers it applies to: a few numpy string operations
    # per template, whatever the number of customers.
    present = np.flatnonzero(np.bincount(key, minlength=len(_KEYS)))
    for code in present:
        # One template for all (one customer): no rows to pick.
        rows = slice(None) if len(present) == 1 else np.flatnonzero(key == code)
        core[rows], ok[rows] = _fill(text[_KEYS[code]], values, rows, n)
    acting = (key != _KEYS.index("control")) & (key != _KEYS.index("none")) & (
        key != _KEYS.index("none_lost"))
    ending = (acting & inputs.no_channel).astype(np.intp) + 2 * inputs.offer
    core = np.strings.add(core, _endings(lang, values.discount)[ending])
    reasons = core.astype(object)
    reasons[~ok] = None
    return reasons


@cache
def _key_of_goal(goal_names: tuple[str, ...]) -> np.ndarray:
    """The sentence of each goal, before the cases that depend on more than the goal."""
    return np.array([_KEYS.index(name if name in _KEYS else "none") for name in goal_names],
                    dtype=np.intp)


@cache
def _templates(lang: Language) -> dict:
    if lang not in TEMPLATES:
        raise ValueError(f"language {lang!r}: choose one of {', '.join(LANGUAGES)}")
    text: dict = dict(TEMPLATES[lang])
    text["_steps"] = np.array([text[f"step_{s}"] for s in STEPS], dtype=_TEXT)
    return text


@cache
def _endings(lang: Language, discount: str) -> np.ndarray:
    """How sentences end: ".", no channel, the offer, or both (the offer's only placeholder is
    the discount)."""
    no_channel = TEMPLATES[lang]["no_channel"]
    offer = TEMPLATES[lang]["offer"].replace("{discount}", discount)
    return np.array([".", f"{no_channel}.", f"{offer}.", f"{no_channel}{offer}."], dtype=_TEXT)


class _Placeholders:
    """Each placeholder's text for given rows: (texts, valid)."""

    def __init__(self, inputs: ReasonInputs, lang: Language, discount_percent: float) -> None:
        self.inputs, self.date_format = inputs, DATE_FORMAT[lang]
        self.steps = _templates(lang)["_steps"]
        self.discount = f"{discount_percent:g}"

    def __call__(self, name: str,
                 rows: np.ndarray | slice) -> tuple[np.ndarray | str, np.ndarray | None]:
        x = self.inputs
        if name == "discount":
            return self.discount, None
        if name == "step":
            return self.steps[x.step[rows]], None
        if name == "product":
            ids = x.product.to_numpy()[rows]
            ok = np.not_equal(ids, None)
            return np.where(ok, ids, "").astype(_TEXT), ok
        if name in ("due", "next"):
            return _date_texts(x.due if name == "due" else x.next, rows, self.date_format)
        column = {"interval": x.interval, "days": x.days, "first": x.first,
                  "revenue": x.revenue}.get(name)
        if column is None and name == "churn":
            column = 100 * x.churn
        if column is None:
            raise KeyError(name)
        return _whole(column, rows)


def _whole(column: Column, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray | None]:
    """Rounded half to even, as polars' ``round(0)``, as text."""
    values = column.values[rows]
    if column.finite():
        return np.rint(values).astype(np.int64).astype(_TEXT), None
    ok = np.isfinite(values) if column.ok is None else column.ok[rows] & np.isfinite(values)
    return np.rint(np.where(ok, values, 0)).astype(np.int64).astype(_TEXT), ok


def _date_texts(column: Column, rows: np.ndarray | slice,
                date_format: str) -> tuple[np.ndarray, np.ndarray]:
    """``strftime`` of day numbers for formats of ``%Y``, ``%m`` and ``%d`` only."""
    ok = column.valid()[rows]
    days = np.where(ok, column.values[rows], 0).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = days.astype("datetime64[Y]")
    numbers = {"%Y": (years.astype(np.int64) + 1970, 4),
               "%m": ((months - years.astype("datetime64[M]")).astype(np.int64) + 1, 2),
               "%d": ((days - months.astype("datetime64[D]")).astype(np.int64) + 1, 2)}
    parts = {part: np.strings.zfill(number.astype(_TEXT), width)
             for part, (number, width) in numbers.items()}
    out = np.zeros(len(days), dtype=_TEXT)
    for piece in _DATE_PART.split(date_format):
        if piece:
            out = np.strings.add(out, parts.get(piece, piece))
    return out, ok


def _fill(template: str, values: _Placeholders, rows: np.ndarray | slice,
          n: int) -> tuple[np.ndarray, np.ndarray]:
    """``template`` with each placeholder filled, for ``rows`` (a slice: all ``n``): (texts,
    valid)."""
    pieces = PLACEHOLDER.split(template)  # literal, name, literal, name, ..., literal
    size = n if isinstance(rows, slice) else len(rows)
    out = np.full(size, pieces[0], dtype=_TEXT)
    ok = np.ones(size, dtype=bool)
    for name, literal in zip(pieces[1::2], pieces[2::2], strict=True):
        filled, valid = values(name, rows)
        out = np.strings.add(out, filled)
        if literal:
            out = np.strings.add(out, literal)
        if valid is not None:
            ok &= valid
    return out, ok


def reasons(frame: pl.DataFrame, lang: Language, discount_percent: float) -> pl.Series:
    """:func:`reason_texts` of the rows of ``frame`` as a Series: ``goal, lifecycle_stage,
    interval_median, days_since_last_order, _days_since_first, churn_probability,
    due_product_id, due_product_date, next_order_date, revenue, _step, channel, offer``."""
    goal_names, goal = np.unique(frame["goal"].to_numpy().astype(str), return_inverse=True)
    step = frame["_step"].replace_strict(list(STEPS), list(range(len(STEPS))),
                                         return_dtype=pl.Int64).to_numpy()
    return pl.Series("reason", reason_texts(ReasonInputs(
        goal=goal, goal_names=tuple(goal_names),
        lost=(frame["lifecycle_stage"] == "lost").to_numpy(),
        interval=Column.of(frame["interval_median"]), days=Column.of(frame["days_since_last_order"]),
        first=Column.of(frame["_days_since_first"]), churn=Column.of(frame["churn_probability"]),
        product=frame["due_product_id"], due=Column.of(frame["due_product_date"]),
        next=Column.of(frame["next_order_date"]), revenue=Column.of(frame["revenue"]),
        step=step, no_channel=frame["channel"].is_null().to_numpy(),
        offer=(frame["offer"] != "none").to_numpy(),
    ), lang, discount_percent).tolist(), dtype=pl.String)
