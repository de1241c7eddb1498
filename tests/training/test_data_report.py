"""The data report: counts by hand on small shops, and the plan retain announces."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from retain.training.backtest import TrainConfig
from retain.training.data_report import data_report, origins_for, report_lines
from tests.conftest import make_transactions


def _long_shop(customers: int, repeat: bool, days: int = 400) -> pl.DataFrame:
    start = date(2025, 1, 1)
    rows = []
    for c in range(customers):
        rows.append((f"c{c}", f"o{c}a", f"{start + timedelta(days=c % 30)}", 10.0))
        if repeat:
            rows.append((f"c{c}", f"o{c}b", f"{start + timedelta(days=days - 40 + c % 30)}", 20.0))
    return make_transactions(rows)


def test_counts_refunds_zero_prices_and_lines_after_the_as_of_date():
    tx = make_transactions([
        ("a", "1", "2026-01-01", 10.0, "p1"),
        ("a", "1", "2026-01-01", 0.0, "gift"),
        ("a", "2", "2026-02-01", 30.0, "p1"),
        ("a", "C2", "2026-02-03", -30.0, "p1"),
        ("b", "3", "2026-01-15", 5.0, "p2"),
        ("b", "4", "2026-03-10", 7.0, "p2"),  # on the as-of date: outside the window
        ("b", "5", "2026-03-20", 7.0, "p2"),
    ])
    report = data_report(tx, None, date(2026, 3, 10))
    assert (report.lines, report.lines_after_as_of) == (5, 2)
    assert report.after_as_of_range == ("2026-03-10", "2026-03-20")
    assert (report.customers, report.orders, report.repeat_buyers) == (2, 3, 1)
    assert (report.refund_orders, report.negative_lines, report.zero_price_lines) == (1, 1, 1)
    assert report.first_day == "2026-01-01" and report.history_days == 68
    assert report.has_products and not report.has_channels


def test_a_young_shop_gets_the_probabilistic_fallback_and_a_shorter_horizon():
    tx = _long_shop(600, repeat=True, days=200)
    report = data_report(tx, None, date(2025, 6, 20), TrainConfig(horizon_days=273))
    assert report.plan.startswith("probabilistic")
    assert any("no training origin" in reason for reason in report.reasons)
    assert report.suggested_horizon_days == 60
    assert origins_for(report.history_days, 60, TrainConfig()) >= 2


def test_an_established_shop_gets_the_full_models():
    tx = _long_shop(600, repeat=True)
    report = data_report(tx, None, date(2026, 2, 10))
    assert report.plan.startswith("LightGBM") and report.training_origins == 4
    assert not report.reasons


def test_everyone_bought_once_is_said_plainly():
    report = data_report(_long_shop(50, repeat=False), None, date(2025, 3, 1))
    assert report.plan == "cannot train" and "every customer bought once" in report.reasons[0]
    labels = dict(report_lines(report))
    assert labels["retain will train"] == "cannot train"


def test_no_lightgbm_is_announced_when_the_backtest_cannot_measure_it():
    # 260 days of history: enough training origins at the as-of date, but the backtest, a fit at
    # as_of - 90 days, has 170 (UCI Online Retail at 2011-06-01 had 182 and a 92-day backtest).
    tx = _long_shop(600, repeat=True, days=260)
    report = data_report(tx, None, date(2025, 9, 18))
    assert report.history_days - 90 < 180 <= report.history_days
    assert report.training_origins >= 1
    assert report.plan.startswith("probabilistic")
    assert any("the backtest at 2025-06-20" in reason for reason in report.reasons)


def test_an_order_returned_in_full_counts_as_netting_to_zero_and_is_called_so():
    """A simulated shop had 227 such orders and no zero-price line: 'free lines' misled."""
    tx = make_transactions([
        ("a", "1", "2026-01-01", 40.0, "p1"),
        ("a", "1", "2026-01-03", -40.0, "p1"),  # the whole order back, inside it
        ("a", "2", "2026-02-01", 30.0, "p1"),
        ("b", "3", "2026-01-15", 5.0, "p2"),
    ])
    report = data_report(tx, None, date(2026, 3, 10))
    assert (report.zero_orders, report.zero_price_lines, report.orders) == (1, 0, 2)
    rows = dict(report_lines(report))
    assert rows["orders netting to zero (free or fully returned; not visits)"] == "1"


def test_an_as_of_date_long_after_the_last_line_is_said_to_be_untrainable():
    """CDNOW at 2000-07-01 (two years after its last line) was announced as "LightGBM models
    on 4 origins", and `retain train` then stopped with an internal error."""
    tx = _long_shop(600, repeat=True)  # the last line: 2026-01-25
    report = data_report(tx, None, date(2028, 3, 1))
    assert report.plan == "cannot train at this as-of date"
    assert report.reasons == [("no line in the 90 days before it (the last is dated 2026-01-25): "
                              "train at most 90 days after the last line; that model scores "
                              "any later date")]
    # While the horizon before the as-of date holds the last line, the plan stands.
    assert data_report(tx, None, date(2026, 4, 25)).plan.startswith("LightGBM")
    assert data_report(tx, None, date(2026, 4, 26)).plan == "cannot train at this as-of date"


