"""A simulated shop with known ground truth, so that churn, value and timing models can be judged.

``simulate_shop`` draws customers of three behaviour types and plays out their orders over
``history_days`` before ``as_of`` and ``future_days`` after it, together with monthly mass
campaigns and a global control group. Everything is vectorised with numpy: the work is a fixed
number of passes over arrays (a few rounds of interval draws, one pass per campaign month and per
chunk of orders), never a Python loop over customers or orders. One million customers take well
under two minutes.

Frames (every datetime is naive UTC, ``Datetime("us")``):

``transactions`` (ts < as_of) and ``future_transactions`` (as_of <= ts < as_of + future_days),
one row per order line, sorted by customer_id, ts (lines of an order share its ts):
    customer_id String "C0000042" | order_id String "O00000017", unique across the shop and
    numbered in time order | ts Datetime | amount Float64, rubles, = unit price x quantity |
    product_id String "P0001" | quantity Int64 | channel String: web, app, store, marketplace.
    About 1% of lines are followed, in the same order and with the same ts, by a return line of
    the same product with NEGATIVE quantity and negative amount (so amount = price x quantity
    holds on every line and a full return nets the order line to zero).
``customers``, one row per customer:
    customer_id | signup_ts Datetime (at or before the first order) | acquisition_channel String:
    seo, paid_search, social, referral, offline | consent_email, consent_sms, consent_push,
    consent_whatsapp, consent_telegram Boolean.
``contacts``, one row per customer and monthly campaign, all before as_of, sorted by customer_id, ts:
    customer_id | ts Datetime | channel String, one the customer consented to: email, sms, push,
    whatsapp, telegram | campaign String "2025-03-promo" | cost Float64 rubles (0 for control
    rows) | control Boolean (the customer is in the global control group: nothing was sent).
``truth``, one row per customer:
    customer_id | behaviour_type String: stock_up, hedonist, occasional | control Boolean |
    alive_at_as_of Boolean | dropout_ts Datetime, null if the customer does not drop out within
    the simulated span | mean_interval_days Float64, the base cadence before seasonality and
    slowdown | orders_next_90d Int64 | revenue_next_90d Float64, net of returns |
    next_order_ts Datetime, null if no order in the future window | first_order_ts Datetime.

The generative model, and what it puts in the data that simple models miss:

* Behaviour types with gamma-distributed heterogeneity in cadence: stock-up buyers (regular,
  interval CV 0.3, big baskets), hedonists (median interval under 10 days, 1-2 items, CV 0.7),
  occasional buyers (30-120 days, CV 1). A regular buyer who is late is far more likely gone than
  a Poisson buyer equally late, which BG/NBD cannot see.
* First orders spread over the history, more of them recently (acquisition grows threefold).
* Dropout as in BG/NBD: each customer leaves after a geometric number of orders (a share of each
  type never comes back after the first), with the per-order dropout probability depending on
  type and acquisition channel. ``dropout_ts`` is the ts of the last order. 70% of leavers slow
  down first: their last 2-4 intervals are stretched x1.25, x1.5, x2, x3, so lengthening
  intervals and overdue ratios predict churn.
* Orders run in "operational time" mapped onto the calendar so that the order rate is multiplied
  by 1 + 0.25 cos(2 pi (day of year - 355) / 365.25): high in December, low in June.
* Each customer has a few favourite products; favourite k is due every m_k orders (m_k in 1..4,
  with a personal phase), so its repurchase interval in days is personal. Due favourites are
  skipped 10% of the time; impulse items from the whole catalogue (Zipf-like popularity,
  lognormal prices) come on top; every order has at least one line.
* Each customer has a preferred order channel used with a personal probability (mean 0.8).
* Monthly campaigns go to every customer with a consent whose first order precedes the campaign,
  on one consented channel picked at random. Control customers get control rows and nothing else.
  A treated contact to a customer who has not yet dropped out adds an extra order 0-7 days later
  with a probability per channel (``_UPLIFT``); WhatsApp loses effectiveness in the last two
  quarters of history while Telegram gains. Extra orders carry an ordinary basket and never fall
  after the customer's dropout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["SimulatedShop", "simulate_shop", "write_shop"]

BEHAVIOUR_TYPES = ("stock_up", "hedonist", "occasional")
ORDER_CHANNELS = ("web", "app", "store", "marketplace")
ACQUISITION_CHANNELS = ("seo", "paid_search", "social", "referral", "offline")
CONTACT_CHANNELS = ("email", "sms", "push", "whatsapp", "telegram")

_DAY = 86_400
_HORIZON_DAYS = 90
_N_PRODUCTS = 300

_ACQUISITION_SHARES = np.array([0.30, 0.25, 0.20, 0.10, 0.15])
# Multiplies the per-order dropout probability: referral and SEO customers stay longer than paid
# ones, which gives the cohort-by-channel views something real to show.
_ACQUISITION_DROPOUT = np.array([0.9, 1.2, 1.1, 0.75, 1.0])

_CONSENT_RATES = np.array([0.70, 0.60, 0.40, 0.35, 0.30])
_NO_CONSENT_SHARE = 0.10
_CONTACT_COST = np.array([0.1, 3.0, 0.05, 2.5, 0.2])
# Probability that one delivered contact adds an extra order, per channel (rows, in
# CONTACT_CHANNELS order) before and during the last two quarters of history (columns).
_UPLIFT = np.array(
    [
        [0.030, 0.030],  # email
        [0.050, 0.050],  # sms
        [0.025, 0.025],  # push
        [0.060, 0.015],  # whatsapp: tires
        [0.030, 0.070],  # telegram: the audience moves here
    ]
)
_UPLIFT_DAYS = 7

_SLOWDOWN_SHARE = 0.7
# Stretch of the interval that ends d orders before the last one (d = 0 is the last interval).
_SLOWDOWN_STRETCH = np.array([3.0, 2.0, 1.5, 1.25])
_SEASON_AMPLITUDE = 0.25
_SEASON_PEAK_DOY = 355
_ACQUISITION_GROWTH = math.log(3.0)

_FAVOURITE_SKIP = 0.10
_RETURN_SHARE = 0.01
_IMPULSE_QUANTITY_PROBS = np.array([0.80, 0.15, 0.05])
_CHUNK_ORDERS = 1 << 20

# Relative order volume per hour of day; stores are open 9:00-22:00.
_ONLINE_HOURS = np.array(
    [1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.5, 3.0, 3.2,
     3.5, 3.3, 3.0, 3.0, 3.2, 3.6, 4.0, 4.5, 4.8, 4.2, 3.0, 1.8]
)
_STORE_HOURS = np.where((np.arange(24) >= 9) & (np.arange(24) < 22), _ONLINE_HOURS, 0.0)


@dataclass(frozen=True)
class _TypeParams:
    share: float
    mean_interval: float  # population mean of the customers' base intervals, days
    interval_heterogeneity: float  # gamma shape of base intervals across customers
    interval_bounds: tuple[float, float]
    interval_cv: float  # coefficient of variation of one customer's intervals
    one_timer: float  # share that never orders again after the first order
    dropout: float  # mean per-order dropout probability of the others
    favourites: tuple[int, int]  # inclusive range of the number of favourite products
    period_probs: tuple[float, float, float, float]  # favourite due every 1, 2, 3, 4 orders
    impulse: float  # mean number of impulse items per order
    quantity_probs: tuple[float, float, float]  # usual quantity 1, 2, 3 of a favourite
    channel_probs: tuple[float, float, float, float]  # preferred order channel


_TYPES = (
    _TypeParams(
        share=0.25, mean_interval=9.0, interval_heterogeneity=8.0, interval_bounds=(3.0, 21.0),
        interval_cv=0.3, one_timer=0.10, dropout=0.06, favourites=(6, 10),
        period_probs=(0.35, 0.30, 0.20, 0.15), impulse=0.8, quantity_probs=(0.4, 0.4, 0.2),
        channel_probs=(0.30, 0.30, 0.30, 0.10),
    ),
    _TypeParams(
        share=0.20, mean_interval=6.0, interval_heterogeneity=4.0, interval_bounds=(1.5, 14.0),
        interval_cv=0.7, one_timer=0.20, dropout=0.06, favourites=(2, 4),
        period_probs=(0.15, 0.25, 0.30, 0.30), impulse=0.2, quantity_probs=(0.8, 0.15, 0.05),
        channel_probs=(0.20, 0.50, 0.10, 0.20),
    ),
    _TypeParams(
        share=0.55, mean_interval=60.0, interval_heterogeneity=6.0, interval_bounds=(30.0, 120.0),
        interval_cv=1.0, one_timer=0.40, dropout=0.15, favourites=(2, 5),
        period_probs=(0.30, 0.30, 0.20, 0.20), impulse=0.3, quantity_probs=(0.7, 0.25, 0.05),
        channel_probs=(0.35, 0.15, 0.20, 0.30),
    ),
)
_MAX_FAVOURITES = max(t.favourites[1] for t in _TYPES)
_FRAME_NAMES = ("transactions", "future_transactions", "customers", "contacts", "truth")


@dataclass(frozen=True)
class SimulatedShop:
    """A simulated shop; the module docstring gives every frame's schema."""

    transactions: pl.DataFrame
    future_transactions: pl.DataFrame
    customers: pl.DataFrame
    contacts: pl.DataFrame
    truth: pl.DataFrame
    as_of: date


