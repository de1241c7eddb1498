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
    rows) | control Boolean (the customer is in the global control group: nothing was sent) |
    offer String, only with ``offer_share`` > 0: "discount_10" on a random ``offer_share`` of the
    treated rows, else "none" (so past offers are a randomised experiment).
``truth``, one row per customer:
    customer_id | behaviour_type String: stock_up, hedonist, occasional | control Boolean |
    alive_at_as_of Boolean | dropout_ts Datetime, null if the customer does not drop out within
    the simulated span | mean_interval_days Float64, the base cadence before seasonality and
    slowdown | orders_next_90d Int64 | revenue_next_90d Float64, net of returns |
    next_order_ts Datetime, null if no order in the future window | first_order_ts Datetime |
    offer_response String: persuadable, sure_thing, sleeping_dog, lost_cause | offer_uplift
    Float64, the true change a discount makes to the customer's expected orders in the 30 days
    after it, while they still buy (drawn whatever ``offer_share``, from a stream of its own).
``caused_orders``, the true effect of the contacts: one row per extra order a treated contact
caused (in the history or the future), sorted by customer_id, ts:
    customer_id | order_id (its lines are in transactions or future_transactions) | ts |
    revenue Float64, the order's net amount | contact_ts Datetime, when the contact that caused
    it was sent | channel String, that contact's channel. Control customers have none, so the
    true difference between treated and control customers over a window is the caused revenue
    (or orders) in it per treated customer. With offers, the orders a discount added to
    persuadables are here too (caused by that contact); the orders it cancelled for sleeping
    dogs have no row (they never happened).

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
* Offers (``offer_share`` > 0): each customer has a latent response to a discount, correlated
  with what the transactions show: persuadables (a discount adds an order within 30 days with
  probability 0.3; hedonists and small baskets for the type most often), sure things (they
  order anyway: fast cadences), sleeping dogs (a discount cancels their next order within 30
  days with probability 0.5; occasional buyers and big baskets most often) and lost causes
  (slow cadences; nothing moves them). The offers, the types
  and their effects are drawn from a random stream of their own, so turning offers on keeps
  the customers, their cadences, the campaigns and the contacts (baskets and signup times,
  drawn after the orders, come out anew).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["OFFER_NAME", "OFFER_TYPES", "SimulatedShop", "simulate_shop", "write_shop"]

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
        [0.040, 0.040],  # email
        [0.060, 0.060],  # sms
        [0.030, 0.030],  # push
        [0.080, 0.020],  # whatsapp: tires
        [0.040, 0.080],  # telegram: the audience moves here
    ]
)
_UPLIFT_DAYS = 7

OFFER_TYPES = ("persuadable", "sure_thing", "sleeping_dog", "lost_cause")
OFFER_NAME = "discount_10"
NO_OFFER = "none"
OFFER_WINDOW_DAYS = 30
_OFFER_LIFT = 0.30  # persuadable: probability that a discount adds an order within the window
_OFFER_DETER = 0.50  # sleeping dog: probability that it cancels their next order in the window
# Per behaviour type (stock_up, hedonist, occasional): the shares of persuadables and sleeping
# dogs; the rest are sure things or lost causes by their chance of ordering within the window
# anyway, so the types follow cadence and basket, which the features see.
_OFFER_PERSUADABLE = np.array([0.20, 0.45, 0.30])
_OFFER_SLEEPING_DOG = np.array([0.10, 0.05, 0.25])
_OFFER_STREAM = 14  # the offers' random stream: np.random.default_rng([seed, _OFFER_STREAM])

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
# fmt: off
_ONLINE_HOURS = np.array(
    [1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 2.5, 3.0, 3.2,
     3.5, 3.3, 3.0, 3.0, 3.2, 3.6, 4.0, 4.5, 4.8, 4.2, 3.0, 1.8]
)
# fmt: on
_STORE_HOURS = np.where((np.arange(24) >= 9) & (np.arange(24) < 22), _ONLINE_HOURS, 0.0)
_ONLINE_CDF = np.cumsum(_ONLINE_HOURS) / _ONLINE_HOURS.sum()
_STORE_CDF = np.cumsum(_STORE_HOURS) / _STORE_HOURS.sum()
_ONLINE_CDF[-1] = _STORE_CDF[-1] = 1.0


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


