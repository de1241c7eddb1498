import polars as pl

from retain.decisions.decide import GOALS
from retain.decisions.segments import BEHAVIOUR_TYPES, LIFECYCLE_STAGES, VALUE_TIERS
from retain.serving.labels import LANGUAGES, column_label, label, labelled, segment_label
from retain.serving.store import BASE_SCORE_COLUMNS


def test_every_code_retain_writes_has_a_label_in_each_language():
    for lang in LANGUAGES:
        for kind, codes in (("goal", GOALS), ("lifecycle_stage", LIFECYCLE_STAGES),
                            ("value_tier", VALUE_TIERS), ("behaviour_type", BEHAVIOUR_TYPES)):
            for code in codes:
                assert label(kind, code, lang) != code, (kind, code, lang)
        for name, _ in BASE_SCORE_COLUMNS:
            assert column_label(name, lang) != name, (name, lang)


def test_segment_and_offer_labels_are_composed_and_unknown_codes_pass_through():
    assert segment_label("at_risk-high-stock_up") == "At risk · High value · Stock-up buyer"
    assert segment_label("lost-low-occasional", "ru").startswith("Ушедший · ")
    assert label("offer", "discount_15", "ru") == "Скидка 15%"
    assert label("channel", "carrier_pigeon") == "carrier_pigeon"
    assert segment_label("odd") == "odd"


def test_labelled_frame_translates_headers_and_codes_and_keeps_nulls_and_numbers():
    frame = pl.DataFrame({"customer_id": ["=1", "2"], "goal": ["win_back", None],
                          "channel": ["sms", "fax"], "segment": ["new-vip-hedonist", None],
                          "p_alive": [0.5, 0.25]})
    out = labelled(frame, "ru")
    assert out.columns == ["Клиент", "Цель", "Канал", "Сегмент",
                           "Вероятность, что клиент ещё активен"]
    assert out["Цель"].to_list() == ["Вернуть", None]
    assert out["Канал"].to_list() == ["SMS", "fax"]
    assert out["Сегмент"][0] == "Новый · VIP (топ-5%) · Частые небольшие покупки"
    assert out["Клиент"].to_list() == ["=1", "2"]
    assert out["Вероятность, что клиент ещё активен"].to_list() == [0.5, 0.25]


def test_every_predicted_number_has_a_one_line_explanation_in_each_language():
    from retain.serving.labels import column_help

    predicted = [name for name, dtype in BASE_SCORE_COLUMNS
                 if dtype in (pl.Float64, pl.Date) and name != "as_of"]
    assert {"p_alive", "churn_probability", "clv_12m", "next_order_p10"} <= set(predicted)
    for lang in LANGUAGES:
        for name in predicted:
            line = column_help(name, lang, horizon_days=90)
            assert line and "\n" not in line and "{" not in line, (name, lang)
    # The two probabilities people confuse answer different questions, and say so.
    assert "left for good" in column_help("p_alive")
    assert column_help("churn_probability", "en", 90) == "Chance of no order in the next 90 days."
    assert column_help("churn_probability", "ru", 30).endswith("30 дн. заказа не будет.")
    assert column_help("customer_id") == ""
