"""One implementation of every feature: a customer alone, a chunk of customers (a Spark
partition) and the whole batch give the same rows; numpy's and polars' engine steps (codes and
sort, ``features.segments``) give the same frames."""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retain.features import segments
from retain.features.contract import ReadOptions, load_transactions
from retain.features.customers import customer_features, observed_channels, rfm_summary
from retain.features.products import customer_product_features, product_candidates
from retain.features.segments import lines_before
from tests.conftest import make_transactions
from tests.fixtures import (
    ONLINE_RETAIL_COLUMN_MAP,
    write_cdnow_like,
    write_cp1251,
    write_online_retail,
)

AS_OF = date(2026, 7, 1)
CHANNELS = ["app", "store", "web"]
CLOSE = {"check_exact": False, "rel_tol": 0, "abs_tol": 1e-9}


def frames(transactions: pl.DataFrame | pl.LazyFrame, as_of: date,
           channels=CHANNELS) -> list[pl.DataFrame]:
    return [customer_features(transactions, as_of, channels), rfm_summary(transactions, as_of),
            customer_product_features(transactions, as_of), product_candidates(transactions, as_of)]


def assert_same(got: list[pl.DataFrame], expected: list[pl.DataFrame], **tolerance) -> None:
    for a, b in zip(got, expected, strict=True):
        assert_frame_equal(a, b, **(tolerance or CLOSE))


def by_customer(transactions: pl.DataFrame, groups: list[list[str]], as_of: date,
                channels) -> list[pl.DataFrame]:
    """The frames of each group of customers on its own, stacked."""
    parts = [frames(transactions.filter(pl.col("customer_id").is_in(group)), as_of, channels)
             for group in groups]
    return [pl.concat([p[i] for p in parts]) for i in range(4)]


def ids(transactions: pl.DataFrame) -> list[str]:
    return transactions["customer_id"].unique().sort().to_list()


@pytest.mark.parametrize("days_before", [0, 200])
def test_each_customer_alone_equals_the_batch_on_the_simulated_shop(shop, shop_history,
                                                                     days_before):
    # Some of these bought only after the earlier as-of date: no row, alone or in the batch.
    some = ids(shop_history)[::10]
    history = shop_history.filter(pl.col("customer_id").is_in(some))
    as_of = shop.as_of - timedelta(days=days_before)
    channels = observed_channels(shop_history)
    batch = frames(history, as_of, channels)
    assert history.height > segments.NUMPY_MAX_LINES  # the batch takes polars' engine steps
    assert batch[0].height > 200 and batch[3].height > 1000
    assert_same(by_customer(history, [[c] for c in some], as_of, channels), batch)


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> pl.DataFrame:
    fixture = write_online_retail(tmp_path_factory.mktemp("retail") / "Online Retail.csv")
    return load_transactions(fixture.path, column_map=ONLINE_RETAIL_COLUMN_MAP,
                             on_bad_rows="skip").frame.drop("_row")


@pytest.mark.parametrize("as_of", [date(2011, 6, 1), date(2011, 12, 1)])
def test_each_customer_alone_equals_the_batch_on_an_invoice_export(retail, as_of):
    """Online Retail: cancellation invoices, refunds larger than their order, float ids."""
    assert retail.filter(pl.col("order_id").str.starts_with("C")).height > 0
    assert retail.height > segments.NUMPY_MAX_LINES
    batch = frames(retail, as_of, observed_channels(retail))
    assert batch[0]["refunds"].sum() > 0
    assert_same(by_customer(retail, [[c] for c in ids(retail)], as_of, observed_channels(retail)),
                batch)


