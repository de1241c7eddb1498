"""Cohorts and unit economics on hand-computed shops (analytics/cohorts.py), the costs file's
contract, and `retain cohorts` as a user runs it."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from retain.analytics.cohorts import CURVE_SCHEMA, SUMMARY_SCHEMA, UNKNOWN, cohorts, load_costs
from retain.features.contract import DataError

AS_OF = date(2025, 4, 1)


def tx(rows: list[tuple]) -> pl.DataFrame:
    """(customer, order, 'YYYY-MM-DD', amount, channel) lines, contract-typed."""
    return pl.DataFrame(
        {"customer_id": [r[0] for r in rows], "order_id": [r[1] for r in rows],
         "ts": [datetime.fromisoformat(r[2]) for r in rows],
         "amount": [float(r[3]) for r in rows], "product_id": ["P1"] * len(rows),
         "quantity": [1.0 if r[3] >= 0 else -1.0 for r in rows],
         "channel": [r[4] for r in rows]},
        schema={"customer_id": pl.String, "order_id": pl.String, "ts": pl.Datetime("us"),
                "amount": pl.Float64, "product_id": pl.String, "quantity": pl.Float64,
                "channel": pl.String})


# January: A (3 orders, one of them partly refunded in its own order), B (1 order).
# February: C (2 orders), D (first a cancellation invoice, then 1 order in March: a March
# customer), E (a refund only: never a purchase, in no cohort). A line on the as-of date is
# outside the window.
SHOP = tx([
    ("A", "o1", "2025-01-05", 100, "web"),
    ("A", "o2", "2025-01-20", 50, "web"),
    ("A", "o2", "2025-01-20", -20, "web"),   # a returned line netted in its order: 30
    ("A", "o3", "2025-03-02", 70, "app"),
    ("B", "o4", "2025-01-31", 40, "app"),
    ("C", "o5", "2025-02-10", 200, "app"),
    ("C", "o6", "2025-02-11", 100, "app"),
    ("C", "c6", "2025-02-12", -50, "app"),   # a cancellation invoice: revenue, not an order
    ("D", "c7", "2025-02-15", -10, None),
    ("D", "o8", "2025-03-15", 60, None),
    ("E", "c9", "2025-03-01", -5, "web"),
    ("A", "o10", "2025-04-01", 999, "web"),  # on the as-of date: not used
])


def test_month_cohorts_count_repeat_rate_aov_and_revenue_by_hand():
    result = cohorts(SHOP, AS_OF, by="month")
    assert result.summary.schema == pl.Schema(SUMMARY_SCHEMA)
    rows = {r["cohort"]: r for r in result.summary.iter_rows(named=True)}
    assert list(rows) == ["2025-01", "2025-02", "2025-03"]
    jan, feb, mar = rows["2025-01"], rows["2025-02"], rows["2025-03"]
    assert (jan["customers"], jan["repeat_customers"], jan["repeat_rate"]) == (2, 1, 0.5)
    # Purchases 100, 30, 70 (A) and 40 (B): AOV 240 / 4.
    assert jan["orders"] == 4 and jan["aov"] == pytest.approx(60.0)
    assert jan["first_order_value"] == pytest.approx((100 + 40) / 2)
    assert jan["revenue"] == pytest.approx(240.0) and jan["revenue_per_customer"] == 120.0
    # C: purchases 200 and 100, a cancellation of 50 in revenue only.
    assert (feb["customers"], feb["repeat_rate"], feb["orders"]) == (1, 1.0, 2)
    assert feb["aov"] == pytest.approx(150.0) and feb["revenue"] == pytest.approx(250.0)
    # D's earlier cancellation counts in D's revenue; E, who never bought, is nowhere.
    assert (mar["customers"], mar["orders"], mar["revenue"]) == (1, 1, pytest.approx(50.0))
    assert result.summary["customers"].sum() == 4
    assert result.summary["cac"].is_null().all() and result.summary["predicted_clv_12m"].is_null().all()


def test_month_cohort_curves_are_cumulative_revenue_per_customer_by_month_since_first():
    curves = cohorts(SHOP, AS_OF, by="month").curves
    assert curves.schema == pl.Schema(CURVE_SCHEMA)
    jan = curves.filter(pl.col("cohort") == "2025-01")
    # Month 0: 100 + 30 + 40; month 1 (February): nothing; month 2 (March): A's 70.
    assert jan["month"].to_list() == [0, 1, 2]
    assert jan["customers"].to_list() == [2, 2, 2]
    assert jan["revenue"].to_list() == pytest.approx([170.0, 0.0, 70.0])
    assert jan["cumulative_revenue_per_customer"].to_list() == pytest.approx([85.0, 85.0, 120.0])
    assert jan["buyers"].to_list() == [2, 0, 1]
    assert jan["active_share"].to_list() == pytest.approx([1.0, 0.0, 0.5])
    assert jan["complete"].all()
    feb = curves.filter(pl.col("cohort") == "2025-02")
    assert feb["cumulative_revenue_per_customer"].to_list() == pytest.approx([250.0, 250.0])


def test_a_month_cohorts_current_month_is_shown_and_marked_incomplete():
    curves = cohorts(SHOP, date(2025, 3, 20), by="month").curves
    jan = curves.filter(pl.col("cohort") == "2025-01")
    assert jan["month"].to_list() == [0, 1, 2]
    assert jan["complete"].to_list() == [True, True, False]


def test_channel_cohorts_follow_the_first_purchase_channel_or_the_customers_table():
    by_order = cohorts(SHOP, AS_OF, by="channel")
    assert by_order.channel_source == "the first purchase's channel"
    sizes = dict(by_order.summary.select("cohort", "customers").iter_rows())
    assert sizes == {"app": 2, "web": 1, UNKNOWN: 1}  # B, C by app; A by web; D none
    customers = pl.DataFrame({"customer_id": ["A", "B", "C", "D"],
                              "acquisition_channel": ["SEO", "seo", "Paid_Search", None]})
    by_table = cohorts(SHOP, AS_OF, by="channel", customers=customers)
    assert by_table.channel_source == "customers.acquisition_channel"
    sizes = dict(by_table.summary.select("cohort", "customers").iter_rows())
    assert sizes == {"seo": 2, "paid_search": 1, UNKNOWN: 1}


def test_channel_curves_count_each_month_only_for_customers_observed_that_long():
    customers = pl.DataFrame({"customer_id": ["A", "C", "B", "D"],
                              "acquisition_channel": ["seo", "seo", "ads", "ads"]})
    curves = cohorts(SHOP, AS_OF, by="channel", customers=customers).curves
    seo = curves.filter(pl.col("cohort") == "seo")
    # A (January) is seen for months 0-2, C (February) for months 0-1.
    assert seo["customers"].to_list() == [2, 2, 1]
    assert seo["cumulative_revenue_per_customer"].to_list() == pytest.approx(
        [(130 + 250) / 2, (130 + 250) / 2, 200.0])


def test_ltv_cac_per_channel_divides_the_spend_by_the_customers_acquired_in_its_months():
    customers = pl.DataFrame({"customer_id": ["A", "B", "C", "D"],
                              "acquisition_channel": ["seo", "seo", "seo", "ads"]})
    costs = pl.DataFrame({"acquisition_channel": ["seo", "SEO", "ads", "ads"],
                          "month": [date(2025, 1, 1), date(2025, 1, 1), date(2025, 3, 1),
                                    date(2025, 4, 1)],  # April: after the as-of date
                          "spend": [30.0, 30.0, 25.0, 1000.0]})
    scores = pl.DataFrame({"customer_id": ["A", "B", "D"], "clv_12m": [100.0, 20.0, 10.0]})
    result = cohorts(SHOP, AS_OF, by="channel", customers=customers, costs=costs, scores=scores)
    rows = {r["cohort"]: r for r in result.summary.iter_rows(named=True)}
    seo, ads = rows["seo"], rows["ads"]
    # seo spent 60 in January and acquired A and B then (C came in February, unpaid for).
    assert (seo["spend"], seo["acquired"], seo["cac"]) == (60.0, 2, 30.0)
    assert seo["predicted_clv_12m"] == pytest.approx(60.0) and seo["scored_customers"] == 2
    # LTV of the customers the spend acquired (A and B, not C of an unpaid month): revenue so
    # far (200 + 40) / 2 plus their mean predicted CLV (100 + 20) / 2; the cohort's revenue
    # per customer still counts C.
    assert seo["revenue_per_customer"] == pytest.approx(490 / 3)
    assert seo["ltv"] == pytest.approx(240 / 2 + 60.0)
    assert seo["ltv_cac"] == pytest.approx((240 / 2 + 60.0) / 30.0)
    assert (ads["spend"], ads["acquired"], ads["cac"]) == (25.0, 1, 25.0)
    assert ads["ltv_cac"] == pytest.approx((50.0 + 10.0) / 25.0)


def test_month_cohorts_cac_is_that_months_spend_over_its_new_customers():
    costs = pl.DataFrame({"acquisition_channel": ["seo", "ads", "ads"],
                          "month": [date(2025, 1, 1), date(2025, 1, 1), date(2025, 2, 1)],
                          "spend": [50.0, 30.0, 999.0]})
    rows = {r["cohort"]: r for r in cohorts(SHOP, AS_OF, costs=costs).summary.iter_rows(named=True)}
    assert rows["2025-01"]["cac"] == 40.0 and rows["2025-02"]["cac"] == 999.0
    assert rows["2025-03"]["spend"] is None and rows["2025-03"]["cac"] is None


def test_a_shop_with_no_purchase_has_empty_cohorts():
    result = cohorts(tx([("E", "c1", "2025-01-01", -5, None)]), AS_OF)
    assert result.summary.height == 0 and result.curves.height == 0


def test_the_costs_file_reads_months_and_spend_as_people_write_them(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_text("acquisition_channel;month;spend\nseo;2025-01;1 234,50\n"
                    "ads;01.02.2025;10\nads;2025-03-15;0\n", encoding="utf-8")
    frame = load_costs(path).frame
    assert frame["month"].to_list() == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert frame["spend"].to_list() == [1234.5, 10.0, 0.0]
    # As a Russian or English Excel shows a month cell, with a currency-formatted spend.
    path.write_text("acquisition_channel;month;spend\nseo;янв.25;20 000 ₽\nseo;Февраль 2025;5\n"
                    "ads;мая 2025;1\nads;Jun-25;2\nads;December 2025;3\n", encoding="utf-8")
    frame = load_costs(path).frame
    assert frame["month"].to_list() == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 5, 1),
                                        date(2025, 6, 1), date(2025, 12, 1)]
    assert frame["spend"].to_list() == [20000.0, 5.0, 1.0, 2.0, 3.0]


def test_bad_costs_rows_are_one_error_naming_the_file_column_and_lines(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_text("acquisition_channel,month,spend\nseo,2025-01,10\n,2025-02,5\n"
                    "ads,someday,5\nads,2025-03,-3\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_costs(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 bad row(s)")
    assert "column 'acquisition_channel': missing channel at lines 3" in message
    assert "column 'month': unparseable month (expected e.g. 2025-03) at lines 4" in message
    assert "column 'spend': negative spend at lines 5" in message
    missing = tmp_path / "nospend.csv"
    missing.write_text("acquisition_channel,month\nseo,2025-01\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing column\(s\) 'spend'"):
        load_costs(missing)


# --- retain cohorts -------------------------------------------------------------------------


def write_shop_csv(tmp_path) -> tuple[str, str]:
    lines = ["customer_id,order_id,ts,amount,channel"]
    for row in SHOP.iter_rows(named=True):
        lines.append(f"{row['customer_id']},{row['order_id']},{row['ts']:%Y-%m-%d},"
                     f"{row['amount']},{row['channel'] or ''}")
    shop = tmp_path / "tx.csv"
    shop.write_text("\n".join(lines) + "\n", encoding="utf-8")
    costs = tmp_path / "costs.csv"
    costs.write_text("acquisition_channel,month,spend\nweb,2025-01,50\napp,2025-01,40\n"
                     "app,2025-02,20\n", encoding="utf-8")
    return str(shop), str(costs)


def test_retain_cohorts_writes_the_summary_and_the_curves_and_prints_ltv_cac(tmp_path,
                                                                           monkeypatch):
    from typer.testing import CliRunner

    from retain.cli import app

    monkeypatch.chdir(tmp_path)  # no score store here: cohorts without predicted CLV
    shop, costs = write_shop_csv(tmp_path)
    out = tmp_path / "out" / "cohorts.csv"
    done = CliRunner().invoke(app, ["cohorts", "--transactions", shop, "--as-of", "2025-04-01",
                                    "--by", "channel", "--costs", costs, "--out", str(out)],
                              env={"COLUMNS": "120"})
    assert done.exit_code == 0, done.output
    summary = pl.read_csv(out)
    rows = {r["cohort"]: r for r in summary.iter_rows(named=True)}
    # app: B (January) and C (February) for 40 + 20; web: A (January) for 50.
    assert rows["app"]["cac"] == 30.0 and rows["web"]["cac"] == 50.0
    assert rows["web"]["ltv_cac"] == pytest.approx((100 + 30 + 70) / 50)
    curves = pl.read_csv(out.with_name("cohorts.curves.csv"))
    assert set(curves["cohort"]) == {"app", "web", UNKNOWN}
    assert "LTV/CAC" in done.output and "no scoring run" in done.output


def test_retain_cohorts_reads_the_predicted_clv_of_the_latest_run_as_of_the_date(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app
    from retain.models.pipeline import empty_scores
    from retain.serving.store import ScoreStore

    shop, _ = write_shop_csv(tmp_path)
    url = f"sqlite:///{tmp_path / 'retain.db'}"
    base = empty_scores()
    with ScoreStore(url).open() as store:
        for day, clv in ((date(2025, 3, 1), 10.0), (date(2025, 4, 1), 30.0),
                         (date(2025, 5, 1), 999.0)):  # the last is after the date: unused
            scores = pl.DataFrame({"customer_id": ["A", "B"], "clv_12m": [clv, clv + 10]},
                                  schema_overrides={"clv_12m": pl.Float64})
            scores = pl.concat([base, scores], how="diagonal_relaxed")
            store.write_run(scores.with_columns(pl.lit(day).alias("as_of")),
                            model_version="1", as_of=day)
    out = tmp_path / "c.csv"
    done = CliRunner().invoke(app, ["cohorts", "--transactions", shop, "--as-of", "2025-04-01",
                                    "--store-url", url, "--out", str(out)])
    assert done.exit_code == 0, done.output
    jan = pl.read_csv(out).filter(pl.col("cohort") == "2025-01").row(0, named=True)
    assert jan["predicted_clv_12m"] == 35.0 and jan["scored_customers"] == 2
    assert "scoring run of 2025-04-01" in done.output


def test_retain_cohorts_bad_inputs_are_one_error_line(tmp_path):
    from typer.testing import CliRunner

    from retain.cli import app

    shop, _ = write_shop_csv(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("acquisition_channel,month,spend\nweb,2025-13,5\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["cohorts", "--transactions", shop, "--costs", str(bad),
                               "--out", str(tmp_path / "c.csv")])
    assert done.exit_code == 1 and "Traceback" not in done.output
    assert f"error: {bad}: 1 bad row(s)" in done.output and "column 'month'" in done.output
    wrong = runner.invoke(app, ["cohorts", "--transactions", shop, "--by", "week"])
    assert wrong.exit_code == 1 and "--by: expected month or channel" in wrong.output


def test_costs_rows_no_customer_matches_are_said_once_per_channel_and_per_month(tmp_path,
                                                                               monkeypatch):
    from typer.testing import CliRunner

    from retain.analytics.cohorts import costs_notes
    from retain.cli import app

    costs = pl.DataFrame({"acquisition_channel": ["web", "app", "facebook", "facebook", "web"],
                          "month": [date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 1),
                                    date(2025, 2, 1), date(2025, 3, 1)],
                          "spend": [50.0, 40.0, 100.0, 100.0, 30.0]})
    result = cohorts(SHOP, AS_OF, by="channel", costs=costs)
    unmatched = result.unmatched_costs
    assert unmatched is not None
    assert unmatched.select("acquisition_channel", "month", "unmatched").rows() == [
        ("facebook", "2025-01", "channel"), ("facebook", "2025-02", "channel"),
        ("web", "2025-03", "month")]  # web acquired A in January only
    notes = costs_notes(unmatched)
    assert len(notes) == 2
    assert notes[0].startswith("1 channel of the costs file") and "facebook" in notes[0]
    assert "spend 200 over 2 months" in notes[0]
    assert notes[1].startswith("1 month of the costs file") and "web 2025-03" in notes[1]
    assert "facebook" not in set(result.summary["cohort"])
    # Month cohorts: a month of spend with nobody first buying in it.
    late = pl.DataFrame({"acquisition_channel": ["web"], "month": [date(2024, 12, 1)],
                         "spend": [10.0]})
    assert costs_notes(cohorts(SHOP, AS_OF, costs=late).unmatched_costs) == [
        ("1 month of the costs file had spend and no customer acquired: 2024-12; spend 10 "
         "left out (no cohort to divide it by)")]
    assert costs_notes(cohorts(SHOP, AS_OF).unmatched_costs) == []

    monkeypatch.chdir(tmp_path)
    shop, _ = write_shop_csv(tmp_path)
    path = tmp_path / "costs_fb.csv"
    costs.write_csv(path)
    done = CliRunner().invoke(app, ["cohorts", "--transactions", shop, "--as-of", "2025-04-01",
                                    "--by", "channel", "--costs", str(path)],
                              env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert done.output.count("of the costs file") == 2 and "facebook" in done.output


def test_retain_cohorts_says_one_cohort_in_the_singular(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from retain.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.csv").write_text("customer_id,order_id,ts,amount\nA,1,2025-01-05,10\n"
                                      "A,2,2025-02-05,20\n", encoding="utf-8")
    done = CliRunner().invoke(app, ["cohorts", "--transactions", "one.csv", "--as-of",
                                    "2025-04-01", "--by", "channel"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "1 customer in 1 cohort;" in done.output


def test_a_costs_reports_title_and_totals_row_are_left_out_and_said(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_text("Затраты на привлечение за 2025 год;;\n"
                    "acquisition_channel;month;spend\nseo;2025-01;100\nads;2025-01;50\n\n"
                    "Итого;;150\n")
    loaded = load_costs(path)
    assert loaded.frame["spend"].sum() == 150.0 and loaded.frame.height == 2
    notes = loaded.report.notes()
    assert any("1 line(s) above the header skipped" in n for n in notes), notes
    assert any("1 totals row(s) skipped (line 6: 'Итого')" in n for n in notes), notes
