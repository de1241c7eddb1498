"""The rules file: defaults from docs/domain.md, partial files over them, one clear error per mistake."""

from __future__ import annotations

import pytest
import yaml

from retain.decisions.rules import Rules, RulesError, default_rules, default_rules_text, load_rules


def _write(tmp_path, text: str, name: str = "rules.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _flat(rules: Rules) -> dict[str, object]:
    """``section.key[.key]`` -> value, for comparing two rule sets key by key."""
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            out[prefix] = value

    walk("", rules.model_dump())
    return out


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_are_the_numbers_of_the_domain():
    rules = load_rules()
    life = rules.lifecycle
    assert life.new_within_days == 30
    assert life.at_risk_overdue_ratio == 1.5
    assert life.at_risk_p_alive_below == 0.5
    assert life.sleeping_after_days == 60
    assert life.lost_after_days == 180
    assert life.lost_p_alive_below == 0.1
    tiers = rules.value_tiers
    assert (tiers.vip, tiers.high, tiers.mid) == (0.05, 0.15, 0.30)
    assert rules.behaviour.stock_up_max_interval_cv == 0.6
    assert rules.behaviour.hedonist_max_interval_median_days == 10
    # Post-purchase: guide within 48 h, review at 7-14 days, cross-sell at 21, repeat at 30.
    steps = rules.timing.post_purchase_days
    assert steps.guide <= 2 and 7 <= steps.review <= 14
    assert (steps.cross_sell, steps.repeat_offer) == (21, 30)
    # Global control group: 5-10% of customers.
    assert 0.05 <= rules.control_group.share <= 0.10
    assert rules.control_group.share == 0.075
    # Mass messages: at most 2-3 a week.
    assert rules.frequency_cap.max_messages <= 3 and rules.frequency_cap.per_days == 7
    # The channels of the field, cheap ones cheaper than the paid ones.
    cost = rules.channels.cost
    assert {"email", "sms", "push", "whatsapp", "telegram", "vk", "max"} <= set(cost)
    assert max(cost["push"], cost["email"], cost["telegram"]) < min(cost["sms"],
                                                                     cost["whatsapp"])
    assert rules.channels.period in ("month", "quarter")


def test_no_file_means_the_defaults_and_the_default_text_loads_to_the_same(tmp_path):
    assert load_rules(None) == default_rules()
    copied = _write(tmp_path, default_rules_text())
    assert load_rules(copied) == default_rules()
    assert load_rules(str(copied)) == default_rules()


def test_an_empty_file_means_the_defaults(tmp_path):
    assert load_rules(_write(tmp_path, "# nothing changed\n")) == default_rules()


# --- partial files ---------------------------------------------------------------------------------


def test_a_partial_file_changes_only_what_it_names(tmp_path):
    path = _write(tmp_path, "lifecycle:\n  sleeping_after_days: 90\n"
                            "timing:\n  post_purchase_days:\n    review: 10\n"
                            "channels:\n  cost:\n    sms: 5.5\n    viber: 1.0\n")
    rules = load_rules(path)
    before, after = _flat(default_rules()), _flat(rules)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed == {"lifecycle.sleeping_after_days", "timing.post_purchase_days.review",
                       "channels.cost.sms", "channels.cost.viber"}
    assert rules.lifecycle.sleeping_after_days == 90
    assert rules.timing.post_purchase_days.review == 10
    assert rules.channels.cost["sms"] == 5.5 and rules.channels.cost["viber"] == 1.0
    assert rules.channels.cost["email"] == default_rules().channels.cost["email"]


def test_a_section_with_every_key_commented_out_keeps_the_defaults(tmp_path):
    # What a shop gets from the copied default file after commenting out a whole section.
    path = _write(tmp_path, "lifecycle:\n  # sleeping_after_days: 90\n"
                            "timing:\n  post_purchase_days:\n    # review: 10\n"
                            "channels:\n  cost:\n    # sms: 5\n  period: month\n")
    rules = load_rules(path)
    assert rules.lifecycle == default_rules().lifecycle
    assert rules.timing == default_rules().timing
    assert rules.channels.cost == default_rules().channels.cost
    assert rules.channels.period == "month"
    # A key (not a section) left empty is still a mistake.
    with pytest.raises(RulesError, match="lifecycle.sleeping_after_days"):
        load_rules(_write(tmp_path, "lifecycle:\n  sleeping_after_days:\n", "empty_key.yaml"))


def test_loading_a_file_does_not_change_the_defaults(tmp_path):
    load_rules(_write(tmp_path, "control_group:\n  share: 0.1\n"))
    assert default_rules().control_group.share == 0.075


# --- mistakes: one RulesError naming the file and the key -------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # unknown key (a typo), in a section and at the top
        ("lifecycle:\n  sleeping_after_dayz: 90\n", "lifecycle.sleeping_after_dayz"),
        ("lifecyle:\n  sleeping_after_days: 90\n", "lifecyle"),
        # wrong type
        ("lifecycle:\n  sleeping_after_days: sixty\n", "lifecycle.sleeping_after_days"),
        ("channels:\n  cost:\n    sms: expensive\n", "channels.cost.sms"),
        ("channels:\n  period: week\n", "channels.period"),
        ("frequency_cap: 3\n", "frequency_cap"),
        # out of range
        ("control_group:\n  share: 0.6\n", "control_group.share"),
        ("frequency_cap:\n  max_messages: 0\n", "frequency_cap.max_messages"),
        ("lifecycle:\n  lost_p_alive_below: 1.5\n", "lifecycle.lost_p_alive_below"),
        ("offers:\n  discount_percent: 100\n", "offers.discount_percent"),
        ("channels:\n  cost:\n    sms: -1\n", "sms"),
        # inconsistent thresholds
        ("lifecycle:\n  sleeping_after_days: 200\n", "sleeping_after_days"),
        ("lifecycle:\n  sleeping_after_days: 180\n", "sleeping_after_days"),
        ("value_tiers:\n  vip: 0.3\n  high: 0.4\n  mid: 0.4\n", "value_tiers"),
        ("timing:\n  post_purchase_days:\n    review: 40\n", "timing.post_purchase_days"),
    ],
)
def test_a_mistake_is_one_error_naming_the_file_and_the_key(tmp_path, text, key):
    path = _write(tmp_path, text)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message
    # One problem, one line: not a pydantic dump with a traceback of errors.
    assert "\n" not in message and "; " not in message
    assert "pydantic" not in message.lower()