@dataclass(frozen=True)
class _Population:
    btype: np.ndarray  # int8 index into _TYPES
    control: np.ndarray
    acquisition: np.ndarray
    consent: np.ndarray  # (n, 5) bool in CONTACT_CHANNELS order
    first_day: np.ndarray  # calendar days since the history start, float
    mean_interval: np.ndarray
    interval_shape: np.ndarray  # gamma shape of one customer's intervals, 1 / cv^2
    lifetime_orders: np.ndarray  # orders before dropping out, if the span were endless
    slowdown: np.ndarray  # number of stretched intervals before dropout (0 = abrupt)
    preferred_channel: np.ndarray
    loyalty: np.ndarray  # probability of ordering through the preferred channel
    fav_product: np.ndarray  # (n, _MAX_FAVOURITES) product index
    fav_period: np.ndarray  # (n, _MAX_FAVOURITES) due every m orders; 0 marks an empty slot
    fav_phase: np.ndarray  # due at order j when j % period == phase
    fav_quantity: np.ndarray


@dataclass(frozen=True)
class _Orders:
    """Orders sorted by customer, then time; ``phase`` picks the due favourites."""

    customer: np.ndarray
    phase: np.ndarray
    sec: np.ndarray  # seconds since the history start
    channel: np.ndarray


