"""The marketers' pages at /ui: sign-in with an API key, the segment x goal x channel matrix of the
latest run with filters and CSV downloads, the model at a glance and a customer look-up; through
TestClient, then in a real Chromium against a real uvicorn server.

No model is trained here: the registry look-up is stubbed to fail (the pages must work without a
model), and a stand-in ServedModel is put on the holder where the model summary is tested.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import random
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import openpyxl
import polars as pl
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retain.config import Settings
from retain.decisions.decide import DECISION_SCHEMA
from retain.decisions.segments import BEHAVIOUR_TYPES, LIFECYCLE_STAGES, VALUE_TIERS
from retain.models.pipeline import SCORE_COLUMNS, empty_scores
from retain.models.registry import RegisteredPipeline
from retain.serving.deps import ServedModel
from retain.serving.main import create_app
from retain.serving.routes import ui
from retain.serving.store import ScoreStore
from tests.processes import launch_chromium, serve_in_thread
from tests.serving.conftest import EXPORT_KEY, SCORE_KEY

AS_OF = date(2026, 7, 1)
BOM = "\ufeff"
REASON_RU = "Давно не покупал(а) — напомнить о любимом творожке «Простоквашино»"
# (segment, goal, channel, customers): 12 customers in 4 cells, one without a channel.
CELLS = [
    ("active-high-hedonist", "cross_sell", "email", 4),
    ("sleeping-mid-occasional", "reactivate", "sms", 3),
    ("lost-low-occasional", "none", None, 3),
    ("at_risk-vip-stock_up", "reactivate", "telegram", 2),
]
METRICS = {
    "backtest.churn.retain.auc": 0.81, "backtest.churn.recency_rule.auc": 0.70,
    "backtest.churn.bgnbd_p_no_order.auc": 0.74, "backtest.value.retain.spearman": 0.62,
    "backtest.value.bgnbd_gg_revenue.spearman": 0.55, "backtest.timing.retain.mae_days": 21.5,
    "backtest.timing.median_interval.mae_days": 19.0, "training.rows": 1000.0,
    # The choice's paired bootstrap (positive = retain better): churn better beyond noise,
    # revenue +0.07 yet within noise (a tie), timing worse.
    "choice.churn": 2.0, "vs_baseline.churn.diff": 0.07, "vs_baseline.churn.lo": 0.03,
    "vs_baseline.churn.hi": 0.11, "vs_baseline.churn.alternative_value": 0.74,
    "choice.value": 2.0, "vs_baseline.value.diff": 0.07, "vs_baseline.value.lo": -0.01,
    "vs_baseline.value.hi": 0.15, "vs_baseline.value.alternative_value": 0.55,
    "choice.timing": 0.0, "vs_baseline.timing.diff": -2.5, "vs_baseline.timing.lo": -3.5,
    "vs_baseline.timing.hi": -1.5, "vs_baseline.timing.alternative_value": 19.0,
}


def ui_scores() -> pl.DataFrame:
    """Scores and decisions of 12 customers C000001.. in the cells of CELLS; every reason in
    Russian, and customer-specific so rows can be told apart."""
    rows = []
    n = 0
    for segment, goal, channel, count in CELLS:
        stage, tier, behaviour = segment.split("-")
        for _ in range(count):
            n += 1
            rows.append({
                "customer_id": f"C{n:06d}", "as_of": AS_OF, "horizon_days": 90,
                "p_alive": 1 - n / 20, "churn_probability": n / 20, "expected_orders": n / 4,
                "predicted_revenue": 100.0 * n + 0.25, "clv_12m": 400.0 * n,
                "next_order_date": AS_OF + timedelta(days=n),
                "next_order_p10": AS_OF + timedelta(days=n // 2),
                "next_order_p90": AS_OF + timedelta(days=2 * n),
                "overdue_days": float(n % 5), "due_product_id": f"P{n}" if n % 2 else None,
                "due_product_date": AS_OF + timedelta(days=n) if n % 2 else None,
                "score_source": "gbm",
                "lifecycle_stage": stage, "value_tier": tier, "behaviour_type": behaviour,
                "segment": segment, "goal": goal, "channel": channel,
                "send_at": AS_OF + timedelta(days=1) if channel else None,
                "offer": "скидка 10%" if goal == "reactivate" else "none",
                "reason": f"{REASON_RU} (№{n})", "control_group": n == 12,
                "expected_incremental_revenue": 10.0 * n if channel else 0.0,
                "contact_cost": {"email": 0.5, "sms": 3.0, "telegram": 0.2}.get(channel, 0.0),
            })
    schema = {**empty_scores().schema, **DECISION_SCHEMA}
    frame = pl.DataFrame(rows, schema=schema)
    assert set(SCORE_COLUMNS) <= set(frame.columns)
    return frame


def many_cells_scores(seed: int = 1) -> pl.DataFrame:
    """A shop's worth of cells: every lifecycle x tier x behaviour segment with its goals and
    three of five channels (about 300 cells, 9,000 customers), as a demo run produces."""
    rng = random.Random(seed)
    goals = {"new": ["onboard"], "active": ["cross_sell", "replenish"],
             "at_risk": ["reactivate", "replenish", "keep_vip"], "sleeping": ["reactivate"],
             "lost": ["win_back", "none"]}
    costs = {"email": 0.5, "sms": 3.0, "push": 0.1, "telegram": 0.2}
    columns: dict[str, list] = {name: [] for name in ("lifecycle_stage", "value_tier",
                                                      "behaviour_type", "goal", "channel")}
    for stage, tier, behaviour in itertools.product(LIFECYCLE_STAGES, VALUE_TIERS,
                                                    BEHAVIOUR_TYPES):
        for goal in goals[stage]:
            for channel in rng.sample([*costs, None], 3 if stage != "lost" else 2):
                for _ in range(rng.randint(3, 60)):
                    for name, value in zip(columns, (stage, tier, behaviour, goal, channel)):
                        columns[name].append(value)
    n = len(columns["goal"])
    base = ui_scores().head(1).drop(*columns, "segment", "customer_id", "expected_incremental_revenue",
                                    "contact_cost")
    frame = pl.concat([base] * n).with_columns(
        pl.Series("customer_id", [f"C{i:06d}" for i in range(1, n + 1)]),
        *(pl.Series(name, values, pl.String) for name, values in columns.items()),
        pl.Series("expected_incremental_revenue",
                  [rng.random() * 300 if c else 0.0 for c in columns["channel"]]),
        pl.Series("contact_cost", [costs.get(c, 0.0) for c in columns["channel"]]),
    ).with_columns(pl.concat_str("lifecycle_stage", "value_tier", "behaviour_type",
                                 separator="-").alias("segment"))
    return frame.select(ui_scores().columns)


def write_run(url: str, frame: pl.DataFrame | None = None) -> str:
    with ScoreStore(url).open() as store:
        return store.write_run(ui_scores() if frame is None else frame, model_version="3",
                               as_of=AS_OF)


def store_rows(url: str, **filters: str | None) -> pl.DataFrame:
    with ScoreStore(url).open() as store:
        chunks = list(store.iter_scores(filters=filters))
        return pl.concat(chunks) if chunks else store.empty_frame()


@pytest.fixture
def ui_settings(settings, no_registry) -> Settings:
    return settings


def app_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.fixture
def client(ui_settings) -> Iterator[TestClient]:
    with app_client(ui_settings) as test_client:
        yield test_client


@pytest.fixture
def scored(ui_settings) -> str:
    """A complete run of ui_scores() in the store, before the app starts."""
    return write_run(ui_settings.store_url)


def sign_in(client: TestClient, key: str = EXPORT_KEY) -> None:
    response = client.post("/ui/login", data={"api_key": key})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/ui"


def matrix_rows(html: str) -> dict[tuple[str, str, str], int]:
    """The table's cells: (segment, goal, channel token) -> customers."""
    found = re.findall(r'<tr class="cell" data-segment="([^"]*)" data-goal="([^"]*)"\s+'
                       r'data-channel="([^"]*)" data-customers="(\d+)"', html)
    return {(unescape(s), unescape(g), unescape(c)): int(n) for s, g, c, n in found}