def test_customers_without_a_purchase_are_counted_and_add_up_across_batches():
    """CDNOW holds 70 customers whose only line is zero dollars: they get no features and no
    scores, and inspect said only "customers with a purchase 23,500" of its 23,570."""
    from retain.training.data_report import HistoryCounts

    tx = make_transactions([
        ("a", "1", "2026-01-01", 10.0), ("a", "2", "2026-02-01", 30.0),
        ("free", "3", "2026-01-05", 0.0),
        ("refund", "4", "2026-01-06", -8.0),
        ("b", "5", "2026-01-15", 5.0), ("b", "6", "2026-01-16", 0.0),
        ("later", "7", "2026-03-20", 0.0),  # after the as-of date: not counted
    ])
    as_of = date(2026, 3, 10)
    report = data_report(tx, None, as_of)
    assert (report.customers, report.customers_without_purchase) == (2, 2)
    labels = dict(report_lines(report))
    assert labels["customers without one (orders netting to zero or less; not scored)"] == "2"
    halves = [HistoryCounts.of(tx.filter(pl.col("customer_id").is_in(ids)), as_of)
              for ids in (["a", "free"], ["refund", "b", "later"])]
    assert HistoryCounts.merge(halves).customers_seen == HistoryCounts.of(tx, as_of).customers_seen == 4
    assert "customers without one (orders netting to zero or less; not scored)" not in dict(
        report_lines(data_report(_long_shop(50, repeat=True), None, date(2026, 2, 10))))


def test_lines_a_status_column_marked_are_counted_never_their_ids_or_amounts(tmp_path):
    from retain.features.contract import load_transactions

    path = tmp_path / "ozon.csv"
    path.write_text("customer_id,order_id,ts,amount,status\n"
                    "a,1,2026-01-05,100,Доставлен\na,2,2026-02-05,60,Доставлен\n"
                    "a,3,2026-02-07,900,Отменён\nb,4,2026-02-09,40,Отменен\n"
                    "a,2,2026-02-10,60,Возврат\n", encoding="utf-8")
    loaded = load_transactions(path)
    report = data_report(loaded.frame.drop("_row"), loaded.report, date(2026, 3, 1))
    assert (report.cancelled_lines, report.returned_lines) == (2, 1)
    # Order 2 returned in full nets to zero; b only cancelled: no purchase, no line left.
    assert (report.customers, report.orders, report.zero_orders, report.lines) == (1, 1, 1, 3)
    rows = dict(report_lines(report))
    assert rows["cancelled lines (status; left out, not purchases)"] == "2"
    assert rows["returned lines (status; read as refunds)"] == "1"
    assert report.to_dict()["cancelled_lines"] == 2
    plain = data_report(loaded.frame.drop("_row"), None, date(2026, 3, 1))
    assert not any(label.startswith("cancelled lines") for label, _ in report_lines(plain))


def test_a_reports_empty_rows_and_totals_row_are_counted_apart_from_its_lines(tmp_path):
    from retain.features.contract import load_transactions

    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\na,2026-01-01,10\n\nb,2026-01-02,5\na,2026-02-01,7\n"
                    "\nИтого,,22\n")
    loaded = load_transactions(path)
    report = data_report(loaded.frame.drop("_row"), loaded.report, date(2026, 3, 1))
    assert (report.rows_read, report.empty_rows, report.totals_rows) == (3, 2, 1)
    assert report.to_dict()["totals_rows"] == 1
    assert ("empty rows and totals rows (no data; left out)", "2 / 1") in report_lines(report)
