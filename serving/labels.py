"""Human labels for retain's codes and columns, in English and Russian.

Codes (``at_risk``, ``win_back``, ``bgnbd_p_no_order``) stay in the store, the API and the default
exports, where scripts read them; people read these labels: on the page, and in exports asked for
with ``--lang``. A code without a label is shown as itself, never dropped, so a new channel in a
shop's contacts log still appears.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

Language = Literal["en", "ru"]
LANGUAGES: tuple[Language, ...] = ("en", "ru")

# kind -> code -> (English, Russian)
CATEGORIES: dict[str, dict[str, tuple[str, str]]] = {
    "lifecycle_stage": {
        "new": ("New", "Новый"),
        "active": ("Active", "Активный"),
        "at_risk": ("At risk", "Под угрозой ухода"),
        "sleeping": ("Sleeping", "Спящий"),
        "lost": ("Lost", "Ушедший"),
    },
    "value_tier": {
        "vip": ("VIP (top 5%)", "VIP (топ-5%)"),
        "high": ("High value", "Высокая ценность"),
        "mid": ("Mid value", "Средняя ценность"),
        "low": ("Low value", "Низкая ценность"),
    },
    "behaviour_type": {
        "stock_up": ("Stock-up buyer", "Закупается впрок"),
        "hedonist": ("Frequent small baskets", "Частые небольшие покупки"),
        "occasional": ("Occasional", "Покупает от случая к случаю"),
    },
    "goal": {
        "onboard": ("Onboard a new customer", "Ввести нового клиента"),
        "cross_sell": ("Cross-sell", "Кросс-продажа"),
        "replenish": ("Remind to replenish", "Напомнить о пополнении запаса"),
        "reactivate": ("Reactivate", "Реактивировать"),
        "win_back": ("Win back", "Вернуть"),
        "keep_vip": ("Keep a VIP", "Удержать VIP"),
        "none": ("No action", "Без действия"),
        "control": ("Control group", "Контрольная группа"),
    },
    "channel": {
        "email": ("Email", "Email"),
        "sms": ("SMS", "SMS"),
        "push": ("Push", "Push-уведомление"),
        "whatsapp": ("WhatsApp", "WhatsApp"),
        "telegram": ("Telegram", "Telegram"),
        "vk": ("VK", "ВКонтакте"),
        "max": ("MAX", "MAX"),
    },
    # A channel's status in the plan (decisions.channels): what `retain channels` prints.
    "channel_status": {
        "active": ("active", "активен"),
        "maintenance": ("maintenance", "поддержка"),
        "unmeasured": ("unmeasured", "не измерен"),
    },
    "offer": {
        "none": ("No offer", "Без предложения"),
    },
    "score_source": {
        "gbm": ("LightGBM", "LightGBM"),
        "gbm_one_order": ("LightGBM (one order)", "LightGBM (один заказ)"),
        "btyd": ("Probabilistic model (BTYD)", "Вероятностная модель (BTYD)"),
        "baseline": ("Baseline", "Базовое правило"),
    },
    "model": {
        "baseline": ("Baseline rule", "Базовое правило"),
        "btyd": ("Probabilistic model (BTYD)", "Вероятностная модель (BTYD)"),
        "gbm": ("LightGBM", "LightGBM"),
        "recency_30d": ("Ordered in the last 30 days", "Заказ за последние 30 дней"),
        "recency_60d": ("Ordered in the last 60 days", "Заказ за последние 60 дней"),
        "recency_90d": ("Ordered in the last 90 days", "Заказ за последние 90 дней"),
        "recency_days": ("Days since the last order", "Дней с последнего заказа"),
        "bgnbd_p_no_order": ("BG/NBD: chance of no order", "BG/NBD: вероятность не купить"),
        "bgnbd_expected_orders": ("BG/NBD: expected orders", "BG/NBD: ожидаемое число заказов"),
        "pareto_p_no_order": ("Pareto/NBD: chance of no order",
                              "Pareto/NBD: вероятность не купить"),
        "pareto_expected_orders": ("Pareto/NBD: expected orders",
                                   "Pareto/NBD: ожидаемое число заказов"),
        "bgnbd_gg_revenue": ("BG/NBD × Gamma-Gamma revenue", "Выручка BG/NBD × Gamma-Gamma"),
        "pareto_gg_revenue": ("Pareto/NBD × Gamma-Gamma revenue",
                              "Выручка Pareto/NBD × Gamma-Gamma"),
        "formula_revenue": ("Average order × usual frequency", "Средний чек × обычная частота"),
        "median_interval": ("Usual interval between orders", "Обычный интервал между заказами"),
        "most_bought_product": ("Most bought product", "Самый покупаемый товар"),
    },
    "task": {
        "churn": ("Churn", "Отток"),
        "value": ("Revenue", "Выручка"),
        "timing": ("Next order date", "Дата следующего заказа"),
        "due_product": ("Due product", "Товар к пополнению"),
    },
}

# Export and page column headers; a column not listed keeps its code.
COLUMNS: dict[str, tuple[str, str]] = {
    "run_id": ("Run", "Запуск"),
    "customer_id": ("Customer", "Клиент"),
    "as_of": ("As of", "На дату"),
    "horizon_days": ("Horizon, days", "Горизонт, дней"),
    "model_version": ("Model version", "Версия модели"),
    "p_alive": ("Probability still a customer", "Вероятность, что клиент ещё активен"),
    "churn_probability": ("Churn probability in the horizon",
                          "Вероятность ухода за горизонт"),
    "expected_orders": ("Expected orders in the horizon", "Ожидаемые заказы за горизонт"),
    "predicted_revenue": ("Predicted revenue in the horizon", "Прогноз выручки за горизонт"),
    "clv_12m": ("12-month CLV", "CLV за 12 месяцев"),
    "next_order_date": ("Next order expected", "Ожидаемый следующий заказ"),
    "next_order_p10": ("Next order, earliest (10%)", "Следующий заказ, не раньше (10%)"),
    "next_order_p90": ("Next order, latest (90%)", "Следующий заказ, не позже (90%)"),
    "overdue_days": ("Days overdue", "Дней просрочки"),
    "due_product_id": ("Due product", "Товар к пополнению"),
    "due_product_date": ("Due product runs out", "Товар закончится"),
    "score_source": ("Churn model", "Модель оттока"),
    "lifecycle_stage": ("Lifecycle stage", "Стадия жизненного цикла"),
    "value_tier": ("Value tier", "Уровень ценности"),
    "behaviour_type": ("Buying pattern", "Тип покупателя"),
    "segment": ("Segment", "Сегмент"),
    "goal": ("Goal", "Цель"),
    "channel": ("Channel", "Канал"),
    "send_at": ("Send on", "Дата отправки"),
    "offer": ("Offer", "Предложение"),
    "offer_value": ("Offer value", "Стоимость предложения"),
    "reason": ("Reason", "Причина"),
    "control_group": ("Control group", "Контрольная группа"),
    "expected_incremental_revenue": ("Expected incremental revenue",
                                     "Ожидаемая дополнительная выручка"),
    "contact_cost": ("Contact cost", "Стоимость контакта"),
    "customers": ("Customers", "Клиентов"),
    "first_order_date": ("First order", "Первый заказ"),
    "last_order_date": ("Last order", "Последний заказ"),
    "orders": ("Orders so far", "Заказов к дате оценки"),
}

# Segment codes join these kinds with "-" (``at_risk-high-stock_up``).
SEGMENT_PARTS = ("lifecycle_stage", "value_tier", "behaviour_type")
CATEGORY_COLUMNS = ("lifecycle_stage", "value_tier", "behaviour_type", "goal", "channel",
                    "offer", "score_source")
_INDEX: dict[Language, int] = {"en": 0, "ru": 1}


def label(kind: str, code: str | None, lang: Language = "en") -> str:
    """The human label of ``code`` of a category ``kind``; the code itself when unknown."""
    if code is None:
        return ""
    known = CATEGORIES.get(kind, {}).get(code)
    if known is not None:
        return known[_INDEX[lang]]
    if kind == "offer" and code.startswith("discount_"):
        percent = code.removeprefix("discount_")
        return f"Discount {percent}%" if lang == "en" else f"Скидка {percent}%"
    if kind == "segment":
        return segment_label(code, lang)
    return code


def segment_label(code: str, lang: Language = "en") -> str:
    """``at_risk-high-stock_up`` -> ``At risk · High value · Stock-up buyer``."""
    parts = code.split("-")
    if len(parts) != len(SEGMENT_PARTS):
        return code
    return " · ".join(label(kind, part, lang) for kind, part in zip(SEGMENT_PARTS, parts))


def column_label(name: str, lang: Language = "en") -> str:
    """The header people read for a column; its code when not listed."""
    known = COLUMNS.get(name)
    return known[_INDEX[lang]] if known is not None else name


def labelled(frame: pl.DataFrame, lang: Language) -> pl.DataFrame:
    """``frame`` with category codes replaced by labels and headers translated (for people: the
    codes are gone, so never feed the result back to retain)."""
    categories = [name for name in (*CATEGORY_COLUMNS, "segment") if name in frame.columns]
    # Labels are looked up once per distinct code, not once per row.
    mappings = {name: {code: label(name, code, lang)
                       for code in frame.get_column(name).drop_nulls().unique().to_list()}
                for name in categories}
    return frame.with_columns(
        pl.col(name).cast(pl.String).replace(mappings[name]) for name in categories
    ).rename({name: column_label(name, lang) for name in frame.columns})


# One line that says what a number means, shown next to it on the page; ``{horizon}`` is the
# horizon in days. Probability alive and churn in the horizon answer different questions (gone
# for good vs no order soon), so 41% churn beside 84% alive is not a contradiction.
COLUMN_HELP: dict[str, tuple[str, str]] = {
    "p_alive": ("Chance they have not left for good (BTYD p-alive).",
                "Шанс, что клиент не ушёл насовсем (BTYD p-alive)."),
    "churn_probability": ("Chance of no order in the next {horizon} days.",
                          "Шанс, что в ближайшие {horizon} дн. заказа не будет."),
    "expected_orders": ("Orders we expect from them in the next {horizon} days.",
                        "Сколько заказов ждём от клиента за {horizon} дн."),
    "predicted_revenue": (("Revenue we expect from them in the next {horizon} days, "
                          "contacted or not."),
                          ("Выручка, которую ждём от клиента за {horizon} дн., "
                          "с контактом или без.")),
    "clv_12m": ("Revenue we expect from them over the next 12 months.",
                "Выручка, которую ждём от клиента за 12 месяцев."),
    "next_order_date": ("The most likely date of their next order.",
                        "Самая вероятная дата следующего заказа."),
    "next_order_p10": ("Only 1 in 10 customers like them orders earlier.",
                       "Лишь 1 из 10 похожих клиентов заказывает раньше."),
    "next_order_p90": ("9 in 10 customers like them have ordered by then.",
                       "9 из 10 похожих клиентов к этой дате уже заказали."),
    "overdue_days": ("Days past their own usual rhythm of ordering (0: not late).",
                     ("На сколько дней клиент опаздывает относительно своего ритма (0 — не "
                     "опаздывает).")),
    "due_product_id": ("The product they are likely to run out of next.",
                       "Товар, который у клиента, вероятно, закончится первым."),
    "due_product_date": ("When that product is likely to run out.",
                         "Когда этот товар, вероятно, закончится."),
    "expected_incremental_revenue": (("What contacting them should add, compared with "
                                     "leaving them alone."),
                                     ("Сколько должен добавить контакт по сравнению с тем, "
                                     "чтобы клиента не трогать.")),
    "contact_cost": ("What the message costs to send (channel price and offer).",
                     "Сколько стоит отправка (цена канала и предложения)."),
    "control_group": ("Gets nothing on purpose, so the effect of the others can be measured.",
                      "Намеренно ничего не получает, чтобы измерить эффект на остальных."),
    "send_at": ("The day the message should go out.", "День, когда отправить сообщение."),
    "customers": ("How many customers are in the group.", "Сколько клиентов в группе."),
    "first_order_date": ("Their first purchase before the scores' date.",
                         "Первая покупка клиента до даты оценки."),
    "last_order_date": ("Their latest purchase before the scores' date.",
                        "Последняя покупка клиента до даты оценки."),
    "orders": ("Purchases (orders with a positive total) before the scores' date.",
               "Покупки (заказы с положительной суммой) до даты оценки."),
}


def column_help(name: str, lang: Language = "en", horizon_days: int | None = None) -> str:
    """One line saying what the number in column ``name`` means; empty when there is none."""
    known = COLUMN_HELP.get(name)
    if known is None:
        return ""
    return known[_INDEX[lang]].format(horizon=horizon_days or "N")