def download_links(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'<a class="download" href="([^"]+)"', html)]


def parse_csv(content: bytes, separator: str = ";") -> list[dict[str, str]]:
    text = content.decode("utf-8")
    assert text.startswith(BOM), "the CSV must start with a byte-order mark for Excel"
    return list(csv.DictReader(io.StringIO(text[1:], newline=""), delimiter=separator))


def fake_model(version: str = "7", metrics: dict | None = None) -> ServedModel:
    pipeline = SimpleNamespace(trained_as_of=AS_OF, horizon_days=90)
    registered = RegisteredPipeline(pipeline=pipeline, version=version,  # type: ignore[arg-type]
                                    metrics=METRICS if metrics is None else metrics)
    return ServedModel(registered, "champion", datetime.now(UTC))


# -- signing in ----------------------------------------------------------------------------------


def test_without_a_session_every_page_asks_for_the_key(client, scored):
    page = client.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'name="api_key"' in page.text and 'type="password"' in page.text
    assert 'id="matrix"' not in page.text
    for path in ("/ui/export?segment=active-high-hedonist", "/ui/customers?customer_id=C000001",
                 "/ui?customer_id=C000001"):
        refused = client.get(path)
        assert refused.status_code in (200, 401) and 'name="api_key"' in refused.text
        assert "C000001" not in refused.text and "text/csv" not in refused.headers["content-type"]
    assert client.get("/ui/export").status_code == 401
    assert client.get("/ui/customers").status_code == 401


def test_a_wrong_key_shows_the_form_again_with_a_message(client, caplog):
    caplog.set_level(logging.DEBUG)
    response = client.post("/ui/login", data={"api_key": "not-a-key-0123456789"})
    assert response.status_code == 401
    assert "not valid" in response.text and 'name="api_key"' in response.text
    assert "set-cookie" not in response.headers
    assert "not-a-key-0123456789" not in caplog.text and "not-a-key" not in response.text
    assert client.post("/ui/login", data={}).status_code == 401


def test_a_key_without_the_export_scope_is_refused(client):
    response = client.post("/ui/login", data={"api_key": SCORE_KEY})
    assert response.status_code == 403
    assert "'export' scope" in unescape(response.text)
    assert "set-cookie" not in response.headers
    assert client.get("/ui").text.count('name="api_key"') == 1  # still signed out