# fmt: off
_TYPES = (
    _TypeParams(
        share=0.25, mean_interval=10.0, interval_heterogeneity=8.0, interval_bounds=(3.0, 21.0),
        interval_cv=0.3, one_timer=0.15, dropout=0.08, favourites=(6, 10),
        period_probs=(0.35, 0.30, 0.20, 0.15), impulse=0.8, quantity_probs=(0.4, 0.4, 0.2),
        channel_probs=(0.30, 0.30, 0.30, 0.10),
    ),
    _TypeParams(
        share=0.20, mean_interval=6.0, interval_heterogeneity=4.0, interval_bounds=(1.5, 14.0),
        interval_cv=0.7, one_timer=0.20, dropout=0.08, favourites=(2, 4),
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
# fmt: on
_MAX_FAVOURITES = max(t.favourites[1] for t in _TYPES)
_FRAME_NAMES = ("transactions", "future_transactions", "customers", "contacts", "truth",
                "caused_orders")


@dataclass(frozen=True)
class SimulatedShop:
    """A simulated shop; the module docstring gives every frame's schema."""

    transactions: pl.DataFrame
    future_transactions: pl.DataFrame
    customers: pl.DataFrame
    contacts: pl.DataFrame
    truth: pl.DataFrame
    as_of: date
    caused_orders: pl.DataFrame | None = None  # what the treated contacts caused (module doc)


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
    product_popularity: np.ndarray
    product_price: np.ndarray  # whole rubles


@dataclass(frozen=True)
class _Orders:
    """Orders sorted by customer, then time; ``phase`` picks the due favourites."""

    customer: np.ndarray
    phase: np.ndarray
    sec: np.ndarray  # seconds since the history start
    channel: np.ndarray
    cause: np.ndarray  # the contact row that caused the order (an extra order), else -1


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


def _draw_categories(
    rng: np.random.Generator, probs: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
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
    # The catalogue comes first so that its prices do not shift when customer parameters change.
    popularity = 1.0 / np.arange(1, _N_PRODUCTS + 1) ** 0.9
    popularity = rng.permutation(popularity / popularity.sum())
    # Lognormal prices ending in 9 ("399", "1499"), 49-4999 rubles.
    price = np.clip(np.round(rng.lognormal(math.log(350.0), 0.9, _N_PRODUCTS), -1) - 1, 49, 4999)

    btype = rng.choice(len(_TYPES), size=n, p=[t.share for t in _TYPES]).astype(np.int8)
    control = rng.random(n) < control_share
    acquisition = rng.choice(len(ACQUISITION_CHANNELS), size=n, p=_ACQUISITION_SHARES)
    # A share opts out of everything; the rest consent per channel so that the overall shares
    # match _CONSENT_RATES.
    consent = (
        rng.random((n, len(CONTACT_CHANNELS))) < _CONSENT_RATES / (1 - _NO_CONSENT_SHARE)
    ) & (rng.random(n) >= _NO_CONSENT_SHARE)[:, None]
    # Acquisition density grows exponentially over the history (inverse-CDF draw).
    first_day = (
        history_days
        * np.log1p(rng.random(n) * math.expm1(_ACQUISITION_GROWTH))
        / _ACQUISITION_GROWTH
    )

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
        product_popularity=popularity,
        product_price=price,
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


def _order_channel(rng: np.random.Generator, pop: _Population, customer: np.ndarray) -> np.ndarray:
    preferred = pop.preferred_channel[customer]
    other = (preferred + rng.integers(1, len(ORDER_CHANNELS), customer.size)) % len(ORDER_CHANNELS)
    loyal = rng.random(customer.size) < pop.loyalty[customer]
    return np.where(loyal, preferred, other).astype(np.int8)


def _time_of_day(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """Seconds after midnight, following the hourly profile of the order channel."""
    u = rng.random(channel.size)
    hour = np.where(
        channel == ORDER_CHANNELS.index("store"),
        np.searchsorted(_STORE_CDF, u, side="right"),
        np.searchsorted(_ONLINE_CDF, u, side="right"),
    )
    return hour * 3600 + rng.integers(0, 3600, channel.size)


def _late_period_start(as_of: date) -> date:
    """First day of the last two calendar quarters of history."""
    last = date.fromordinal(as_of.toordinal() - 1)
    month_index = 3 * ((last.year * 12 + last.month - 1) // 3 - 1)
    return date(month_index // 12, month_index % 12 + 1, 1)


def _campaigns(
    rng: np.random.Generator, start: date, as_of: date
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """One mass campaign a month, on a random day, sent from 10:00: (start second, name, late)."""
    late_start = _late_period_start(as_of)
    seconds, names, late = [], [], []
    year, month = start.year, start.month
    while date(year, month, 1) < as_of:
        day = date(year, month, int(rng.integers(3, 21)))
        if start <= day < as_of:
            seconds.append((day - start).days * _DAY + 10 * 3600)
            names.append(f"{year:04d}-{month:02d}-promo")
            late.append(day >= late_start)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return np.array(seconds, dtype=np.int64), names, np.array(late, dtype=bool)


@dataclass(frozen=True)
class _Contacts:
    """Contact rows sorted by customer, then time."""

    customer: np.ndarray
    sec: np.ndarray
    channel: np.ndarray
    campaign: np.ndarray  # index into campaign_names
    campaign_names: list[str]
    late: np.ndarray  # per row: sent in the last two quarters of history
    cost: np.ndarray
    control: np.ndarray
    offer: np.ndarray | None = None  # per row: a discount came with the message


def _draw_contacts(
    rng: np.random.Generator, pop: _Population, first_sec: np.ndarray, start: date, as_of: date
) -> _Contacts:
    campaign_start, names, late = _campaigns(rng, start, as_of)
    n_consents = pop.consent.sum(axis=1)
    # Campaigns target customers who ordered before the campaign: a contiguous run of campaigns
    # per customer, which keeps the rows sorted by customer and time without a sort.
    first_campaign = np.searchsorted(campaign_start, first_sec, side="right")
    counts = np.where(n_consents > 0, campaign_start.size - first_campaign, 0)
    customer, rank = _segment_ranks(counts)
    campaign = first_campaign[customer] + rank
    # A mass send takes a few hours to go out.
    sec = campaign_start[campaign] + rng.integers(0, 3 * 3600, customer.size)
    # One consented channel per customer and campaign, uniformly: each row of ``consented``
    # lists the customer's consented channel codes first.
    consented = np.argsort(~pop.consent, axis=1, kind="stable")
    pick = (rng.random(customer.size) * n_consents[customer]).astype(np.int64)
    channel = consented[customer, pick].astype(np.int8)
    control = pop.control[customer]
    return _Contacts(
        customer=customer,
        sec=sec,
        channel=channel,
        campaign=campaign,
        campaign_names=names,
        late=late[campaign],
        cost=np.where(control, 0.0, _CONTACT_COST[channel]),
        control=control,
    )


def _draw_extra_orders(
    rng: np.random.Generator, contacts: _Contacts, dropout_sec: np.ndarray, end_sec: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orders caused by treated contacts to customers who had not dropped out: (customer, sec,
    the contact row that caused each)."""
    alive = ~contacts.control & (contacts.sec < dropout_sec[contacts.customer])
    probability = _UPLIFT[contacts.channel, contacts.late.astype(np.int64)]
    hit = np.flatnonzero(alive & (rng.random(contacts.customer.size) < probability))
    customer = contacts.customer[hit]
    sec = contacts.sec[hit] + rng.integers(0, _UPLIFT_DAYS * _DAY, hit.size)
    keep = (sec < dropout_sec[customer]) & (sec < end_sec)
    return customer[keep], sec[keep], hit[keep]


@dataclass(frozen=True)
class _OfferResponse:
    kind: np.ndarray  # int8 index into OFFER_TYPES
    uplift: np.ndarray  # true change in expected orders within the window after a discount


def _draw_offer_response(rng: np.random.Generator, pop: _Population) -> _OfferResponse:
    """Each customer's latent response to a discount (see module doc)."""
    # Small baskets for their type go with price-hunting (persuadable), big ones with buyers a
    # discount cheapens the shop for (sleeping dogs): the type's shares x 2 (1 - r) and x 2 r,
    # with r the customer's rank of expected basket value within their behaviour type.
    period = pop.fav_period.astype(float)
    favourites = np.where(period > 0, pop.product_price[pop.fav_product] * pop.fav_quantity
                          / np.maximum(period, 1.0), 0.0).sum(axis=1)
    impulse = _type_array("impulse", pop.btype) * float(pop.product_popularity
                                                         @ pop.product_price)
    basket = favourites + impulse
    rank = np.empty(basket.size)
    for kind in range(len(_TYPES)):  # three behaviour types, not customers
        members = np.flatnonzero(pop.btype == kind)
        rank[members[np.argsort(basket[members], kind="stable")]] = (
            (np.arange(members.size) + 0.5) / max(members.size, 1))
    persuadable = _OFFER_PERSUADABLE[pop.btype] * 2.0 * (1.0 - rank)
    sleeping = _OFFER_SLEEPING_DOG[pop.btype] * 2.0 * rank
    # The chance of ordering within the window anyway, for an order rate of 1 / mean interval.
    anyway = -np.expm1(-OFFER_WINDOW_DAYS / pop.mean_interval)
    rest = 1.0 - persuadable - sleeping
    probs = np.stack([persuadable, rest * anyway, sleeping, rest * (1.0 - anyway)], axis=1)
    kind = _draw_categories(rng, probs, (pop.btype.size,))
    uplift = np.select([kind == 0, kind == 2], [_OFFER_LIFT, -_OFFER_DETER * anyway], 0.0)
    return _OfferResponse(kind=kind, uplift=uplift)


def _draw_offer_effects(
    rng: np.random.Generator,
    contacts: _Contacts,
    response: _OfferResponse,
    dropout_sec: np.ndarray,
    base_customer: np.ndarray,
    base_sec: np.ndarray,
    base_last: np.ndarray,
    end_sec: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the discounts did: orders they added to persuadables (customer, sec, the contact
    row that caused each), and a mask of
    the base orders they cancelled for sleeping dogs (the next one within the window; never a
    customer's last lifetime order, which marks the dropout)."""
    window = OFFER_WINDOW_DAYS * _DAY
    assert contacts.offer is not None
    kind = response.kind[contacts.customer]
    u = rng.random(contacts.customer.size)
    alive = contacts.sec < dropout_sec[contacts.customer]
    added = np.flatnonzero(contacts.offer & alive & (kind == 0) & (u < _OFFER_LIFT))
    customer = contacts.customer[added]
    sec = contacts.sec[added] + rng.integers(0, window, added.size)
    keep = (sec < dropout_sec[customer]) & (sec < end_sec)

    deterred = np.flatnonzero(contacts.offer & (kind == 2) & (u < _OFFER_DETER))
    bits = int(end_sec).bit_length()
    order = np.argsort((base_customer << bits) | base_sec, kind="stable")
    keys = ((base_customer << bits) | base_sec)[order]
    who = contacts.customer[deterred]
    position = np.searchsorted(keys, (who << bits) | contacts.sec[deterred], side="right")
    position = np.minimum(position, keys.size - 1)
    found = order[position]
    hit = ((base_customer[found] == who) & (base_sec[found] > contacts.sec[deterred])
           & (base_sec[found] < contacts.sec[deterred] + window) & ~base_last[found])
    cancelled = np.zeros(base_customer.size, dtype=bool)
    cancelled[found[hit]] = True
    return customer[keep], sec[keep], added[keep], cancelled


@dataclass(frozen=True)
class _Lines:
    """Order lines grouped by order, in order of the orders; returns included."""

    order: np.ndarray  # index into _Orders
    product: np.ndarray
    quantity: np.ndarray
    amount: np.ndarray


def _draw_lines(rng: np.random.Generator, pop: _Population, orders: _Orders) -> _Lines:
    n_orders = orders.customer.size
    fav_orders, fav_slots = [], []
    for first in range(0, n_orders, _CHUNK_ORDERS):
        customer = orders.customer[first : first + _CHUNK_ORDERS]
        phase = orders.phase[first : first + _CHUNK_ORDERS, None]
        period = pop.fav_period[customer]
        due = (period > 0) & (phase % np.maximum(period, 1) == pop.fav_phase[customer])
        order, slot = np.nonzero(due)
        fav_orders.append(order + first)
        fav_slots.append(slot)
    fav_order = np.concatenate(fav_orders)
    fav_slot = np.concatenate(fav_slots)
    # Due favourites are sometimes skipped (forgotten, out of stock).
    kept = rng.random(fav_order.size) >= _FAVOURITE_SKIP
    fav_order, fav_slot = fav_order[kept], fav_slot[kept]
    fav_customer = orders.customer[fav_order]
    fav_product = pop.fav_product[fav_customer, fav_slot]
    fav_quantity = pop.fav_quantity[fav_customer, fav_slot].astype(np.int64)
    u = rng.random(fav_order.size)
    fav_quantity += u < 0.10
    fav_quantity -= (u > 0.95) & (fav_quantity > 1)

    fav_count = np.bincount(fav_order, minlength=n_orders)
    impulse_count = rng.poisson(_type_array("impulse", pop.btype[orders.customer]))
    impulse_count[fav_count + impulse_count == 0] = 1
    count = fav_count + impulse_count
    first_line = np.cumsum(count) - count
    line_order = np.repeat(np.arange(n_orders), count)
    product = np.empty(line_order.size, dtype=np.int16)
    quantity = np.empty(line_order.size, dtype=np.int64)
    _, fav_rank = _segment_ranks(fav_count)
    position = first_line[fav_order] + fav_rank
    product[position] = fav_product
    quantity[position] = fav_quantity
    impulse_order, impulse_rank = _segment_ranks(impulse_count)
    position = first_line[impulse_order] + fav_count[impulse_order] + impulse_rank
    product[position] = rng.choice(_N_PRODUCTS, size=position.size, p=pop.product_popularity)
    quantity[position] = 1 + _draw_categories(rng, _IMPULSE_QUANTITY_PROBS, (position.size,))

    # An impulse pick can repeat a favourite or another pick: one line per product, as shops
    # export them (identical lines would be duplicates under the data contract).
    key, inverse = np.unique(line_order.astype(np.int64) * _N_PRODUCTS + product, return_inverse=True)
    quantity = np.bincount(inverse, weights=quantity).astype(np.int64)
    line_order, product = key // _N_PRODUCTS, (key % _N_PRODUCTS).astype(np.int16)

    # A returned line is followed by its return line: same order and product, quantity negated.
    returned = rng.random(line_order.size) < _RETURN_SHARE
    copies = 1 + returned
    line_order = np.repeat(line_order, copies)
    product = np.repeat(product, copies)
    quantity = np.repeat(quantity, copies)
    quantity[(np.cumsum(copies) - 1)[returned]] *= -1
    return _Lines(
        order=line_order,
        product=product,
        quantity=quantity,
        amount=pop.product_price[product] * quantity,
    )


@dataclass(frozen=True)
class _Fates:
    """Per customer, from the base orders."""

    first_sec: np.ndarray
    dropped: np.ndarray  # the last lifetime order falls inside the span
    dropout_sec: np.ndarray  # ts of the last order if dropped, else int64 max


def _draw_orders(
    rng: np.random.Generator,
    pop: _Population,
    season: _Season,
    start: date,
    as_of: date,
    end_sec: int,
    offers: tuple[np.random.Generator, _OfferResponse, float] | None = None,
) -> tuple[_Orders, _Contacts, _Fates]:
    """Base orders, the campaigns, and the extra orders the campaigns cause. ``offers``: the
    offers' random stream, the customers' response and the share of treated contacts that carry
    a discount."""
    n = pop.btype.size
    base_customer, base_index, base_days = _draw_base_orders(rng, pop, season, end_sec // _DAY)
    base_channel = _order_channel(rng, pop, base_customer)
    base_sec = np.floor(base_days).astype(np.int64) * _DAY + _time_of_day(rng, base_channel)
    first_sec = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_sec, base_customer, base_sec)
    last_sec = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_sec, base_customer, base_sec)
    dropped = np.zeros(n, dtype=bool)
    dropped[base_customer[base_index == pop.lifetime_orders[base_customer] - 1]] = True
    # The customer leaves right after the last order; one still buying at the end never leaves.
    fates = _Fates(
        first_sec=first_sec,
        dropped=dropped,
        dropout_sec=np.where(dropped, last_sec, np.iinfo(np.int64).max),
    )

    contacts = _draw_contacts(rng, pop, first_sec, start, as_of)
    extra_customer, extra_sec, extra_cause = _draw_extra_orders(
        rng, contacts, fates.dropout_sec, end_sec)
    extra_channel = _order_channel(rng, pop, extra_customer)
    # An extra order carries the basket of a random point in the customer's cycle.
    extra_phase = rng.integers(0, 12, extra_customer.size)
    if offers is not None:
        offer_rng, response, offer_share = offers
        contacts = replace(contacts, offer=~contacts.control
                           & (offer_rng.random(contacts.customer.size) < offer_share))
        base_last = base_index == pop.lifetime_orders[base_customer] - 1
        offer_customer, offer_sec, offer_cause, cancelled = _draw_offer_effects(
            offer_rng, contacts, response, fates.dropout_sec, base_customer, base_sec, base_last,
            end_sec)
        kept = ~cancelled
        base_customer, base_index = base_customer[kept], base_index[kept]
        base_sec, base_channel = base_sec[kept], base_channel[kept]
        extra_customer = np.concatenate([extra_customer, offer_customer])
        extra_sec = np.concatenate([extra_sec, offer_sec])
        extra_cause = np.concatenate([extra_cause, offer_cause])
        extra_channel = np.concatenate([extra_channel, _order_channel(offer_rng, pop,
                                                                      offer_customer)])
        extra_phase = np.concatenate([extra_phase,
                                      offer_rng.integers(0, 12, offer_customer.size)])

    customer = np.concatenate([base_customer, extra_customer])
    sec = np.concatenate([base_sec, extra_sec])
    order = np.argsort((customer << int(end_sec).bit_length()) | sec, kind="stable")
    orders = _Orders(
        customer=customer[order],
        phase=np.concatenate([base_index, extra_phase])[order],
        sec=sec[order],
        channel=np.concatenate([base_channel, extra_channel])[order],
        cause=np.concatenate([np.full(base_customer.size, -1), extra_cause])[order],
    )
    return orders, contacts, fates


def _id_strings(prefix: str, numbers: np.ndarray, min_width: int) -> pl.Series:
    width = max(min_width, len(str(int(numbers.max(initial=0)))))
    digits = pl.Series(numbers).cast(pl.String).str.zfill(width)
    return pl.select(pl.concat_str([pl.lit(prefix), pl.lit(digits)])).to_series()


def _order_ids(orders: _Orders) -> pl.Series:
    """Order ids numbered in time order across the whole shop, as a real order sequence is."""
    number = np.empty(orders.sec.size, dtype=np.int64)
    number[np.argsort(orders.sec, kind="stable")] = np.arange(1, orders.sec.size + 1)
    return _id_strings("O", number, 8)


def _datetimes(
    name: str, epoch_sec: int, sec: np.ndarray, missing: np.ndarray | None = None
) -> pl.Series:
    micros = (sec + epoch_sec) * 1_000_000
    if missing is not None:
        micros = np.where(missing, np.iinfo(np.int64).min, micros)  # int64 min is NaT -> null
    return pl.Series(name, micros.view("datetime64[us]"))


def _lines_frame(
    lines: _Lines,
    mask: np.ndarray,
    orders: _Orders,
    customer_ids: pl.Series,
    order_ids: pl.Series,
    epoch_sec: int,
) -> pl.DataFrame:
    order = lines.order[mask]
    product_ids = _id_strings("P", np.arange(1, _N_PRODUCTS + 1), 4)
    return pl.DataFrame(
        [
            customer_ids.gather(orders.customer[order]).alias("customer_id"),
            order_ids.gather(order).alias("order_id"),
            _datetimes("ts", epoch_sec, orders.sec[order]),
            pl.Series("amount", lines.amount[mask]),
            product_ids.gather(lines.product[mask]).alias("product_id"),
            pl.Series("quantity", lines.quantity[mask]),
            pl.Series(ORDER_CHANNELS).gather(orders.channel[order]).alias("channel"),
        ]
    )


def _truth_frame(
    pop: _Population,
    orders: _Orders,
    lines: _Lines,
    fates: _Fates,
    customer_ids: pl.Series,
    as_of_sec: int,
    epoch_sec: int,
    response: _OfferResponse,
) -> pl.DataFrame:
    n = pop.btype.size
    horizon_sec = as_of_sec + _HORIZON_DAYS * _DAY
    in_horizon = (orders.sec >= as_of_sec) & (orders.sec < horizon_sec)
    line_in_horizon = in_horizon[lines.order]
    revenue_next = np.bincount(
        orders.customer[lines.order[line_in_horizon]],
        weights=lines.amount[line_in_horizon],
        minlength=n,
    )
    # Orders are sorted by customer and time, so a customer's first future order is the first
    # future row with that customer.
    future = np.flatnonzero(orders.sec >= as_of_sec)
    future_customer = orders.customer[future]
    first_future = future[np.diff(future_customer, prepend=-1) != 0]
    has_next = np.zeros(n, dtype=bool)
    has_next[orders.customer[first_future]] = True
    next_sec = np.zeros(n, dtype=np.int64)
    next_sec[orders.customer[first_future]] = orders.sec[first_future]
    dropout_sec = np.where(fates.dropped, fates.dropout_sec, 0)
    return pl.DataFrame(
        [
            customer_ids.alias("customer_id"),
            pl.Series(BEHAVIOUR_TYPES).gather(pop.btype).alias("behaviour_type"),
            pl.Series("control", pop.control),
            pl.Series("alive_at_as_of", fates.dropout_sec >= as_of_sec),
            _datetimes("dropout_ts", epoch_sec, dropout_sec, ~fates.dropped),
            pl.Series("mean_interval_days", pop.mean_interval),
            pl.Series("orders_next_90d", np.bincount(orders.customer[in_horizon], minlength=n)),
            pl.Series("revenue_next_90d", revenue_next),
            _datetimes("next_order_ts", epoch_sec, next_sec, ~has_next),
            _datetimes("first_order_ts", epoch_sec, fates.first_sec),
            pl.Series(OFFER_TYPES).gather(response.kind).alias("offer_response"),
            pl.Series("offer_uplift", response.uplift),
        ]
    ).with_columns(pl.col("orders_next_90d").cast(pl.Int64))


def _customers_frame(
    rng: np.random.Generator,
    pop: _Population,
    fates: _Fates,
    customer_ids: pl.Series,
    epoch_sec: int,
) -> pl.DataFrame:
    n = pop.btype.size
    # 40% sign up in the session of their first order, the others days or weeks before it.
    lead_sec = np.where(
        rng.random(n) < 0.4,
        rng.integers(60, 1800, n),
        (rng.exponential(20.0, n) * _DAY).astype(np.int64),
    )
    return pl.DataFrame(
        [
            customer_ids.alias("customer_id"),
            _datetimes("signup_ts", epoch_sec, fates.first_sec - lead_sec),
            pl.Series(ACQUISITION_CHANNELS).gather(pop.acquisition).alias("acquisition_channel"),
            *(
                pl.Series(f"consent_{name}", pop.consent[:, k])
                for k, name in enumerate(CONTACT_CHANNELS)
            ),
        ]
    )


def _caused_frame(orders: _Orders, lines: _Lines, contacts: _Contacts, customer_ids: pl.Series,
                  order_ids: pl.Series, epoch_sec: int) -> pl.DataFrame:
    """The true effect: every extra order a treated contact caused, with its net revenue."""
    revenue = np.bincount(lines.order, weights=lines.amount, minlength=orders.sec.size)
    caused = np.flatnonzero(orders.cause >= 0)
    contact = orders.cause[caused]
    return pl.DataFrame(
        [
            customer_ids.gather(orders.customer[caused]).alias("customer_id"),
            order_ids.gather(caused).alias("order_id"),
            _datetimes("ts", epoch_sec, orders.sec[caused]),
            pl.Series("revenue", revenue[caused]),
            _datetimes("contact_ts", epoch_sec, contacts.sec[contact]),
            pl.Series(CONTACT_CHANNELS).gather(contacts.channel[contact]).alias("channel"),
        ]
    )


def _contacts_frame(contacts: _Contacts, customer_ids: pl.Series, epoch_sec: int) -> pl.DataFrame:
    return pl.DataFrame(
        [
            customer_ids.gather(contacts.customer).alias("customer_id"),
            _datetimes("ts", epoch_sec, contacts.sec),
            pl.Series(CONTACT_CHANNELS).gather(contacts.channel).alias("channel"),
            pl.Series(contacts.campaign_names, dtype=pl.String)
            .gather(contacts.campaign)
            .alias("campaign"),
            pl.Series("cost", contacts.cost),
            pl.Series("control", contacts.control),
            *(() if contacts.offer is None else (
                pl.Series([NO_OFFER, OFFER_NAME]).gather(contacts.offer.astype(np.int8))
                .alias("offer"),)),
        ]
    )


def simulate_shop(
    n_customers: int,
    seed: int = 0,
    as_of: date = date(2026, 7, 1),
    history_days: int = 730,
    future_days: int = 365,
    control_share: float = 0.075,
    offer_share: float = 0.0,
) -> SimulatedShop:
    """Simulate a shop with ``n_customers`` customers, all first ordering before ``as_of``.

    The same arguments give identical frames. ``future_days`` must cover the 90-day horizon
    of the truth columns. ``offer_share``: the share of treated contacts that carry a discount
    (drawn at random); 0 (the default) gives no ``offer`` column and no offers' effects.
    """
    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    if history_days < 1 or future_days < _HORIZON_DAYS:
        raise ValueError(f"need history_days >= 1 and future_days >= {_HORIZON_DAYS}")
    if not 0.0 <= control_share < 1.0:
        raise ValueError("control_share must be in [0, 1)")
    if not 0.0 <= offer_share <= 1.0:
        raise ValueError("offer_share must be in [0, 1]")
    rng = np.random.default_rng(seed)
    start = date.fromordinal(as_of.toordinal() - history_days)
    epoch_sec = (start - date(1970, 1, 1)).days * _DAY
    as_of_sec = history_days * _DAY
    end_sec = (history_days + future_days) * _DAY

    pop = _draw_population(rng, n_customers, control_share, history_days)
    # The offers draw from a stream of their own, so the other draws stay as they were.
    offer_rng = np.random.default_rng([seed, _OFFER_STREAM])
    response = _draw_offer_response(offer_rng, pop)
    season = _Season(start, history_days + future_days)
    orders, contacts, fates = _draw_orders(
        rng, pop, season, start, as_of, end_sec,
        (offer_rng, response, offer_share) if offer_share > 0 else None)
    lines = _draw_lines(rng, pop, orders)
    customer_ids = _id_strings("C", np.arange(n_customers), 7)
    order_ids = _order_ids(orders)
    in_history = orders.sec[lines.order] < as_of_sec
    return SimulatedShop(
        transactions=_lines_frame(lines, in_history, orders, customer_ids, order_ids, epoch_sec),
        future_transactions=_lines_frame(
            lines, ~in_history, orders, customer_ids, order_ids, epoch_sec
        ),
        customers=_customers_frame(rng, pop, fates, customer_ids, epoch_sec),
        contacts=_contacts_frame(contacts, customer_ids, epoch_sec),
        truth=_truth_frame(pop, orders, lines, fates, customer_ids, as_of_sec, epoch_sec,
                           response),
        as_of=as_of,
        caused_orders=_caused_frame(orders, lines, contacts, customer_ids, order_ids, epoch_sec),
    )


def write_shop(shop: SimulatedShop, out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write transactions, future_transactions, customers, contacts and truth.

    Each frame goes to ``out_dir/<name>.parquet`` or, with ``fmt="csv"``, ``out_dir/<name>.csv``
    (ISO datetimes, empty fields for nulls). Creates ``out_dir``; returns name -> path.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in _FRAME_NAMES:
        path = out_dir / f"{name}.{fmt}"
        frame: pl.DataFrame = getattr(shop, name)
        if fmt == "parquet":
            frame.write_parquet(path)
        else:
            frame.write_csv(path)
        paths[name] = path
    return paths
