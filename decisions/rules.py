"""The shop's decision rules: a YAML file over the defaults in ``default_rules.yaml``.

A shop's file only needs the values it changes; everything else keeps the default. The file is
validated when loaded and a mistake is reported as one error naming the file and the key.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_RULES_FILE = "default_rules.yaml"


class RulesError(ValueError):
    """A rules file that cannot be used, with the file and key in the message."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lifecycle(_Section):
    new_within_days: int = Field(gt=0)
    at_risk_overdue_ratio: float = Field(gt=0)
    at_risk_p_alive_below: float = Field(ge=0, le=1)
    sleeping_after_days: int = Field(gt=0)
    lost_after_days: int = Field(gt=0)
    lost_p_alive_below: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.new_within_days <= self.sleeping_after_days < self.lost_after_days:
            raise ValueError("need new_within_days <= sleeping_after_days < lost_after_days")
        if self.lost_p_alive_below > self.at_risk_p_alive_below:
            raise ValueError("lost_p_alive_below must not exceed at_risk_p_alive_below")
        return self


class ValueTiers(_Section):
    vip: float = Field(gt=0, lt=1)
    high: float = Field(ge=0, lt=1)
    mid: float = Field(ge=0, lt=1)

    @model_validator(mode="after")
    def _fit_in_one(self) -> Self:
        if self.vip + self.high + self.mid > 1:
            raise ValueError("vip + high + mid must not exceed 1")
        return self


class Behaviour(_Section):
    stock_up_max_interval_cv: float = Field(gt=0)
    stock_up_min_orders: int = Field(ge=3)
    hedonist_max_interval_median_days: float = Field(gt=0)


class Goals(_Section):
    replenish_within_days: int = Field(ge=0)
    none_below_churn_probability: float = Field(ge=0, le=1)
    win_back_min_revenue_share: float = Field(ge=0, le=1)


class PostPurchase(_Section):
    guide: int = Field(ge=0)
    review: int = Field(ge=0)
    cross_sell: int = Field(ge=0)
    repeat_offer: int = Field(ge=0)

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if not self.guide <= self.review <= self.cross_sell <= self.repeat_offer:
            raise ValueError("the steps must be in order: guide <= review <= cross_sell "
                             "<= repeat_offer")
        return self


class Timing(_Section):
    replenish_lead_days: int = Field(ge=0)
    keep_vip_lead_days: int = Field(ge=0)
    post_purchase_days: PostPurchase


class Channels(_Section):
    cost: dict[str, float] = Field(min_length=1)
    default_uplift: float = Field(ge=0, le=1)
    prior_messages: float = Field(ge=0)
    period: Literal["month", "quarter"]
    response_days: int = Field(gt=0)
    min_contacts_to_judge: int = Field(gt=0)
    maintenance_below: float = Field(ge=0, le=1)
    maintenance_share: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _costs(self) -> Self:
        bad = [name for name, cost in self.cost.items() if not cost >= 0]
        if bad:
            raise ValueError(f"cost must be 0 or more for: {', '.join(bad)}")
        return self


class FrequencyCap(_Section):
    max_messages: int = Field(gt=0)
    per_days: int = Field(gt=0)


class Offers(_Section):
    margin: float = Field(gt=0, le=1)
    discount_percent: float = Field(ge=0, lt=100)
    discount_uplift: float = Field(ge=0, le=1)
    # With an offer uplift model: no discount below this many predicted extra orders, however
    # large the basket (the model's noise floor).
    min_offer_uplift: float = Field(default=0.02, ge=0)


class ControlGroup(_Section):
    share: float = Field(ge=0, le=0.5)
    salt: str = Field(min_length=1)


class Rules(_Section):
    lifecycle: Lifecycle
    value_tiers: ValueTiers
    behaviour: Behaviour
    goals: Goals
    timing: Timing
    channels: Channels
    frequency_cap: FrequencyCap
    offers: Offers
    control_group: ControlGroup


def default_rules_text() -> str:
    return resources.files(__package__).joinpath(DEFAULT_RULES_FILE).read_text(encoding="utf-8")


@cache
def default_rules() -> Rules:
    return Rules.model_validate(yaml.safe_load(default_rules_text()))


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules in ``path`` over the defaults; the defaults when ``path`` is None."""
    if path is None:
        return default_rules()
    path = Path(path)
    try:
        changes = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"rules file {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise RulesError(f"rules file {path}: not valid YAML{line}") from None
    if changes is None:
        return default_rules()
    if not isinstance(changes, dict):
        raise RulesError(f"rules file {path}: expected sections such as 'lifecycle:', "
                         f"found a {type(changes).__name__}")
    merged = _merge(default_rules().model_dump(), changes)
    try:
        return Rules.model_validate(merged)
    except ValidationError as exc:
        raise RulesError(f"rules file {path}: {_describe(exc)}") from None


def changed_from_defaults(rules: Rules) -> list[str]:
    """What a rules file changes, one ``section.key: default -> value`` per value that differs
    from the built-in rules (a channel-cost table key by key), for `retain rules --check`."""
    def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            name = f"{prefix}{key}"
            out.update(flat(value, name + ".") if isinstance(value, dict) else {name: value})
        return out

    before, after = flat(default_rules().model_dump()), flat(rules.model_dump())
    missing = object()
    return [f"{name}: {before.get(name, '(none)')} -> {after.get(name, '(none)')}"
            for name in sorted(before.keys() | after.keys())
            if before.get(name, missing) != after.get(name, missing)]


def _merge(defaults: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: a section or channel-cost table in the file updates the default's keys."""
    merged = dict(defaults)
    for key, value in changes.items():
        if value is None and isinstance(merged.get(key), dict):
            continue  # a section left empty (every key commented out) keeps the defaults
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        problems.append(f"{key}: {message}")
    return "; ".join(problems)