def test_signing_in_sets_a_strict_httponly_cookie_and_signing_out_clears_it(client, scored,
                                                                             caplog):
    caplog.set_level(logging.DEBUG)
    response = client.post("/ui/login", data={"api_key": f"  {EXPORT_KEY}\n"})  # pasted
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{ui.COOKIE}=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/ui"} <= attributes
    assert "secure" not in attributes  # plain http here; set over https
    page = client.get("/ui")
    assert page.status_code == 200 and 'id="matrix"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text

    out = client.post("/ui/logout")
    assert out.status_code == 303 and out.headers["location"] == "/ui"
    assert f'{ui.COOKIE}=""' in out.headers["set-cookie"] or "max-age=0" in (
        out.headers["set-cookie"].lower())
    assert ui.COOKIE not in client.cookies
    assert 'name="api_key"' in client.get("/ui").text
    assert EXPORT_KEY not in caplog.text


def test_over_https_the_cookie_is_secure_and_a_huge_form_is_refused(ui_settings):
    small = ui_settings.model_copy(update={"max_request_bytes": 1024})
    with TestClient(create_app(small), base_url="https://testserver",
                    follow_redirects=False) as client:
        response = client.post("/ui/login", data={"api_key": EXPORT_KEY})
        assert "secure" in {p.strip().lower() for p in response.headers["set-cookie"].split(";")}
        assert client.post("/ui/login", data={"api_key": "k" * 5000}).status_code == 413


def test_a_revoked_key_ends_the_session(ui_settings, scored):
    with app_client(ui_settings) as client:
        sign_in(client)
        kept = client.cookies.get(ui.COOKIE)
    revoked = ui_settings.model_copy(update={"api_keys": SecretStr(json.dumps({SCORE_KEY: ["score"]}))})
    with app_client(revoked) as client:
        client.cookies.set(ui.COOKIE, kept)
        page = client.get("/ui")
        assert page.status_code == 401 and "no longer valid" in page.text
        assert 'id="matrix"' not in page.text


def test_without_keys_in_dev_mode_no_sign_in_is_needed(ui_settings, scored):
    open_settings = ui_settings.model_copy(update={"api_keys": None, "allow_no_auth": True})
    with app_client(open_settings) as client:
        assert 'id="matrix"' in client.get("/ui").text


# -- the matrix ------------------------------------------------------------------------------------


def test_the_matrix_shows_every_cell_with_its_counts_and_totals(client, scored, ui_settings):
    sign_in(client)
    page = client.get("/ui")
    assert page.status_code == 200
    expected = {(s, g, c or "none"): n for s, g, c, n in CELLS}
    assert matrix_rows(page.text) == expected
    assert re.search(r'<tr id="totals" data-customers="12"', page.text)
    with ScoreStore(ui_settings.store_url).open() as store:
        matrix = store.segment_matrix()
    revenue = ui_scores()["predicted_revenue"].sum()
    assert matrix["predicted_revenue"].sum() == pytest.approx(revenue)
    assert ui._number(revenue) in page.text  # the total predicted revenue, formatted
    assert "no channel" in page.text and "Scores as of 2026-07-01" in page.text
    assert 'id="no-model"' in page.text and "No model loaded" in page.text


def test_filters_narrow_the_table_and_keep_their_choice(client, scored):
    sign_in(client)
    page = client.get("/ui", params={"goal": "reactivate"})
    assert matrix_rows(page.text) == {("sleeping-mid-occasional", "reactivate", "sms"): 3,
                                      ("at_risk-vip-stock_up", "reactivate", "telegram"): 2}
    assert re.search(r'<tr id="totals" data-customers="5"', page.text)
    assert '<option value="reactivate" selected>' in page.text
    assert '<option value="cross_sell">' in page.text  # the other choices stay offered

    no_channel = client.get("/ui", params={"channel": "none"})
    assert matrix_rows(no_channel.text) == {("lost-low-occasional", "none", "none"): 3}
    both = client.get("/ui", params={"goal": "reactivate", "channel": "sms", "segment": ""})
    assert matrix_rows(both.text) == {("sleeping-mid-occasional", "reactivate", "sms"): 3}
    nothing = client.get("/ui", params={"segment": "no-such-segment"})
    assert matrix_rows(nothing.text) == {} and 'id="no-cells"' in nothing.text
    too_long = client.get("/ui", params={"segment": "x" * 500})
    assert too_long.status_code == 400 and "too long" in too_long.text


def test_without_a_run_the_page_says_how_to_make_one(client):
    sign_in(client)
    page = client.get("/ui")
    assert page.status_code == 200
    assert 'id="no-run"' in page.text and "retain score" in page.text
    assert 'id="matrix"' not in page.text
    missing = client.get("/ui/export")
    assert missing.status_code == 404 and "retain score" in missing.text


