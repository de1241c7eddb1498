"""The one report (serving/report.py): each section from its frame, or saying honestly that
it is not measured; gains and reliability by hand; `retain report` as a user runs it; the page
in headless Chromium (no console error, no request but the file itself, every section there);
and /ui/report behind the marketers' sign-in."""

from __future__ import annotations

import json
import re
from datetime import date

import polars as pl
import pytest

from retain.analytics.cohorts import cohorts
from retain.models.pipeline import empty_scores
from retain.serving.report import (
    SECTIONS,
    ReportParts,
    build_report,
    drift_section,
    effect_section,
    gains_points,
    prediction_outcomes,
    reliability_points,
    render_report,
)
from retain.serving.store import ScoreStore
from tests.analytics.test_cohorts import AS_OF, SHOP, write_shop_csv

EXPORT_KEY, SCORE_KEY = "export-key-0123456789", "score-key-0123456789"
SECTION_IDS = [css_id for css_id, _ in SECTIONS]


def effect_frame() -> pl.DataFrame:
    """Two channels over two months as `retain effect --split channel` writes them: email
    clearly above zero, sms crossing it."""
    rows = []
    for split, month, diff, lo, hi in (("email", "2025-02", 40.0, 10.0, 70.0),
                                        ("email", "2025-03", 35.0, 5.0, 65.0),
                                        ("sms", "2025-02", 5.0, -20.0, 30.0),
                                        ("sms", "2025-03", -2.0, -30.0, 25.0)):
        for metric, scale in (("revenue", 1.0), ("orders", 0.01)):
            rows.append({"period": month, "split": split, "metric": metric,
                         "treated_customers": 100, "control_customers": 10,
                         "treated_mean": 100 + diff * scale, "control_mean": 100.0,
                         "difference": diff * scale, "ci_low": lo * scale, "ci_high": hi * scale,
                         "relative_lift": diff * scale / 100, "incremental_revenue":
                         diff * 100 if metric == "revenue" else None, "cost": 50.0,
                         "romi": (diff * 100 - 50) / 50 if metric == "revenue" else None})
    return pl.DataFrame(rows)


def drift_frame() -> pl.DataFrame:
    return pl.DataFrame({"name": ["clv_12m", "orders", "segment"],
                         "kind": ["score", "feature", "decision"], "psi": [0.31, 0.02, None],
                         "level": ["shifted", "stable", "new"], "customers": [3, 3, 3],
                         "reference_customers": [3, 3, None]})


def scores_frame(ids: list[str], as_of: date, **columns: list) -> pl.DataFrame:
    """A stored run's rows: these customers with the given score columns, the rest empty."""
    given = pl.DataFrame({"customer_id": ids, **columns})
    frame = pl.concat([empty_scores(), given], how="diagonal_relaxed")
    return frame.with_columns(pl.lit(as_of).alias("as_of"), pl.lit(30).alias("horizon_days"))


def fill_store(url: str) -> None:
    """A run on 2025-02-01 (30 days: judged by April) and one on 2025-04-01 with decisions."""
    with ScoreStore(url).open() as store:
        past = scores_frame(["A", "B", "C"], date(2025, 2, 1),
                            predicted_revenue=[50.0, 5.0, 100.0],
                            churn_probability=[0.2, 0.9, 0.1], clv_12m=[1.0, 2.0, 3.0])
        store.write_run(past, model_version="1", as_of=date(2025, 2, 1))
        now = scores_frame(["A", "B", "C", "D"], AS_OF, clv_12m=[100.0, 20.0, 30.0, 10.0],
                           predicted_revenue=[1.0, 1.0, 1.0, 1.0],
                           segment=["active-vip-hedonist", "lost-low-occasional",
                                    "active-high-stock_up", "new-mid-occasional"],
                           goal=["cross_sell", "win_back", "replenish", "onboard"],
                           channel=["email", None, "sms", "email"],
                           expected_incremental_revenue=[5.0, 0.0, 3.0, 1.0],
                           contact_cost=[0.5, 0.0, 3.0, 0.5])
        store.write_run(now, model_version="1", as_of=AS_OF)