class _Season:
    """Maps calendar days since the history start to operational time and back.

    Intervals are drawn in operational time, where the order rate is constant; the calendar
    rate is then 1 + A cos(2 pi (doy - peak) / 365.25) times the base rate.
    """

    def __init__(self, start: date, span_days: int) -> None:
        omega = 2.0 * math.pi / 365.25
        phase = start.timetuple().tm_yday - _SEASON_PEAK_DOY
        self._calendar = np.arange(0.0, span_days + 1.0, 0.05)
        self._operational = self._calendar + _SEASON_AMPLITUDE / omega * (
            np.sin(omega * (self._calendar + phase)) - math.sin(omega * phase)
        )

    def operational(self, days: np.ndarray | float) -> np.ndarray:
        return np.interp(days, self._calendar, self._operational)

    def calendar(self, operational: np.ndarray) -> np.ndarray:
        return np.interp(operational, self._operational, self._calendar)


def _type_array(field: str, btype: np.ndarray) -> np.ndarray:
    return np.array([getattr(t, field) for t in _TYPES])[btype]


def _draw_categories(rng: np.random.Generator, probs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Categorical draws where ``probs`` (..., k) is broadcast against ``shape``."""
    cdf = np.cumsum(probs, axis=-1)
    cdf /= cdf[..., -1:]
    u = rng.random(shape)
    return (u[..., None] >= cdf[..., :-1]).sum(axis=-1).astype(np.int8)


def _segment_ranks(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ragged segments of the given lengths: the segment of each element and its rank in it."""
    segment = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    return segment, np.arange(segment.size) - starts[segment]


def _draw_population(
    rng: np.random.Generator, n: int, control_share: float, history_days: int
) -> _Population:
    btype = rng.choice(len(_TYPES), size=n, p=[t.share for t in _TYPES]).astype(np.int8)
    control = rng.random(n) < control_share
    acquisition = rng.choice(len(ACQUISITION_CHANNELS), size=n, p=_ACQUISITION_SHARES)
    # A share opts out of everything; the rest consent per channel so that the overall shares
    # match _CONSENT_RATES.
    consent = (rng.random((n, len(CONTACT_CHANNELS))) < _CONSENT_RATES / (1 - _NO_CONSENT_SHARE)) & (
        rng.random(n) >= _NO_CONSENT_SHARE
    )[:, None]
    # Acquisition density grows exponentially over the history (inverse-CDF draw).
    growth = _ACQUISITION_GROWTH
    first_day = history_days * np.log1p(rng.random(n) * math.expm1(growth)) / growth

    heterogeneity = _type_array("interval_heterogeneity", btype)
    bounds = _type_array("interval_bounds", btype)
    mean_interval = np.clip(
        rng.gamma(heterogeneity, _type_array("mean_interval", btype) / heterogeneity),
        bounds[:, 0],
        bounds[:, 1],
    )
    interval_shape = 1.0 / _type_array("interval_cv", btype) ** 2

    mean_dropout = _type_array("dropout", btype) * _ACQUISITION_DROPOUT[acquisition]
    dropout = np.clip(rng.beta(2.0, 2.0 * (1 - mean_dropout) / mean_dropout), 1e-3, 0.9)
    one_timer = rng.random(n) < _type_array("one_timer", btype)
    lifetime_orders = np.where(one_timer, 1, 1 + rng.geometric(dropout))
    slowdown = np.where(
        rng.random(n) < _SLOWDOWN_SHARE, rng.integers(2, len(_SLOWDOWN_STRETCH) + 1, n), 0
    )

    preferred_channel = _draw_categories(rng, _type_array("channel_probs", btype), (n,))
    loyalty = rng.beta(8.0, 2.0, n)

    popularity = 1.0 / np.arange(1, _N_PRODUCTS + 1) ** 0.9
    popularity = rng.permutation(popularity / popularity.sum())
    shape = (n, _MAX_FAVOURITES)
    n_favourites = rng.integers(
        _type_array("favourites", btype)[:, 0], _type_array("favourites", btype)[:, 1] + 1
    )
    product = rng.choice(_N_PRODUCTS, size=shape, p=popularity)
    product = np.where(np.arange(_MAX_FAVOURITES) < n_favourites[:, None], product, _N_PRODUCTS)
    # Sorting each row puts empty slots (== _N_PRODUCTS) last and makes repeats adjacent, so a
    # product drawn twice becomes one favourite.
    product.sort(axis=1)
    repeated = np.zeros(shape, dtype=bool)
    repeated[:, 1:] = product[:, 1:] == product[:, :-1]
    used = (product < _N_PRODUCTS) & ~repeated
    period_probs = _type_array("period_probs", btype)[:, None, :]
    period = np.where(used, 1 + _draw_categories(rng, period_probs, shape), 0).astype(np.int8)
    phase = (rng.random(shape) * np.maximum(period, 1)).astype(np.int8)
    quantity_probs = _type_array("quantity_probs", btype)[:, None, :]
    quantity = (1 + _draw_categories(rng, quantity_probs, shape)).astype(np.int8)

    return _Population(
        btype=btype,
        control=control,
        acquisition=acquisition,
        consent=consent,
        first_day=first_day,
        mean_interval=mean_interval,
        interval_shape=interval_shape,
        lifetime_orders=lifetime_orders,
        slowdown=slowdown,
        preferred_channel=preferred_channel,
        loyalty=loyalty,
        fav_product=np.where(used, product, 0).astype(np.int16),
        fav_period=period,
        fav_phase=phase,
        fav_quantity=quantity,
    )


def _draw_base_orders(
    rng: np.random.Generator, pop: _Population, season: _Season, span_days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orders of the renewal process up to the end of the span: (customer, order index, days).

    Intervals are drawn in rounds: each still-active customer gets enough intervals to most
    likely reach the end of the span; the few who do not (and have orders left) go again.
    """
    n = pop.btype.size
    end = float(season.operational(span_days))
    customers = [np.arange(n)]
    indices = [np.zeros(n, dtype=np.int64)]
    times = [season.operational(pop.first_day)]
    active = np.flatnonzero(pop.lifetime_orders > 1)
    current = times[0][active]
    next_index = np.ones(active.size, dtype=np.int64)
    while active.size:
        left = pop.lifetime_orders[active] - next_index
        expected = np.ceil(1.25 * (end - current) / pop.mean_interval[active]).astype(np.int64)
        counts = np.minimum(left, expected + 4)
        segment, rank = _segment_ranks(counts)
        customer = active[segment]
        index = next_index[segment] + rank
        shape = pop.interval_shape[customer]
        gaps = rng.gamma(shape, pop.mean_interval[customer] / shape)
        before_last = pop.lifetime_orders[customer] - 1 - index
        slowing = before_last < pop.slowdown[customer]
        gaps[slowing] *= _SLOWDOWN_STRETCH[before_last[slowing]]
        # A cumulative sum per customer: one global cumsum minus its value before each segment.
        total = np.cumsum(gaps)
        seg_end = np.cumsum(counts) - 1
        seg_start = seg_end - counts + 1
        time = current[segment] + total - (total[seg_start] - gaps[seg_start])[segment]
        inside = time < end
        customers.append(customer[inside])
        indices.append(index[inside])
        times.append(time[inside])
        go_on = (time[seg_end] < end) & (next_index + counts < pop.lifetime_orders[active])
        active = active[go_on]
        current = time[seg_end][go_on]
        next_index = (next_index + counts)[go_on]
    return (
        np.concatenate(customers),
        np.concatenate(indices),
        season.calendar(np.concatenate(times)),
    )