def visible_text(html: str) -> str:
    """What a reader sees: the page without tags, attributes, or the <title>s of charts."""
    html = re.sub(r"<title>.*?</title>", " ", html, flags=re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_the_matrix_is_folded_by_lifecycle_stage_then_value_tier_with_totals(ui_settings):
    frame = many_cells_scores()
    write_run(ui_settings.store_url, frame)
    with app_client(ui_settings) as client:
        sign_in(client)
        page = client.get("/ui").text
    cells = frame.group_by("segment", "goal", "channel").len()
    assert len(matrix_rows(page)) == cells.height == 300  # every cell is still there ...
    stages = re.findall(r'<details class="stage" data-stage="([^"]+)" data-customers="(\d+)">',
                        page)
    # ... folded (no "open") into one group per stage, in the lifecycle's order, with totals.
    expected = dict(frame.group_by("lifecycle_stage").len().iter_rows())
    assert [s for s, _ in stages] == list(LIFECYCLE_STAGES)
    assert {s: int(n) for s, n in stages} == expected
    tiers = re.findall(r'<details class="tier" data-tier="([^"]+)" data-customers="(\d+)">', page)
    assert len(tiers) == len(LIFECYCLE_STAGES) * len(VALUE_TIERS)
    assert sum(int(n) for _, n in tiers) == frame.height
    assert re.search(rf'<tr id="totals" data-customers="{frame.height}"', page)
    assert "<details" in page and " open>" not in page
    # Filtered down, the groups that remain open.
    with app_client(ui_settings) as client:
        sign_in(client)
        narrowed = client.get("/ui", params={"goal": "win_back"}).text
    assert re.findall(r'data-stage="([^"]+)" data-customers="\d+" open>', narrowed) == ["lost"]


def test_the_charts_count_customers_per_stage_and_tier_goal_and_channel(ui_settings):
    frame = many_cells_scores()
    write_run(ui_settings.store_url, frame)
    with app_client(ui_settings) as client:
        sign_in(client)
        page = client.get("/ui").text
    heat = {(s, t): int(n) for s, t, n in re.findall(
        r'<g class="heat-cell" data-stage="([^"]+)" data-tier="([^"]+)" data-customers="(\d+)">',
        page)}
    assert heat == {(s, t): n for s, t, n in
                    frame.group_by("lifecycle_stage", "value_tier").len().iter_rows()}
    # The tooltip of a cell gives its expected incremental revenue.
    top = frame.filter(pl.col("lifecycle_stage") == "at_risk", pl.col("value_tier") == "vip")
    revenue = ui._number(top["expected_incremental_revenue"].sum())
    assert (f"At risk · VIP (top 5%): {ui._number(top.height)} customers, expected extra "
            f"revenue {revenue}") in page
    for key in ("goal", "channel"):
        bars = {k: float(v) for k, v in re.findall(
            r'<g class="bar" data-key="([^"]*)" data-measure="contact_cost" '
            r'data-value="([^"]+)">', page.split(f'id="chart-{key}"')[1].split("</svg>")[0])}
        sums = frame.group_by(key).agg(pl.col("contact_cost").sum())
        assert bars == pytest.approx({k or "": v for k, v in sums.iter_rows()})
    # Drawn by retain: no script, nothing fetched from elsewhere.
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_the_page_speaks_russian_when_asked_and_remembers_it(client, scored):
    sign_in(client)
    page = client.get("/ui", params={"lang": "ru"})
    assert page.status_code == 200 and '<html lang="ru">' in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{ui.LANG_COOKIE}=ru") and "path=/ui" in cookie.lower()
    again = client.get("/ui").text  # no ?lang: the cookie remembers
    assert '<html lang="ru">' in again
    for words in ("Сегменты, цели и каналы", "Спящий", "Средняя ценность", "Реактивировать",
                  "нет канала", "Клиенты по стадии жизненного цикла и ценности"):
        assert words in again, words
    customer = client.get("/ui/customers", params={"customer_id": "C000005"}).text
    assert "Вероятность, что клиент ещё активен" in customer
    assert "Шанс, что клиент не ушёл насовсем (BTYD p-alive)." in customer
    assert "Шанс, что в ближайшие 90 дн. заказа не будет." in customer
    # The switch keeps the view and its query, and English comes back.
    assert 'href="/ui/customers?customer_id=C000005&amp;lang=en"' in customer
    english = client.get("/ui", params={"lang": "en"})
    assert '<html lang="en">' in english.text and "Segments, goals and channels" in english.text
    assert client.get("/ui", params={"lang": "xx"}).text.count('<html lang="en">') == 1
    error = client.get("/ui", params={"segment": "x" * 500, "lang": "ru"})
    assert error.status_code == 400 and "Этот запрос нельзя выполнить" in error.text


def test_signed_out_the_form_follows_the_browsers_language_and_the_remembered_choice(client):
    form = client.get("/ui", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert '<html lang="ru">' in form.text and "API-ключ" in form.text
    assert 'href="/ui?lang=en"' in form.text
    assert '<html lang="en">' in client.get("/ui", headers={"Accept-Language": "kk, en"}).text
    client.get("/ui", params={"lang": "ru"})
    refused = client.post("/ui/login", data={"api_key": "not-a-key-0123456789"})
    assert refused.status_code == 401 and "Этот API-ключ недействителен" in refused.text


def test_codes_appear_only_in_exports_and_every_number_is_explained(client, scored):
    sign_in(client)
    page = client.get("/ui", params={"customer_id": "C000011"}).text
    seen = visible_text(page)
    for code in ("at_risk", "stock_up", "cross_sell", "sleeping-mid-occasional", "telegram",
                 "hedonist", "reactivate"):
        assert code not in seen, code
    assert "Stock-up buyer" in seen and "Telegram" in seen and "Reactivate" in seen
    # Alive and churn side by side, each with what it means (so 55% beside 45% is understood).
    assert re.search(r"Probability still a customer\s*Chance they have not left for good "
                     r"\(BTYD p-alive\)\.\s*45\.0%", seen)
    assert re.search(r"Churn probability in the horizon\s*Chance of no order in the next 90 "
                     r"days\.\s*55\.0%", seen)
    fields = re.findall(r'<tr data-column="([^"]+)"><th scope="row">[^<]+'
                        r'(<span class="help">[^<]+</span>)?</th>', page)
    numbers = {"p_alive", "churn_probability", "expected_orders", "predicted_revenue", "clv_12m",
               "overdue_days", "expected_incremental_revenue", "contact_cost",
               "next_order_date", "next_order_p10", "next_order_p90", "due_product_date"}
    assert numbers <= {column for column, help in fields if help}


def test_the_customer_timeline_shows_the_next_order_range_and_the_due_product(client, scored):
    sign_in(client)
    page = client.get("/ui/customers", params={"customer_id": "C000005"}).text
    svg = page.split('id="chart-timeline"')[1].split("</svg>")[0]
    # C000005: next order 2026-07-06, likely 07-03 to 07-11; product P5 runs out 07-06.
    assert "Next order likely: 2026-07-03 … 2026-07-11" in svg
    assert "Expected order: 2026-07-06" in svg and "Runs out: P5: 2026-07-06" in svg
    assert "Scores as of: 2026-07-01" in svg
    no_product = client.get("/ui/customers", params={"customer_id": "C000004"}).text
    assert 'class="mark-due"' not in no_product and 'class="mark-expected"' in no_product


def test_the_customer_timeline_draws_the_order_history_in_english_and_russian(ui_settings):
    history = {"first_order_date": pl.Series([date(2025, 3, 14)] * 12),
               "last_order_date": pl.Series([date(2026, 5, 28)] * 12),
               "orders": pl.Series([1_250] * 12, dtype=pl.Int32)}
    write_run(ui_settings.store_url, ui_scores().with_columns(**history))
    with app_client(ui_settings) as client:
        sign_in(client)
        page = client.get("/ui/customers", params={"customer_id": "C000005"}).text
        svg = page.split('id="chart-timeline"')[1].split("</svg>")[0]
        assert "Orders: 1\u00a0250" in svg
        assert "First order: 2025-03-14" in svg and "Last order: 2026-05-28" in svg
        assert 'class="history"' in svg and "Next order likely: 2026-07-03 … 2026-07-11" in svg
        # The same figures in the customer's fields, each explained.
        seen = visible_text(page)
        assert re.search(r"Orders so far\s*Purchases \(orders with a positive total\) before "
                         r"the scores' date\.\s*1\s250", seen)
        russian = client.get("/ui/customers", params={"customer_id": "C000005", "lang": "ru"})
        svg = russian.text.split('id="chart-timeline"')[1].split("</svg>")[0]
        assert "Заказов: 1\u00a0250" in svg
        assert "Первый заказ: 2025-03-14" in svg and "Последний заказ: 2026-05-28" in svg


def test_a_run_stored_without_the_order_history_draws_none(client, scored):
    sign_in(client)
    page = client.get("/ui/customers", params={"customer_id": "C000005"}).text
    svg = page.split('id="chart-timeline"')[1].split("</svg>")[0]
    assert 'class="history"' not in svg and 'class="first-order"' not in svg
    assert "Scores as of: 2026-07-01" in svg


# -- downloads -------------------------------------------------------------------------------------


@pytest.fixture
def ui_store_url(store_db_url) -> str:
    """Both backends (SQLite; PostgreSQL when RETAIN_TEST_POSTGRES_URL is set)."""
    return store_db_url


def test_each_cells_csv_holds_exactly_the_stores_rows_of_that_cell(ui_settings, ui_store_url):
    settings = ui_settings.model_copy(update={"store_url": ui_store_url})
    write_run(ui_store_url)
    with app_client(settings) as client:
        sign_in(client)
        links = download_links(client.get("/ui").text)
        assert len(links) == len(CELLS)
        with ScoreStore(ui_store_url).open() as store:
            columns = store.columns
        for link in links:
            query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
            response = client.get(link)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/csv; charset=utf-8"
            channel = query["channel"]
            filename = f"retain-{query['segment']}-{query['goal']}-{channel}-2026-07-01.csv"
            assert f'filename="{filename}"' in response.headers["content-disposition"]
            assert response.headers["content-disposition"].startswith("attachment;")
            rows = parse_csv(response.content)
            expected = store_rows(ui_store_url, segment=query["segment"], goal=query["goal"],
                                  channel=None if channel == "none" else channel)
            sizes = {(s, g, c or "none"): n for s, g, c, n in CELLS}
            assert expected.height == sizes[(query["segment"], query["goal"], channel)]
            assert list(rows[0]) == columns
            assert [r["customer_id"] for r in rows] == expected["customer_id"].to_list()
            assert [r["reason"] for r in rows] == expected["reason"].to_list()
            assert all(r["reason"].startswith(REASON_RU) for r in rows)
            assert [float(r["predicted_revenue"]) for r in rows] == pytest.approx(
                expected["predicted_revenue"].to_list())
            assert {r["channel"] for r in rows} == {"" if channel == "none" else channel}

        everything = client.get("/ui/export", params={"sep": ","})
        assert 'filename="retain-all-all-all-2026-07-01.csv"' in (
            everything.headers["content-disposition"])
        rows = parse_csv(everything.content, separator=",")
        assert [r["customer_id"] for r in rows] == [f"C{n:06d}" for n in range(1, 13)]
        assert client.get("/ui/export", params={"sep": "|"}).status_code == 400


def test_each_cell_downloads_as_an_excel_workbook_too(ui_settings):
    write_run(ui_settings.store_url)
    with app_client(ui_settings) as client:
        sign_in(client)
        page = client.get("/ui").text
        links = [unescape(h) for h in re.findall(r'<a class="download-xlsx" href="([^"]+)"', page)]
        assert len(links) == len(CELLS)
        assert all("format=xlsx" in link for link in links)
        for link in links:
            query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
            response = client.get(link)
            assert response.status_code == 200
            assert response.headers["content-type"] == (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            filename = (f"retain-{query['segment']}-{query['goal']}-{query['channel']}"
                        "-2026-07-01.xlsx")
            assert f'filename="{filename}"' in response.headers["content-disposition"]
            sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
            assert sheet.title == query["segment"] and sheet.freeze_panes == "A2"
            rows = list(sheet.iter_rows(values_only=True))
            assert query["lang"] == "en" and rows[0][0] == "Customer"  # the page's language
            assert len(rows) == 1 + sum(n for s, g, c, n in CELLS
                                        if (s, g, c or "none") == (query["segment"],
                                                                   query["goal"],
                                                                   query["channel"]))
        # On the page in Russian: headers and categories as people read them, numbers still
        # numbers.
        page_ru = client.get("/ui", params={"lang": "ru"}).text
        all_xlsx = re.search(r'<a id="download-all-xlsx" href="([^"]+)"', page_ru)
        assert all_xlsx is not None and "lang=ru" in all_xlsx.group(1)
        russian = client.get(unescape(all_xlsx.group(1)))
        sheet = openpyxl.load_workbook(io.BytesIO(russian.content)).active
        assert sheet.title == "scores"
        rows = list(sheet.iter_rows())
        headers = [c.value for c in rows[0]]
        assert headers[0] == "Клиент" and len(rows) == 13
        assert {r[headers.index("Канал")].value for r in rows[1:]} == {
            "Email", "SMS", "Telegram", None}
        revenue = [r[headers.index("Прогноз выручки за горизонт")] for r in rows[1:]]
        assert [c.value for c in revenue] == [100.0 * n + 0.25 for n in range(1, 13)]
        assert {c.number_format for c in revenue} == {"0.00"}
        csv_ru = client.get("/ui/export", params={"lang": "ru"})
        assert parse_csv(csv_ru.content)[0]["Клиент"] == "C000001"
        excel = parse_csv(client.get("/ui/export", params={"excel": "1"}).content)
        assert excel[0]["predicted_revenue"] == "100,25"  # a decimal comma for Excel
        assert client.get("/ui/export", params={"format": "xls"}).status_code == 400
        assert client.get("/ui/export", params={"lang": "de"}).status_code == 400


def test_a_cyrillic_cell_downloads_under_a_utf8_file_name(ui_settings):
    frame = ui_scores().with_columns(
        pl.when(pl.col("goal") == "none").then(pl.lit("зимняя-акция")).otherwise(pl.col("segment"))
        .alias("segment"))
    write_run(ui_settings.store_url, frame)
    with app_client(ui_settings) as client:
        sign_in(client)
        page = client.get("/ui", params={"segment": "зимняя-акция"})
        assert matrix_rows(page.text) == {("зимняя-акция", "none", "none"): 3}
        [link] = download_links(page.text)
        response = client.get(link)
        disposition = response.headers["content-disposition"]
        assert "filename*=UTF-8''retain-%D0%B7%D0%B8%D0%BC" in disposition
        assert [r["segment"] for r in parse_csv(response.content)] == ["зимняя-акция"] * 3


# -- the model, a customer, errors ---------------------------------------------------------------


def test_the_model_at_a_glance_against_the_best_baseline(client, scored):
    client.app.state.service.holder.current = fake_model()
    sign_in(client)
    page = client.get("/ui").text
    assert 'id="no-model"' not in page
    assert "Serving model version 7 (alias champion)" in page and "2026-07-01" in page
    # The best other method by its name, not its code (0.74, not the recency rule's 0.70).
    assert "0.810" in page and "0.740" in page and "BG/NBD: chance of no order" in page
    assert "bgnbd" not in page
    assert "0.620" in page and "0.550" in page
    assert "21.5" in page and "19.0" in page and "Usual interval between orders" in page
    assert page.count("retain is better") == 1 and page.count("retain is worse") == 1
    assert page.count("a tie: the difference is within noise") == 1  # +0.07, yet noise
    assert "LightGBM" in page and "Baseline rule" in page
    assert "interval -0.010 to 0.150" in page
    assert "The service now serves version 7" in page  # the run was made by version 3

    client.app.state.service.holder.current = fake_model(metrics={})
    assert "no backtest metrics" in client.get("/ui").text
    # A model logged before the noise check is never called better on its point figures.
    unchecked = {k: v for k, v in METRICS.items() if not k.startswith(("vs_baseline", "choice"))}
    client.app.state.service.holder.current = fake_model(metrics=unchecked)
    page = client.get("/ui").text
    assert "retain is better" not in page and page.count("not checked against noise") == 3


def test_get_model_gives_the_same_verdicts_as_the_page():
    from retain.serving.routes.model import verdicts

    given = verdicts(METRICS)
    assert {t: v.verdict for t, v in given.items()} == {"churn": "better", "value": "tie",
                                                        "timing": "worse"}
    assert given["value"].text == "a tie: the difference is within noise"
    assert given["churn"].model == "LightGBM" and given["timing"].model == "simple baseline"
    assert given["churn"].alternative == "bgnbd p no order" and given["churn"].lo == 0.03
    unchecked = verdicts({k: v for k, v in METRICS.items() if k.startswith("backtest.")})
    assert {v.verdict for v in unchecked.values()} == {"unchecked"}


def test_the_page_shows_the_real_champion_and_its_backtest(settings, tracking):
    """The trained model from the registry, not a stand-in: its version and its own AUC."""
    write_run(settings.store_url)
    with app_client(settings) as real:
        sign_in(real)
        page = real.get("/ui").text
    trained = tracking.trained
    assert 'id="no-model"' not in page
    assert f"Serving model version {trained.version} " in page
    assert f"{trained.metrics['churn']['retain']['auc']:.3f}" in page


def test_customer_look_up_shows_scores_decision_and_reason(client, scored):
    sign_in(client)
    for path in ("/ui/customers", "/ui"):
        page = client.get(path, params={"customer_id": " C000005 "})
        assert page.status_code == 200
        assert 'data-customer-id="C000005"' in page.text
        assert f"{REASON_RU} (№5)" in page.text
        assert "Sleeping · Mid value · Occasional" in page.text and "скидка 10%" in page.text
        assert "25.0%" in page.text  # churn probability 5/20
    missing = client.get("/ui/customers", params={"customer_id": "<b>C999</b>"})
    assert missing.status_code == 200 and 'id="customer-not-found"' in missing.text
    assert "&lt;b&gt;C999&lt;/b&gt;" in missing.text and "<b>C999</b>" not in missing.text
    too_long = client.get("/ui/customers", params={"customer_id": "C" * 129})
    assert too_long.status_code == 400


def test_a_failure_is_a_page_without_details_and_the_log_without_data(client, scored,
                                                                      monkeypatch, caplog):
    sign_in(client)
    caplog.set_level(logging.DEBUG)

    def broken(*args, **kwargs):
        raise ValueError("customer C000001 spent 1234.56")

    monkeypatch.setattr(client.app.state.service.store, "segment_matrix", broken)
    page = client.get("/ui")
    assert page.status_code == 500 and "Something went wrong" in page.text
    assert "C000001" not in page.text and "Traceback" not in page.text
    assert page.headers["x-request-id"] in page.text
    assert "ValueError" in caplog.text
    assert "C000001" not in caplog.text and "1234.56" not in caplog.text

    def unreachable(*args, **kwargs):
        raise ConnectionError("cannot open the score store")

    monkeypatch.setattr(client.app.state.service.store, "latest_run", unreachable)
    assert client.get("/ui").status_code == 503


# -- a real browser --------------------------------------------------------------------------------


@pytest.fixture
def live_server(ui_settings, scored) -> Iterator[tuple[str, object]]:
    """A real uvicorn server on a free port of 127.0.0.1, in a thread, serving the store's run."""
    app = create_app(ui_settings)
    with serve_in_thread(app, "ui-test-server") as url:
        app.state.service.holder.current = fake_model()
        yield url, app


def test_a_marketer_signs_in_filters_downloads_and_looks_up_in_a_real_browser(
        chromium_path, live_server, ui_settings, tmp_path):
    from playwright.sync_api import sync_playwright

    base, _ = live_server
    cell = ("sleeping-mid-occasional", "reactivate", "sms")
    expected = store_rows(ui_settings.store_url, segment=cell[0], goal=cell[1], channel=cell[2])
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium_path)
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/ui")
            page.fill("#api_key", "wrong-key")
            page.click("form[action='/ui/login'] button")
            assert "not valid" in page.locator("#login-message").inner_text()

            page.fill("#api_key", EXPORT_KEY)
            page.click("form[action='/ui/login'] button")
            page.wait_for_selector("#matrix")
            assert page.locator("tr.cell").count() == len(CELLS)
            assert page.locator("#totals").get_attribute("data-customers") == "12"
            assert "Serving model version 7" in page.locator("#model-summary").inner_text()
            cookies = context.cookies()
            assert [c["httpOnly"] for c in cookies if c["name"] == ui.COOKIE] == [True]
            page.screenshot(path=str(tmp_path / "ui-matrix.png"), full_page=True)

            page.select_option("#filter-goal", "reactivate")
            page.click("#filters button[type=submit]")
            page.wait_for_url(re.compile(r"goal=reactivate"))
            assert page.locator("tr.cell").count() == 2
            assert page.locator("#totals").get_attribute("data-customers") == "5"

            row = page.locator(f'tr.cell[data-segment="{cell[0]}"][data-channel="{cell[2]}"]')
            with page.expect_download() as started:
                row.locator("a.download").click()
            download = started.value
            assert download.suggested_filename == f"retain-{'-'.join(cell)}-2026-07-01.csv"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            rows = parse_csv(saved.read_bytes())
            assert len(rows) == expected.height == 3
            assert [r["customer_id"] for r in rows] == expected["customer_id"].to_list()
            assert [r["reason"] for r in rows] == expected["reason"].to_list()
            assert all(r["reason"].startswith(REASON_RU) for r in rows)

            customer = expected["customer_id"][0]
            page.fill("#customer_id", customer)
            page.click("#lookup-form button")
            reason = page.locator("#customer-reason").inner_text()
            assert REASON_RU in reason and customer in page.locator("#customer h3").inner_text()
            page.screenshot(path=str(tmp_path / "ui-customer.png"), full_page=True)

            page.click("header form button")  # sign out
            page.wait_for_selector("#api_key")
            assert not [c for c in context.cookies() if c["name"] == ui.COOKIE]
        finally:
            browser.close()



SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOT_CUSTOMER = "C000042"
# The home page of a shop with about 300 cells, in px at 1280 px wide: 14,191 before the matrix
# was folded (measured in Chromium); folded with its charts, about 1,750.
MAX_HOME_HEIGHT = 2_600


@pytest.fixture
def rich_server(ui_settings) -> Iterator[tuple[str, object]]:
    """A server over a run of about 300 cells, one customer with a telling timeline."""
    frame = many_cells_scores().with_columns(
        pl.when(pl.col("customer_id") == SHOT_CUSTOMER).then(value).otherwise(pl.col(name))
        .alias(name) for name, value in {
            "next_order_date": pl.lit(AS_OF + timedelta(days=18)),
            "next_order_p10": pl.lit(AS_OF + timedelta(days=9)),
            "next_order_p90": pl.lit(AS_OF + timedelta(days=34)),
            "due_product_id": pl.lit("Творог 5% 400 г"),
            "due_product_date": pl.lit(AS_OF + timedelta(days=12)),
            "p_alive": pl.lit(0.84), "churn_probability": pl.lit(0.41),
            "overdue_days": pl.lit(0.0)}.items())
    shot = pl.col("customer_id") == SHOT_CUSTOMER
    frame = frame.with_columns(  # a new stock-up buyer's three orders so far
        pl.when(shot).then(pl.lit(AS_OF - timedelta(days=26))).alias("first_order_date"),
        pl.when(shot).then(pl.lit(AS_OF - timedelta(days=5))).alias("last_order_date"),
        pl.when(shot).then(pl.lit(3, dtype=pl.Int32)).alias("orders"))
    write_run(ui_settings.store_url, frame)
    app = create_app(ui_settings)
    with serve_in_thread(app, "ui-shots-server") as url:
        app.state.service.holder.current = fake_model()
        yield url, app


def save_screenshot(page, path: Path) -> None:
    """A full-page PNG, reduced to a 256-colour palette (text and charts stay sharp)."""
    from PIL import Image

    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                                             dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def test_every_view_in_a_real_browser_is_short_and_screenshotted(chromium_path, rich_server,
                                                                  tmp_path):
    """Home (English and Russian), a customer, sign-in and an error page, each saved as a PNG
    1280 px wide under 300 KB: into docs/screenshots with RETAIN_UPDATE_SCREENSHOTS=1 (the
    README shows those), else into a temporary folder."""
    import os

    from PIL import Image
    from playwright.sync_api import sync_playwright

    base, _ = rich_server
    folder = SCREENSHOTS if os.environ.get("RETAIN_UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium_path)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/ui")
            page.wait_for_selector("#api_key")
            save_screenshot(page, folder / "login.png")

            page.fill("#api_key", EXPORT_KEY)
            page.click("form[action='/ui/login'] button")
            page.wait_for_selector("#matrix")
            assert page.locator("tr.cell").count() == 300
            assert page.locator("details.stage").count() == len(LIFECYCLE_STAGES)
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height < MAX_HOME_HEIGHT, height
            assert page.locator("#chart-heatmap .heat-cell").count() == 20
            save_screenshot(page, folder / "home-en.png")

            page.click("#lang-switch a[hreflang=ru]")
            page.wait_for_selector("html[lang=ru]")
            assert "Сегменты, цели и каналы" in page.locator("h1").inner_text()
            assert page.evaluate("document.documentElement.scrollHeight") < MAX_HOME_HEIGHT
            # Unfold a stage, then a tier: its cells and their download links come into view.
            stage = "details.stage[data-stage=new]"
            assert not page.locator(f"{stage} details.tier").first.is_visible()
            page.click(f"{stage} > summary")
            assert not page.locator(f"{stage} tr.cell").first.is_visible()
            page.click(f"{stage} details.tier[data-tier=vip] > summary")
            assert page.locator(f"{stage} details.tier[data-tier=vip] a.download").first.is_visible()
            save_screenshot(page, folder / "home-ru.png")

            page.goto(f"{base}/ui/customers?customer_id={SHOT_CUSTOMER}&lang=en")
            page.wait_for_selector("#chart-timeline")
            fields = page.locator("#customer-fields").inner_text()
            assert "84.0%" in fields and "41.0%" in fields
            assert "Chance they have not left for good" in fields
            save_screenshot(page, folder / "customer.png")

            page.goto(f"{base}/ui?segment={'x' * 300}")
            page.wait_for_selector("text=too long")
            save_screenshot(page, folder / "error.png")
        finally:
            browser.close()
    for name in ("home-en", "home-ru", "customer", "login", "error"):
        path = folder / f"{name}.png"
        with Image.open(path) as shot:
            assert shot.width == 1280, (name, shot.size)
        assert path.stat().st_size < 300_000, (name, path.stat().st_size)