# --- figures by hand -------------------------------------------------------------------------


def test_gains_run_from_nothing_to_all_the_revenue_best_predicted_first():
    outcomes = pl.DataFrame({"predicted_revenue": [9.0, 1.0, 5.0, 0.0],
                             "revenue_h": [60.0, 0.0, 40.0, -10.0]})
    points = gains_points(outcomes, points=4)
    assert points["x"].to_list() == [0.0, 0.25, 0.5, 0.75, 1.0]
    # The top quarter (predicted 9) brought 60 of 100; a refund counts as nothing.
    assert points["y"].to_list() == pytest.approx([0.0, 0.6, 1.0, 1.0, 1.0])


def test_reliability_bins_the_churn_probability_against_who_did_not_buy():
    outcomes = pl.DataFrame({"churn_probability": [0.05, 0.15, 0.91, 0.99, 0.95],
                             "bought": [True, True, False, False, True]})
    points = reliability_points(outcomes)
    assert points["bin"].to_list() == [0, 1, 9]
    assert points["x"].to_list() == pytest.approx([0.05, 0.15, (0.91 + 0.99 + 0.95) / 3])
    assert points["y"].to_list() == pytest.approx([0.0, 0.0, 2 / 3])
    assert points["customers"].to_list() == [1, 1, 3]


def test_a_past_runs_predictions_meet_what_happened_in_its_horizon():
    scores = scores_frame(["A", "B", "C"], date(2025, 2, 1), predicted_revenue=[1.0, 2.0, 3.0],
                          churn_probability=[0.1, 0.2, 0.3])
    outcomes = prediction_outcomes(scores, SHOP, date(2025, 2, 1), 30).sort("customer_id")
    # [Feb 1, Mar 3): A's March 2 order (70); B nothing; C 200 + 100 - 50.
    assert outcomes["revenue_h"].to_list() == [70.0, 0.0, 250.0]
    assert outcomes["bought"].to_list() == [True, False, True]


# --- sections ----------------------------------------------------------------------------------


def test_every_section_is_there_and_says_not_measured_when_its_data_is_missing():
    html = render_report(ReportParts(as_of=AS_OF))
    for css_id in SECTION_IDS:
        assert f'<section id="{css_id}">' in html
        assert f'data-missing="{css_id}"' in html
    assert "retain effect" in html and "<script" not in html
    ru = render_report(ReportParts(as_of=AS_OF), "ru")
    assert '<html lang="ru">' in ru and "Когорты по месяцу первой покупки" in ru


def test_the_effect_section_draws_each_channel_and_month_with_its_interval():
    html = effect_section(effect_frame(), "en")
    dots = re.findall(r'class="interval" data-group="(\w+)" data-period="([\d-]+)" '
                      r'data-estimate="([-\d.]+)"', html)
    # The revenue rows only: four dots, not eight.
    assert sorted((g, p, float(e)) for g, p, e in dots) == [
        ("email", "2025-02", 40.0), ("email", "2025-03", 35.0), ("sms", "2025-02", 5.0),
        ("sms", "2025-03", -2.0)]
    assert 'data-missing' not in html and "90%" in html


def test_churn_predicted_and_observed_is_drawn_per_judged_run_once_there_are_two():
    from retain.serving.report import calibration_chart

    runs = pl.DataFrame({"as_of": [date(2025, 1, 1), date(2025, 2, 1), date(2025, 2, 1)],
                         "decile": [0, 0, 3], "predicted_churn": [0.3, 0.4, 0.9],
                         "observed_churn": [0.35, 0.5, 0.1]})
    html = calibration_chart(runs, "en")
    series = dict(re.findall(r'class="series" data-series="([^"]+)" data-points="(\d+)"', html))
    assert series == {"predicted churn": "2", "observed churn": "2"}  # decile 0 rows only
    assert "2025-02-01" in html and "1970" not in html
    assert calibration_chart(runs.head(1), "en") == ""