def test_inconsistent_lifecycle_names_its_section_and_keys(tmp_path):
    path = _write(tmp_path, "lifecycle:\n  sleeping_after_days: 200\n")
    with pytest.raises(RulesError, match=r"lifecycle: .*sleeping_after_days.*lost_after_days"):
        load_rules(path)


def test_tiers_over_one_are_refused_but_exactly_one_is_fine(tmp_path):
    with pytest.raises(RulesError, match="vip \\+ high \\+ mid"):
        load_rules(_write(tmp_path, "value_tiers:\n  vip: 0.3\n  high: 0.4\n  mid: 0.4\n"))
    rules = load_rules(_write(tmp_path, "value_tiers:\n  vip: 0.25\n  high: 0.25\n  mid: 0.5\n",
                              "ok.yaml"))
    assert rules.value_tiers.mid == 0.5


def test_several_mistakes_are_still_one_error_listing_each(tmp_path):
    path = _write(tmp_path, "control_group:\n  share: 0.6\nfrequency_cap:\n  per_days: 0\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert "control_group.share" in message and "frequency_cap.per_days" in message
    assert message.count(str(path)) == 1


def test_bad_yaml_is_one_error_with_the_file_and_line(tmp_path):
    path = _write(tmp_path, "lifecycle:\n  sleeping_after_days: 60\n  lost: [unclosed\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert str(path) in message and "not valid YAML" in message and "line" in message
    assert not isinstance(caught.value.__cause__, yaml.YAMLError)


def test_a_file_that_is_not_sections_is_refused(tmp_path):
    path = _write(tmp_path, "- lifecycle\n- channels\n")
    with pytest.raises(RulesError, match="expected sections") as caught:
        load_rules(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_one_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "rules.yaml"
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(path) in str(caught.value) and "cannot read" in str(caught.value)
    assert not isinstance(caught.value, FileNotFoundError)


def test_changed_from_defaults_names_each_changed_value_with_both_sides(tmp_path):
    from retain.decisions.rules import changed_from_defaults

    assert changed_from_defaults(default_rules()) == []
    path = tmp_path / "mine.yaml"
    path.write_text("lifecycle:\n  new_within_days: 20\nchannels:\n  cost:\n    sms: 9.5\n")
    assert changed_from_defaults(load_rules(path)) == [
        "channels.cost.sms: 3.0 -> 9.5", "lifecycle.new_within_days: 30 -> 20"]
