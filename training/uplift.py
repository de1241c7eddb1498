"""The offer uplift model's training set and fit, from the contacts log's past offers.

Each treated message before the window's end is one row: the customer's features as of the
message's day (``features.customers.customer_features`` on the lines strictly before it, so
nothing from the message's own day leaks in), whether a discount came with it (the log's
``offer`` column is not ``none``) and the orders in the ``window_days`` after it. The global
control group's rows received nothing and are left out: the model compares a message with a
discount to a message without, which is the choice the decisions make.

Features are computed once per distinct message day, the columnar way (one pass per day over
all customers). A log with messages on more than ``max_feature_days`` days has them moved back
to the start of their week, then of their month: a few days' staler features, never a later one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from retain.features.customers import customer_features
from retain.features.orders import midnight
from retain.models.uplift import OfferUpliftModel

__all__ = ["OfferTrainingSet", "fit_offer_uplift", "offer_training_set"]

log = logging.getLogger(__name__)

NO_OFFER = "none"
MIN_MESSAGES_PER_ARM = 500


@dataclass(frozen=True)
class OfferTrainingSet:
    """``features`` (one row per message, ``customer_id`` first, plus ``contact_ts``), whether
    it carried a discount and the orders in the window after it."""

    features: pl.DataFrame
    treated: np.ndarray
    orders: np.ndarray


def offer_training_set(
    transactions: pl.DataFrame,
    contacts: pl.DataFrame,
    as_of: date,
    *,
    window_days: int = 30,
    channels: Sequence[str] | None = None,
    max_feature_days: int = 40,
) -> OfferTrainingSet:
    """Rows for every treated message whose whole window ends before ``as_of`` (see module
    doc). ``contacts`` needs ``customer_id, ts, control, offer``; ``transactions`` the usual
    ``customer_id, order_id, ts, amount`` lines."""
    end = midnight(as_of) - timedelta(days=window_days)
    messages = (
        contacts.lazy()
        .filter(~pl.col("control") & (pl.col("ts") < end))
        .select("customer_id", "ts", (pl.col("offer") != NO_OFFER).alias("_treated"))
        .with_columns(pl.col("ts").dt.date().alias("day"))
        .sort("customer_id", "ts")
        .collect()
    )
    if messages["day"].n_unique() > max_feature_days:
        messages = messages.with_columns(pl.col("day").dt.truncate("1w"))
    if messages["day"].n_unique() > max_feature_days:
        messages = messages.with_columns(pl.col("day").dt.truncate("1mo"))
    # Underscored: the features have an ``orders`` column of their own.
    messages = messages.with_columns(
        _orders_in_window(transactions, messages, window_days).alias("_orders_after"))

    history = transactions.filter(pl.col("ts") < midnight(as_of))
    parts = []
    for day in messages["day"].unique().sort().to_list():  # one columnar pass per message day
        features = customer_features(history, day, channels)
        parts.append(messages.filter(pl.col("day") == day)
                     .join(features, on="customer_id", how="inner"))
    if not parts:
        empty = customer_features(history.head(0), as_of, channels)
        return OfferTrainingSet(empty, np.zeros(0, dtype=bool), np.zeros(0))
    rows = pl.concat(parts, how="vertical_relaxed")
    return OfferTrainingSet(
        features=rows.drop("_treated", "_orders_after", "day").rename({"ts": "contact_ts"}),
        treated=rows["_treated"].to_numpy(),
        orders=rows["_orders_after"].to_numpy().astype(float),
    )


def _orders_in_window(transactions: pl.DataFrame, messages: pl.DataFrame,
                      window_days: int) -> pl.Series:
    """Per message, the customer's orders in ``[ts, ts + window)``: two sorted searches on
    (customer, second) keys, no join of every message with every order."""
    orders = (transactions.lazy().group_by("customer_id", "order_id").agg(pl.col("ts").min())
              .select("customer_id", "ts").collect())
    codes = (pl.concat([orders["customer_id"], messages["customer_id"]]).unique()
             .to_frame().with_row_index("code"))

    def keys(frame: pl.DataFrame, shift_days: int = 0) -> np.ndarray:
        joined = frame.select("customer_id", "ts").join(codes, on="customer_id", how="left",
                                                        maintain_order="left")
        seconds = (joined["ts"].dt.epoch("s") + shift_days * 86_400).to_numpy().astype(np.int64)
        return (joined["code"].to_numpy().astype(np.int64) << 34) + seconds

    order_keys = np.sort(keys(orders))
    after = np.searchsorted(order_keys, keys(messages), side="left")
    before_end = np.searchsorted(order_keys, keys(messages, window_days), side="left")
    return pl.Series("orders", before_end - after, dtype=pl.Int64)


def fit_offer_uplift(
    transactions: pl.DataFrame,
    contacts: pl.DataFrame | None,
    as_of: date,
    *,
    channels: Sequence[str] | None = None,
    window_days: int = 30,
    random_state: int = 0,
    progress: Callable[[str], None] = log.info,
) -> OfferUpliftModel | None:
    """The offer uplift model from the contacts log's past offers, or None (and why, through
    ``progress``) when the log has no ``offer`` column or too few messages with and without a
    discount: then the decisions keep the rule that needs no model."""
    if contacts is None:
        return None
    if "offer" not in contacts.columns:
        progress("no offer column in the contacts log: no offer uplift model; a discount goes "
                 "where the rules' discount_uplift says it pays")
        return None
    data = offer_training_set(transactions, contacts, as_of, window_days=window_days,
                              channels=channels)
    with_offer = int(data.treated.sum())
    without = int((~data.treated).sum())
    if min(with_offer, without) < MIN_MESSAGES_PER_ARM:
        progress(f"too few past messages to learn the offer uplift ({with_offer:,} with a "
                 f"discount, {without:,} without; {MIN_MESSAGES_PER_ARM} of each needed): a "
                 "discount goes where the rules' discount_uplift says it pays")
        return None
    progress(f"offer uplift model (X-learner on LightGBM) from {with_offer:,} messages with a "
             f"discount and {without:,} without")
    return OfferUpliftModel(window_days=window_days, random_state=random_state).fit(
        data.features, data.treated, data.orders)