def test_the_drift_section_shows_measured_columns_the_most_shifted_first():
    html = drift_section(drift_frame(), "en")
    keys = re.findall(r'class="bar" data-key="([^"]+)"', html)
    assert keys == ["clv_12m (shifted)", "orders (stable)"]
    assert 'data-missing="drift"' in drift_section(drift_frame().head(0), "en")


def test_a_report_of_a_shop_and_its_store_fills_every_section(tmp_path):
    url = f"sqlite:///{tmp_path / 'retain.db'}"
    fill_store(url)
    costs = pl.DataFrame({"acquisition_channel": ["web", "app"],
                          "month": [date(2025, 1, 1)] * 2, "spend": [50.0, 40.0]})
    with ScoreStore(url).open() as store:
        parts = build_report(AS_OF, SHOP, costs=costs, store=store, effect=effect_frame(),
                             drift=drift_frame())
    assert parts.run is not None and parts.run["as_of"] == AS_OF
    assert parts.outcome_run is not None and parts.outcome_run["as_of"] == date(2025, 2, 1)
    expected = cohorts(SHOP, AS_OF, "channel", costs=costs,
                       scores=pl.DataFrame({"customer_id": ["A", "B", "C", "D"],
                                            "clv_12m": [100.0, 20.0, 30.0, 10.0]}))
    assert parts.channel_cohorts is not None
    assert parts.channel_cohorts.summary.equals(expected.summary)
    html = render_report(parts)
    assert "data-missing" not in html
    for chart in ("chart-cohorts", "chart-ltv", "chart-unit", "chart-gains", "chart-reliability",
                  "chart-effect", "chart-drift", "chart-segments"):
        assert f'id="{chart}"' in html
    assert "LTV/CAC" in html


# --- retain report ---------------------------------------------------------------------------