def test_each_customer_alone_equals_the_batch_on_small_exports(tmp_path):
    """cp1251 with day-first dates (amounts only) and CDNOW's layout (no order ids)."""
    cp1251 = load_transactions(write_cp1251(tmp_path / "1c.csv"), column_map={
        "customer_id": "Клиент", "ts": "Дата", "amount": "Сумма"}).frame
    cdnow = load_transactions(write_cdnow_like(tmp_path / "cdnow.txt"), column_map={
        "ts": "date", "amount": "dollar_value", "quantity": "number_of_cds"},
        options=ReadOptions()).frame
    for tx, as_of in ((cp1251, date(2024, 6, 1)), (cdnow, date(1997, 12, 1))):
        tx = tx.drop("_row", strict=False)
        batch = frames(tx, as_of, [])
        assert batch[0].height == tx["customer_id"].n_unique()
        assert_same(by_customer(tx, [[c] for c in ids(tx)], as_of, []), batch)


def test_any_split_into_customer_chunks_gives_the_same_frames(shop, shop_history):
    """As Spark partitions by customer hash: chunks of any size, in any order, stacked and
    sorted, are the batch's frames."""
    channels = observed_channels(shop_history)
    customers = ids(shop_history)
    random.Random(3).shuffle(customers)
    sizes = [1, 2, 7, 40, 150, 900]  # a few lines to several thousand: both engines
    groups, start = [], 0
    while start < len(customers):
        size = sizes[len(groups) % len(sizes)]
        groups.append(customers[start:start + size])
        start += size
    stacked = by_customer(shop_history, groups, shop.as_of, channels)
    keys = [["customer_id"], ["customer_id"], ["customer_id", "product_id"],
            ["customer_id", "product_id"]]
    assert_same([frame.sort(key) for frame, key in zip(stacked, keys)],
                 frames(shop_history, shop.as_of, channels))