def test_retain_report_writes_one_html_file_from_the_shop_and_the_store(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from retain.cli import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    shop, costs = write_shop_csv(tmp_path)
    url = f"sqlite:///{tmp_path / 'retain.db'}"
    fill_store(url)
    effect = tmp_path / "effect.csv"
    effect_frame().write_csv(effect)
    out = tmp_path / "out" / "report.html"
    done = CliRunner().invoke(app, ["report", "--as-of", "2025-04-01", "--out", str(out),
                                    "--transactions", shop, "--costs", costs, "--effect",
                                    str(effect), "--store-url", url, "--lang", "ru"])
    assert done.exit_code == 0, done.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="ru">' in html
    assert 'data-missing="effect"' not in html and 'data-missing="drift"' in html
    assert "gains/reliability" in done.output and "effect" in done.output
    bad = tmp_path / "bad.csv"
    bad.write_text("period,split\n2025-01,email\n", encoding="utf-8")
    wrong = CliRunner().invoke(app, ["report", "--as-of", "2025-04-01", "--out", str(out),
                                     "--effect", str(bad), "--store-url", url])
    assert wrong.exit_code == 1 and "missing column(s) metric" in wrong.output
    # A costs file given as the effect: its missing columns are named, not a parse error.
    wrong = CliRunner().invoke(app, ["report", "--as-of", "2025-04-01", "--out", str(out),
                                     "--effect", costs, "--store-url", url])
    flat = " ".join(wrong.output.split())
    assert wrong.exit_code == 1 and "cannot be read" not in flat
    assert "missing column(s) period, split, metric, difference, ci_low, ci_high" in flat


# --- in a browser ----------------------------------------------------------------------------


def test_the_report_renders_in_chromium_with_no_error_and_no_request(chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.processes import launch_chromium

    url = f"sqlite:///{tmp_path / 'retain.db'}"
    fill_store(url)
    with ScoreStore(url).open() as store:
        parts = build_report(AS_OF, SHOP, store=store, effect=effect_frame(), drift=drift_frame(),
                             costs=pl.DataFrame({"acquisition_channel": ["web", "app"],
                                                 "month": [date(2025, 1, 1)] * 2,
                                                 "spend": [50.0, 40.0]}))
    path = tmp_path / "report.html"
    path.write_text(render_report(parts), encoding="utf-8")
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium_path)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_selector("#segments svg")
            assert errors == []
            assert requests == [path.as_uri()]  # no CDN, no font, no image from anywhere
            for css_id in SECTION_IDS:
                assert page.locator(f"section#{css_id} h2").is_visible()
                assert page.locator(f"section#{css_id} svg").count() >= 1, css_id
            # Each chart is drawn at a real size (not collapsed by the page's CSS).
            box = page.locator("#chart-cohorts").bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 80
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()


# --- /ui/report --------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from retain.config import Settings
    from retain.serving.main import create_app

    def missing(alias: str) -> str:
        raise LookupError("no model (stubbed in tests)")

    monkeypatch.setattr("retain.serving.deps.alias_version", missing)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    shop, costs = write_shop_csv(tmp_path)
    url = f"sqlite:///{tmp_path / 'retain.db'}"
    fill_store(url)
    settings = Settings(api_keys=json.dumps({EXPORT_KEY: ["export"], SCORE_KEY: ["score"]}),
                        store_url=url, reload_interval=0, transactions=shop, costs=costs)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def test_ui_report_needs_a_signed_in_export_key_and_serves_the_report(served):
    refused = served.get("/ui/report")
    assert refused.status_code == 401 and 'id="api_key"' in refused.text
    served.post("/ui/login", data={"api_key": SCORE_KEY})  # no export scope: no session
    assert served.get("/ui/report").status_code == 401
    assert served.post("/ui/login", data={"api_key": EXPORT_KEY}).status_code == 303
    page = served.get("/ui/report")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert "script-src" not in policy
    # The latest run's date by default; the shop's cohorts and the costs' LTV/CAC are there.
    assert "as of 2025-04-01" in page.text and 'id="chart-cohorts"' in page.text
    assert 'data-missing="unit"' not in page.text and "LTV/CAC" in page.text
    assert 'data-missing="effect"' in page.text  # no contacts configured
    assert '<a class="home" href="/ui">' in page.text
    ru = served.get("/ui/report?lang=ru&as_of=2025-03-01")
    assert ru.status_code == 200 and "Удержание: итоги на 2025-03-01" in ru.text
    bad = served.get("/ui/report?as_of=someday")
    assert bad.status_code == 400 and "Traceback" not in bad.text


def test_without_contacts_the_report_shows_the_effect_the_store_keeps(tmp_path):
    from retain.serving.effect_store import write_effect

    url = f"sqlite:///{tmp_path / 'retain.db'}"
    fill_store(url)
    with ScoreStore(url).open() as store:
        write_effect(store, effect_frame(), date_from=date(2025, 2, 1), date_to=date(2025, 4, 1),
                     by="month", split="channel")
        parts = build_report(AS_OF, SHOP, store=store)
        later = build_report(date(2025, 3, 1), SHOP, store=store)  # measured after that date
    assert parts.effect is not None and parts.effect.height == effect_frame().height
    assert 'data-group="sms"' in render_report(parts)
    assert later.effect is None


def test_the_reports_effect_rows_are_retain_effects_with_its_margin_and_seed():
    """The report measures the effect as `retain effect --split channel` does (the rules'
    margin for ROMI, the same seed and resamples), and a month's interval does not depend on
    which other months one call measured: the report's six months and `--from` that month
    alone give the same row."""
    from retain.analytics.effect import measure_effect
    from retain.decisions.rules import load_rules
    from retain.simulate import simulate_shop

    shop = simulate_shop(600, seed=4, as_of=date(2026, 7, 1), history_days=400,
                         future_days=90)
    rules = load_rules(None)
    parts = build_report(date(2026, 7, 1), shop.transactions, contacts=shop.contacts,
                         rules=rules)
    cli = measure_effect(shop.transactions, shop.contacts, date(2026, 1, 1), date(2026, 7, 1),
                         by="month", split="channel", margin=rules.offers.margin,
                         response_days=rules.channels.response_days)
    assert parts.effect is not None and parts.effect.height > 0
    assert parts.effect.equals(cli)
    revenue = cli.filter(pl.col("metric") == "revenue", pl.col("cost") > 0).row(0, named=True)
    assert revenue["romi"] == pytest.approx(
        (revenue["incremental_revenue"] * rules.offers.margin - revenue["cost"])
        / revenue["cost"])
    june = measure_effect(shop.transactions, shop.contacts, date(2026, 6, 1), date(2026, 7, 1),
                          by="month", split="channel", margin=rules.offers.margin)
    assert june.equals(parts.effect.filter(pl.col("period") == "2026-06"))


def test_ui_report_without_a_run_is_as_of_the_day_after_the_data_and_says_a_date_before_it(
        tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from retain.config import Settings
    from retain.serving.main import create_app

    monkeypatch.setattr("retain.serving.deps.alias_version",
                        lambda alias: (_ for _ in ()).throw(LookupError("no model")))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    shop, _ = write_shop_csv(tmp_path)  # the last line is on 2025-04-01
    settings = Settings(api_keys=json.dumps({EXPORT_KEY: ["export"]}), reload_interval=0,
                        store_url=f"sqlite:///{tmp_path / 'empty.db'}", transactions=shop)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        client.post("/ui/login", data={"api_key": EXPORT_KEY})
        page = client.get("/ui/report")
        early = client.get("/ui/report?as_of=2020-01-01")
    assert page.status_code == 200 and "as of 2025-04-02" in page.text
    assert 'id="chart-cohorts"' in page.text
    assert early.status_code == 200 and "before the first transaction" in early.text
    assert "no transactions were given" not in early.text


def test_the_unit_economics_section_says_which_costs_matched_no_customer():
    costs = pl.DataFrame({"acquisition_channel": ["web", "facebook"],
                          "month": [date(2025, 1, 1), date(2025, 1, 1)], "spend": [50.0, 70.0]})
    html = render_report(build_report(AS_OF, SHOP, costs=costs))
    unit = html[html.index('<section id="unit">'):]
    unit = unit[:unit.index("</section>")]
    assert 'data-note="costs"' in unit and "facebook" in unit and "spend 70" in unit
    plain = render_report(build_report(AS_OF, SHOP, costs=costs.head(1)))
    assert 'data-note="costs"' not in plain
    russian = render_report(build_report(AS_OF, SHOP, costs=costs), lang="ru")
    russian = russian[russian.index('<section id="unit">'):]
    note = russian[russian.index('data-note="costs"'):]
    note = note[:note.index("</p>")]
    assert "Каналы из файла затрат" in note and "facebook" in note and "затраты 70" in note
    assert "spend" not in note


def _model_plots(html: str) -> str:
    """What the model section draws: its SVG charts and any picture."""
    section = html[html.index('<section id="model">'):]
    section = section[:section.index("</section>")]
    return " ".join(re.findall(r"<svg.*?</svg>|<img[^>]*>", section, re.DOTALL))


BACKTEST_WORDS = ("report.gains_title", "report.gains_x", "report.gains_y", "report.random",
                  "report.reliability_title", "report.reliability_x", "report.reliability_y",
                  "report.formula")
# What the PNGs of `retain train` say (training/plots.py): none of it in a Russian report.
PNG_WORDS = ("Gains (backtest)", "Reliability (backtest)", "share of customers",
             "share of horizon revenue", "observed churn rate", "predicted churn probability",
             "perfect", "random", "AOV x frequency x lifetime")


def test_a_russian_report_draws_the_registered_models_backtest_in_russian(tracking):
    """The registered model's backtest, read back from the registry as `retain report` reads
    it, drawn with the report's own words: titles, axes and legends in Russian, no English."""
    from retain.serving.report import registered_backtest
    from retain.serving.ui_text import text

    version, images, points = registered_backtest()
    assert version == tracking.trained.version and set(images) == {"gains", "reliability"}
    assert points is not None and set(points["chart"]) == {"gains", "reliability"}
    assert {"retain", "bgnbd_gg", "formula", "random"} <= set(points["series"])
    parts = ReportParts(as_of=AS_OF, model_version=version, backtest_images=images,
                        backtest_points=points)
    russian = _model_plots(render_report(parts, "ru"))
    english = _model_plots(render_report(parts, "en"))
    assert "<img" not in russian and russian.count("<svg") == 2
    for key in BACKTEST_WORDS:
        assert text(key, "ru") in russian, key
        assert text(key, "en") in english, key
        assert text(key, "en") not in russian, key
    for words in PNG_WORDS:
        assert words not in russian, words
    assert not re.search(r">[^<]*[A-Za-z]{4,}[^<]*<", russian.replace("Gains", "")
                         .replace("retain", "").replace("BG/NBD", "")), \
        "an English word in the Russian plots"


def test_a_model_trained_before_the_points_were_kept_shows_its_pngs_and_says_why():
    from retain.serving.ui_text import text

    parts = ReportParts(as_of=AS_OF, model_version="3",
                        backtest_images={"gains": b"\x89PNG", "reliability": b"\x89PNG"})
    russian = render_report(parts, "ru")
    assert _model_plots(russian).count("<img") == 2
    assert text("report.backtest_images_en", "ru") in russian
    assert text("report.backtest_images_en", "en") not in render_report(parts, "en")


def test_the_effect_table_reads_as_the_cli_measured_beside_estimate_and_a_dash_for_no_interval():
    frame = effect_frame().with_columns(
        pl.when(pl.col("split") == "sms").then(None).otherwise(pl.col("ci_low")).alias("ci_low"),
        pl.when(pl.col("split") == "sms").then(None).otherwise(pl.col("ci_high")).alias("ci_high"),
        # CUPED's estimate moved off the measured difference (treated_mean - control_mean)
        (pl.col("difference") + 1.5).alias("difference"))
    html = effect_section(frame, "ru")
    table = html[html.index("<table"):]
    cells = [re.findall(r"<td>([^<]*)</td>", row)
             for row in re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>"):])]
    heads = re.findall(r"<th>([^<]*)</th>", table)
    assert heads[:5] == ["Период", "Канал", "Разница: измерено", "Разница: оценка (CUPED)",
                         "Интервал"]
    assert cells[0][:5] == ["2025-02", "email", "40.00", "41.50", "10.00 … 70.00"]
    assert cells[2][:5] == ["2025-02", "sms", "5.00", "6.50", "—"]
    assert "None" not in html and "выручка на клиента" in html
    keys = re.findall(r'class="bar" data-key="([^"]+)"', drift_section(drift_frame(), "ru"))
    assert keys == ["clv_12m (сдвиг)", "orders (стабильно)"]


def test_stable_drift_draws_short_bars_scaled_to_where_shifted_begins():
    from retain.analytics.drift import SHIFTED
    from retain.serving.report import PSI_SHIFTED

    frame = pl.DataFrame({"name": ["segment", "orders"], "kind": ["decision", "feature"],
                          "psi": [0.0004, 0.0001], "level": ["stable", "stable"]})
    widths = [float(w) for w in re.findall(r'<g class="bar".*?<rect [^>]*width="([\d.]+)"',
                                             drift_section(frame, "en"))]
    # A PSI of 0.0004 is 0.16% of the way to "shifted": the thinnest bar, not a full one.
    assert widths == [1.0, 1.0] and PSI_SHIFTED == SHIFTED
    shifted = frame.with_columns(pl.Series("psi", [0.5, 0.125]))
    wide = [float(w) for w in re.findall(r'<g class="bar".*?<rect [^>]*width="([\d.]+)"',
                                           drift_section(shifted, "en"))]
    assert wide[0] == pytest.approx(4 * wide[1], rel=0.01)