EDGE_CASES = {
    "one order": [("A", "o1", "2026-05-02 10:00", 20.0, "p1", 2, "web")],
    "returns net an order to zero (still a purchase)": [
        ("A", "o1", "2026-03-01", 30.0, "p1", 1, "web"),
        ("A", "o1", "2026-03-04", -30.0, "p1", 1, "web"),
        ("A", "o2", "2026-05-01", 12.0, "p2", 3, "app"),
    ],
    "partial return and a net refund order": [
        ("A", "o1", "2026-01-10", 50.0, "p1", 2, "web"),
        ("A", "o1", "2026-01-10", -10.0, "p1", 1, "web"),
        ("A", "o2", "2026-02-10", 5.0, "p2", 1, "store"),
        ("A", "o2", "2026-02-11", -25.0, "p3", 1, "store"),
        ("A", "o3", "2026-06-20", 40.0, "p1", 1, None),
    ],
    "refunds only": [
        ("A", "o1", "2026-02-01", -15.0, "p1", 1, "web"),
        ("A", "o2", "2026-03-01", 10.0, "p2", 1, "web"),
        ("A", "o2", "2026-03-01", -30.0, "p2", 1, "web"),
        ("B", "o3", "2026-04-01", 25.0, "p1", 1, "app"),
    ],
    "missing product_id and channel": [
        ("A", "o1", "2026-01-05", 10.0, None, 1, None),
        ("A", "o2", "2026-02-05", 11.0, None, None, None),
        ("A", "o3", "2026-04-05", 12.0, "p1", 2, None),
        ("B", "o4", "2026-04-05", 9.0, None, 1, "web"),
    ],
    "several orders on one day": [
        ("A", "o1", "2026-04-01 09:00", 10.0, "p1", 1, "web"),
        ("A", "o2", "2026-04-01 18:00", 15.0, "p1", 1, "app"),
        ("A", "o3", "2026-04-01 20:00", 5.0, "p2", 1, "app"),
        ("A", "o4", "2026-05-01", 7.0, "p1", 1, "web"),
        ("A", "o5", "2026-06-01", 8.0, "p1", 1, "store"),
    ],
    "an order's channel is its first given": [
        ("A", "o1", "2026-04-01", 10.0, "p1", 1, None),
        ("A", "o1", "2026-04-01", 10.0, "p2", 1, "store"),
        ("A", "o1", "2026-04-01", 10.0, "p3", 1, "web"),
    ],
    "ties in products and channels go to the first name": [
        ("A", "o1", "2026-02-01", 10.0, "p2", 1, "web"),
        ("A", "o2", "2026-03-01", 10.0, "p1", 1, "app"),
        ("A", "o3", "2026-04-01", 10.0, "p3", 1, "kiosk"),
    ],
    "lines on and after as_of are left out": [
        ("A", "o1", "2026-06-30 23:59", 10.0, "p1", 1, "web"),
        ("A", "o2", "2026-07-01 00:00", 99.0, "p1", 1, "web"),
        ("B", "o3", "2026-07-02", 15.0, "p2", 1, "app"),
    ],
    "a lengthening cadence over 90-day windows": [
        ("A", f"o{i}", day, 10.0 + i, "p1", 1, "web")
        for i, day in enumerate(["2025-10-01", "2025-11-01", "2025-12-01", "2026-01-01",
                                 "2026-03-01", "2026-06-15"])
    ],
    "half-day median rounds half to even": [
        ("A", "o1", "2026-01-01", 10.0, "p1", 1, "web"),
        ("A", "o2", "2026-01-02", 10.0, "p1", 1, "web"),
        ("A", "o3", "2026-01-04", 10.0, "p1", 1, "web"),
        ("A", "o4", "2026-01-09", 10.0, "p1", 1, "web"),
        ("B", "o5", "2026-01-01", 10.0, "p1", 1, "web"),
        ("B", "o6", "2026-01-04", 10.0, "p1", 1, "web"),
        ("B", "o7", "2026-01-06", 10.0, "p1", 1, "web"),
        ("B", "o8", "2026-01-08", 10.0, "p1", 1, "web"),
    ],
    "ids that sort differently as text and as numbers, lines in time order": [
        ("10", "2", "2026-01-02", 10.0, "p10", 1, "web"),
        ("9", "3", "2026-01-03", 20.0, "p9", 1, "app"),
        ("100", "4", "2026-01-04", 30.0, "p10", 1, "web"),
        ("10", "11", "2026-02-02", 15.0, "p9", 2, "web"),
        ("9", "12", "2026-02-02", 5.0, "p9", 1, "store"),
        ("9", "12", "2026-02-02", 7.0, "p10", 1, "store"),
        ("10", "100", "2026-03-02", 25.0, "p10", 1, "app"),
    ],
    "order ids falling within a customer (a cancellation invoice before a later one)": [
        ("B", "536380", "2026-01-02", 10.0, "p1", 1, "web"),
        ("A", "C536379", "2026-01-01", -5.0, "p1", 1, "web"),
        ("A", "536390", "2026-01-05", 12.0, "p2", 1, "web"),
        ("A", "536385", "2026-01-03", 9.0, "p1", 1, "app"),
        ("B", "536381", "2026-01-09", 11.0, "p2", 1, "web"),
    ],
    "lines without an order id form one order": [
        ("A", None, "2026-03-01", 10.0, "p1", 1, "web"),
        ("A", None, "2026-05-01", 20.0, "p2", 1, "app"),
        ("A", "o1", "2026-06-01", 5.0, "p2", 1, "app"),
    ],
}


def both_engines(transactions, as_of, channels=CHANNELS, monkeypatch=None):
    """The frames with numpy's engine steps, then with polars'."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segments, "NUMPY_MAX_LINES", 10**9)
        with_numpy = frames(transactions, as_of, channels)
        patch.setattr(segments, "NUMPY_MAX_LINES", -1)
        with_polars = frames(transactions, as_of, channels)
    return with_numpy, with_polars


@pytest.mark.parametrize("rows", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_both_engines_give_identical_frames_on_edge_cases(rows):
    with_numpy, with_polars = both_engines(make_transactions(rows), AS_OF)
    assert_same(with_numpy, with_polars, check_exact=True)
    # A lazy input is the same lines.
    assert_same(frames(make_transactions(rows).lazy(), AS_OF), with_numpy, check_exact=True)


def test_both_engines_give_identical_frames_on_the_shop(shop, shop_history):
    few = shop_history.filter(pl.col("customer_id").is_in(ids(shop_history)[:300]))
    with_numpy, with_polars = both_engines(few, shop.as_of, observed_channels(shop_history))
    assert_same(with_numpy, with_polars, check_exact=True)


def test_edge_cases_by_hand():
    rows = EDGE_CASES["half-day median rounds half to even"]
    products = customer_product_features(make_transactions(rows), AS_OF)
    # A: gaps 1, 2, 5 -> median 2; B: gaps 3, 2, 2 -> median 2; half days appear with an even
    # count of gaps: drop B's last day -> gaps 3, 2 -> 2.5 -> rounds to 2 (half to even).
    assert products["interval_median"].to_list() == [2.0, 2.0]
    three = customer_product_features(make_transactions(rows[:-1]), AS_OF)
    assert three["interval_median"].to_list() == [2.0, 2.5]
    assert three["next_due"].to_list()[1] == date(2026, 1, 8)
    nulls = customer_features(make_transactions(EDGE_CASES["lines without an order id form one order"]),
                              AS_OF, CHANNELS).row(0, named=True)
    assert nulls["orders"] == 2 and nulls["revenue"] == 35.0  # the two id-less lines: one order
    first_given = customer_features(make_transactions(EDGE_CASES["an order's channel is its first given"]),
                                    AS_OF, CHANNELS).row(0, named=True)
    assert first_given["top_channel"] == "store" and first_given["channel_share_store"] == 1.0
    assert first_given["channel_share_web"] == 0.0 and first_given["basket_lines"] == 3.0


@pytest.mark.parametrize("channels", [[], None, ["web"], ["Web Shop", "app"]])
def test_channel_share_columns_follow_the_given_channels(channels):
    out = customer_features(make_transactions(EDGE_CASES["several orders on one day"]), AS_OF,
                            channels)
    expected = {"web": 2 / 5, "app": 2 / 5}
    shares = [c for c in out.columns if c.startswith("channel_share_")]
    assert shares == [f"channel_share_{c.lower().replace(' ', '_')}" for c in channels or []]
    for name in channels or []:
        assert out[f"channel_share_{name.lower().replace(' ', '_')}"].item() == expected.get(name, 0.0)


def test_no_customer_before_as_of_gives_empty_frames_of_the_same_schema():
    transactions = make_transactions([("A", "o1", "2026-07-03", 10.0, "p1", 1, "web")])
    full = frames(make_transactions(EDGE_CASES["several orders on one day"]), AS_OF)
    for tx in (transactions, transactions.clear()):
        empty = frames(tx, AS_OF)
        assert [f.height for f in empty] == [0, 0, 0, 0]
        assert [f.schema for f in empty] == [f.schema for f in full]


def test_missing_quantities_count_as_nothing():
    rows = EDGE_CASES["partial return and a net refund order"]
    tx = make_transactions(rows).with_columns(quantity=pl.lit(None, pl.Float64))
    row = customer_features(tx, AS_OF).row(0, named=True)
    assert row["basket_items"] == 0.0 and row["basket_lines"] == 1.0
    ints = make_transactions(rows).with_columns(pl.col("quantity").cast(pl.Int64))
    assert_same(frames(ints, AS_OF), frames(make_transactions(rows), AS_OF), check_exact=True)


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_any_timestamp_unit_and_days_before_1970(unit):
    transactions = make_transactions([
        ("A", "o1", "1969-12-31 23:00", 10.0, "p1", 1, "web"),
        ("A", "o2", "1970-01-01 01:00", 10.0, "p1", 1, "web"),
        ("A", "o3", "1970-03-01 12:00", 10.0, "p1", 1, "web"),
    ]).with_columns(pl.col("ts").cast(pl.Datetime(unit)))
    row = customer_features(transactions, date(1970, 4, 1)).row(0, named=True)
    assert row["first_purchase"] == date(1969, 12, 31) and row["recency"] == 60
    assert row["interval_median"] == 30 and row["T"] == 90


def test_prepared_lines_are_shared_and_checked():
    tx = make_transactions(EDGE_CASES["several orders on one day"])
    lines = lines_before(tx, AS_OF)
    assert_same([customer_features(lines, AS_OF, CHANNELS), rfm_summary(lines, AS_OF),
                 customer_product_features(lines, AS_OF), product_candidates(lines, AS_OF)],
                frames(tx, AS_OF), check_exact=True)
    with pytest.raises(ValueError, match="as of"):
        customer_features(lines, AS_OF - timedelta(days=1))


@pytest.mark.parametrize("customers, orders", [
    (["b", "a", "ab", "a", "b", "a"], ["2", "1", None, "1", None, "0"]),  # a prefix id, missing
    (["a", "a", "a\x00", "a", "a\x00"], ["x", None, "y", "", "x"]),  # NUL; "" with missing
    (["c", None, "a", None, "c"], ["1", "2", "1", None, "1"]),  # missing customers
])
def test_shop_sort_is_the_two_column_sort(customers, orders):
    """The one-string-key sort of a shop's lines (and its exact fallbacks) orders rows as the
    stable sort by customer then order id, missing first."""
    customer_id, order_id = pl.Series(customers, dtype=pl.String), pl.Series(orders, dtype=pl.String)
    expected = pl.DataFrame([customer_id.alias("c"), order_id.alias("o")]).select(
        pl.arg_sort_by("c", "o", maintain_order=True)).to_series().to_list()
    assert segments._arg_sort_pairs(customer_id, order_id).tolist() == expected


def test_lazy_and_eager_shops_give_identical_frames(shop, shop_history):
    """A lazy input is read with categorical product and channel ids: same frames."""
    history = shop_history.filter(pl.col("customer_id") < "C0000300")
    assert history.height > segments.NUMPY_MAX_LINES  # a shop's engine steps
    assert_same(frames(history.lazy(), AS_OF), frames(history, AS_OF), check_exact=True)


def test_line_order_of_the_export_does_not_change_the_frames(shop, shop_history, monkeypatch):
    """Exports come customer by customer or in time order: the shop's lines sorted either way
    give identical frames, and neither sorts strings per line (customer codes are sorted,
    each customer's order ids are only checked to be rising)."""
    history = shop_history.filter(pl.col("customer_id") < "C0000400")
    assert history.height > segments.NUMPY_MAX_LINES
    in_time = history.sort("ts", maintain_order=True)
    assert history["customer_id"].is_sorted() and not in_time["customer_id"].is_sorted()

    def no_string_sort(*_):
        raise AssertionError("the string sort was used")

    monkeypatch.setattr(segments, "_arg_sort_pairs", no_string_sort)
    channels = observed_channels(history)
    assert_same(frames(in_time, AS_OF, channels), frames(history, AS_OF, channels),
                check_exact=True)


def test_order_ids_out_of_order_within_a_customer_take_the_string_sort(shop_history):
    """Order ids not rising within a customer (time order with a cancellation invoice ``C...``
    before a later invoice, or ids that are not in time order): the exact sort, same frames."""
    history = shop_history.filter(pl.col("customer_id") < "C0000300")
    shuffled = history.sample(fraction=1.0, shuffle=True, seed=3)
    calls = []
    original = segments._arg_sort_pairs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segments, "_arg_sort_pairs", lambda *a: calls.append(1) or original(*a))
        got = frames(shuffled, AS_OF)
    assert calls  # the check saw the falling order ids
    # Lines of one order in another order: sums may differ in the last bit.
    assert_same(got, frames(history, AS_OF))
