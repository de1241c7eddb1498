"""The HTTP service through TestClient, with a real trained model in a real (SQLite) registry
and a real score store."""

from __future__ import annotations

import gc
import io
import json
import logging
import math
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import openpyxl
import polars as pl
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retain.config import Settings
from retain.decisions.decide import DECISION_COLUMNS, score_and_decide
from retain.decisions.rules import default_rules
from retain.models.pipeline import SCORE_COLUMNS
from retain.models.registry import MODEL_NAME
from retain.serving.labels import label
from retain.serving.main import create_app
from retain.serving.schemas import ScoresPublic, StoredScorePublic
from retain.serving.security import AuthConfigError
from retain.serving.store import ScoreStore
from tests.serving.conftest import (
    ADMIN_KEY,
    EXPORT_KEY,
    KEYS,
    METRICS_KEY,
    SCORE_KEY,
    customers_of,
    score_body,
)

SCORE = {"X-API-Key": SCORE_KEY}
EXPORT = {"X-API-Key": EXPORT_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
FLOATS = ("p_alive", "churn_probability", "expected_orders", "predicted_revenue", "clv_12m",
          "expected_incremental_revenue", "contact_cost",
          "overdue_days")


@pytest.fixture
def client(settings, tracking):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def served_app(settings: Settings, **changes) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


def one_customer_body(as_of: str = "2026-07-01", **transaction) -> dict:
    tx = {"ts": "2026-05-01T10:00:00", "amount": 25.0, **transaction}
    return {"as_of": as_of, "customers": [{"customer_id": "C-1", "transactions": [tx]}]}


# -- probes, auth ------------------------------------------------------------------------------


def test_probes_need_no_key_and_say_which_model_is_ready(client, registry):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": registry.trained.version}


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("POST", "/v1/score", "score"),
    ("GET", "/v1/customers/C0000001", "score"),
    ("GET", "/v1/model", "score"),
    ("POST", "/v1/admin/reload", "admin"),
    ("GET", "/metrics", "metrics"),
    ("GET", "/v1/segments", "export"),
    ("GET", "/v1/customers", "export"),
    ("GET", "/v1/segments/at_risk-vip-stock_up/export?format=csv", "export"),
])
def test_every_other_route_needs_a_key_with_its_scope(client, method, path, scope):
    body = one_customer_body() if path == "/v1/score" else None
    missing = client.request(method, path, json=body)
    assert missing.status_code == 401 and "X-API-Key" in missing.headers["WWW-Authenticate"]
    assert client.request(method, path, json=body, headers={"X-API-Key": "nope"}).status_code == 401
    lacking = next(key for key, scopes in KEYS.items() if scope not in scopes)
    forbidden = client.request(method, path, json=body, headers={"X-API-Key": lacking})
    assert forbidden.status_code == 403 and scope in forbidden.json()["detail"]
    allowed = next(key for key, scopes in KEYS.items() if scope in scopes)
    done = client.request(method, path, json=body, headers={"X-API-Key": allowed})
    assert done.status_code in (200, 404)


def test_no_keys_refuses_to_start_unless_dev_mode_says_so(settings, tracking):
    with pytest.raises(AuthConfigError, match="RETAIN_ALLOW_NO_AUTH"):
        create_app(settings.model_copy(update={"api_keys": None}))
    with served_app(settings, api_keys=None, allow_no_auth=True) as open_client:
        assert open_client.get("/v1/model").status_code == 200


def test_bad_key_configuration_is_refused_without_quoting_a_key(settings):
    secret = "do-not-print-me"
    for keys in ({secret: ["scor"]}, {secret: "score"}, [secret], {" ": ["score"]}):
        with pytest.raises(AuthConfigError) as raised:
            create_app(settings.model_copy(update={"api_keys": SecretStr(json.dumps(keys))}))
        assert secret not in str(raised.value)
    with pytest.raises(AuthConfigError, match="not valid JSON"):
        create_app(settings.model_copy(update={"api_keys": SecretStr("{" + secret)}))


# -- model info and reloads --------------------------------------------------------------------


def test_model_info_gives_version_training_date_and_backtest_metrics(client, registry, shop):
    info = client.get("/v1/model", headers=SCORE).json()
    assert info["name"] == MODEL_NAME and info["version"] == registry.trained.version
    assert info["alias"] == "champion" and "champion" in info["aliases"]
    assert info["run_id"] == registry.trained.run_id
    assert info["trained_as_of"] == shop.as_of.isoformat() and info["created_at"]
    assert info["horizon_days"] == 90
    metrics = info["backtest_metrics"]
    assert "backtest.churn.retain.auc" in metrics
    assert all(k.startswith("backtest.") for k in metrics)
    assert metrics["backtest.churn.retain.auc"] == pytest.approx(
        registry.trained.metrics["churn"]["retain"]["auc"])


def test_not_ready_until_the_alias_exists_then_reload_loads_it(settings, tracking, registry):
    alias = "serving-test-pending"
    with served_app(settings, model_alias=alias) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.get("/v1/model", headers=SCORE).status_code == 503
        not_yet = client.post("/v1/score", json=one_customer_body(), headers=SCORE)
        assert not_yet.status_code == 503 and not_yet.headers["Retry-After"].isdigit()
        registry.point(alias, registry.trained.version)
        gc.unfreeze()
        reload = client.post("/v1/admin/reload", headers=ADMIN)
        assert reload.status_code == 200 and reload.json()["status"] == "reloaded"
        assert client.get("/readyz").json()["model_version"] == registry.trained.version
        # The loaded heap is out of the collector's sight, so no full collection walks it.
        assert gc.get_freeze_count() > 10_000


def test_listens_at_once_while_the_registry_is_down_and_gets_ready_when_it_answers(
        settings, tracking, registry, monkeypatch):
    from tests.processes import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody there
    started = time.perf_counter()
    with served_app(settings, load_retry_interval=0.2) as client:
        assert time.perf_counter() - started < 2.0  # no wait for the registry
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"].isdigit()
        assert ready.json() == {"status": "not_ready", "model_version": None}
        scoring = client.post("/v1/score", json=one_customer_body(), headers=SCORE)
        assert scoring.status_code == 503 and scoring.headers["Retry-After"].isdigit()
        assert scoring.headers["Content-Type"] == "application/problem+json"
        assert scoring.json()["detail"] == "no model loaded yet"
        # The registry comes back: the background task loads the model without any call.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready a minute after the registry answered"
            time.sleep(0.1)
        assert client.get("/readyz").json()["model_version"] == registry.trained.version
        assert client.post("/v1/score", json=one_customer_body(), headers=SCORE).status_code == 200


def test_reload_picks_up_a_moved_alias(settings, tracking, registry):
    alias = "serving-test-reload"
    registry.point(alias, registry.trained.version)
    with served_app(settings, model_alias=alias) as client:
        newer = registry.new_version()
        registry.point(alias, newer)
        reload = client.post("/v1/admin/reload", headers=ADMIN).json()
        assert reload == {"status": "reloaded", "model_version": newer,
                          "previous_version": registry.trained.version, "detail": reload["detail"]}
        assert client.get("/v1/model", headers=SCORE).json()["version"] == newer
        assert client.post("/v1/admin/reload", headers=ADMIN).json()["status"] == "unchanged"


def test_the_background_check_follows_the_alias(settings, tracking, registry):
    alias = "serving-test-watch"
    registry.point(alias, registry.trained.version)
    with served_app(settings, model_alias=alias, reload_interval=0.2) as client:
        newer = registry.new_version()
        registry.point(alias, newer)
        deadline = time.monotonic() + 15
        while client.get("/readyz").json()["model_version"] != newer:
            assert time.monotonic() < deadline, "the background check never picked up the alias"
            time.sleep(0.1)


def test_a_failed_reload_keeps_serving_the_old_model(settings, tracking, registry, caplog):
    alias = "serving-test-broken"
    registry.point(alias, registry.trained.version)
    with served_app(settings, model_alias=alias) as client:
        registry.point(alias, registry.broken_version())
        with caplog.at_level(logging.WARNING, logger="serving"):
            reload = client.post("/v1/admin/reload", headers=ADMIN)
        assert reload.status_code == 503
        body = reload.json()
        assert body["status"] == "failed" and body["model_version"] == registry.trained.version
        assert f"still serving version {registry.trained.version}" in body["detail"]
        assert "reload failed" in caplog.text
        assert client.get("/v1/model", headers=SCORE).json()["version"] == registry.trained.version
        assert client.post("/v1/score", json=one_customer_body(), headers=SCORE).status_code == 200


# -- scoring -----------------------------------------------------------------------------------


def test_api_and_batch_agree(client, registry, shop, shop_history):
    some = customers_of(shop_history, 60)
    consents = shop.customers.filter(pl.col("customer_id").is_in(some["customer_id"].implode()))
    response = client.post("/v1/score", json=score_body(some, shop.as_of, consents),
                           headers=SCORE)
    assert response.status_code == 200
    ScoresPublic.model_validate(response.json())
    api = pl.DataFrame(response.json()["scores"]).drop("error", "model_version")
    # What `retain score --customers ...` computes for the same customers.
    batch = score_and_decide(registry.trained.pipeline, some, shop.as_of, rules=default_rules(),
                             consents=consents)
    assert api["customer_id"].to_list() == some["customer_id"].unique(maintain_order=True).to_list()
    api = api.sort("customer_id")
    batch = batch.sort("customer_id")
    assert api.columns == [*SCORE_COLUMNS, *DECISION_COLUMNS]
    assert api["channel"].drop_nulls().len() > 0  # consents reached the decisions
    for name in FLOATS:
        np.testing.assert_allclose(api[name].cast(pl.Float64).to_numpy(),
                                   batch[name].to_numpy(), atol=1e-9, rtol=0)
    # Dates, ids, text and flags: identical once both are text (JSON has no date type).
    others = [pl.col(c).cast(pl.String) for c in api.columns if c not in FLOATS]
    assert api.select(others).equals(batch.select(others))


def test_scores_only_leave_the_decision_fields_null(client, registry, shop, shop_history):
    some = customers_of(shop_history, 5)
    response = client.post("/v1/score?decisions=false", json=score_body(some, shop.as_of),
                           headers=SCORE)
    assert response.status_code == 200
    rows = response.json()["scores"]
    batch = registry.trained.pipeline.score(some, shop.as_of).sort("customer_id")
    assert sorted(r["customer_id"] for r in rows) == batch["customer_id"].to_list()
    for row in rows:
        assert all(row[name] is None for name in DECISION_COLUMNS)
        assert row["churn_probability"] is not None


@pytest.mark.parametrize(("query", "decided"), [
    ("", True), ("?decisions=yes", True), ("?decisions=0", False), ("?decisions=OFF", False),
    ("?decisions=false&decisions=true", True),  # the last value, as FastAPI reads a query
])
def test_the_decisions_flag_reads_as_a_boolean_query_parameter(client, shop, shop_history,
                                                               query, decided):
    # POST /v1/score reads its key and flag itself (ScoreRoute): as FastAPI would.
    some = customers_of(shop_history, 1)
    response = client.post(f"/v1/score{query}", json=score_body(some, shop.as_of), headers=SCORE)
    assert response.status_code == 200
    assert (response.json()["scores"][0]["goal"] is not None) is decided


@pytest.mark.parametrize("query", ["?decisions=", "?decisions=maybe",
                                   "?decisions=true&decisions=nah"])
def test_a_decisions_flag_that_is_no_boolean_is_a_422_naming_it(client, shop, shop_history,
                                                                query):
    some = customers_of(shop_history, 1)
    response = client.post(f"/v1/score{query}", json=score_body(some, shop.as_of), headers=SCORE)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["query", "decisions"]]
    # The key is checked first, as FastAPI checks a route's dependencies before its query.
    assert client.post(f"/v1/score{query}", json=score_body(some, shop.as_of)).status_code == 401


def test_aware_timestamps_are_converted_to_utc(client, shop, shop_history):
    some = customers_of(shop_history, 5)
    naive = score_body(some, shop.as_of)
    aware = json.loads(json.dumps(naive))
    for customer in aware["customers"]:
        for tx in customer["transactions"]:
            utc = datetime.fromisoformat(tx["ts"]).replace(tzinfo=UTC)
            tx["ts"] = utc.astimezone(ZoneInfo("Asia/Tokyo")).isoformat()
    assert aware != naive
    first = client.post("/v1/score", json=naive, headers=SCORE).json()["scores"]
    assert client.post("/v1/score", json=aware, headers=SCORE).json()["scores"] == first


def test_export_dates_read_as_the_batch_reads_them_never_as_epoch_seconds(client, shop):
    # "20260301" once passed pydantic as epoch seconds: 1970-08-23, "no order for 20295 days".
    as_of = shop.as_of.isoformat()
    iso = [{"ts": "2026-02-01", "amount": 30.0}, {"ts": "2026-04-01T10:30:00", "amount": 45.0},
           {"ts": "2026-05-03T08:05:00", "amount": 12.0}]
    export = [{"ts": "20260201", "amount": 30.0}, {"ts": "01.04.2026 10:30", "amount": 45.0},
              {"ts": "03.05.26 08:05:00", "amount": 12.0}]

    def scored(lines: list[dict]) -> dict:
        body = {"as_of": as_of, "customers": [{"customer_id": "1C-7", "transactions": lines}]}
        response = client.post("/v1/score", json=body, headers=SCORE)
        assert response.status_code == 200, response.text
        return response.json()["scores"][0]

    assert scored(export) == scored(iso)
    for ts in ("1767225600", "1767225600.5", "20261301", "13.13.2026"):
        response = client.post("/v1/score", json=one_customer_body(ts=ts), headers=SCORE)
        assert response.status_code == 422, ts
        assert "ISO 8601" in response.json()["errors"][0]["msg"]


def test_every_customer_is_answered_in_request_order(client, shop):
    as_of = shop.as_of.isoformat()
    body = {"as_of": as_of, "customers": [
        {"customer_id": "buyer", "transactions": [{"ts": "2026-02-01", "amount": 30.0},
                                                  {"ts": "2026-04-01", "amount": 45.0}]},
        {"customer_id": "new", "transactions": []},
        {"customer_id": "refunds-only", "transactions": [{"ts": "2026-03-01", "amount": -20.0}]},
        {"customer_id": "  spaced  ",
         "transactions": [{"ts": "2026-06-30T23:59:59", "amount": 1.0}]},
    ]}
    scores = client.post("/v1/score", json=body, headers=SCORE).json()["scores"]
    assert [s["customer_id"] for s in scores] == ["buyer", "new", "refunds-only", "spaced"]
    assert [s["error"] and s["error"]["code"] for s in scores] == [
        None, "no_transactions", "no_purchase_before_as_of", None]
    assert scores[0]["churn_probability"] is not None and scores[1]["churn_probability"] is None
    assert all(s["model_version"] and s["as_of"] == as_of for s in scores)


def test_lines_on_or_after_as_of_are_counted_not_used_and_ids_match_the_batch(client, shop):
    as_of = shop.as_of.isoformat()
    history = [{"ts": "2026-02-01", "amount": 30.0}, {"ts": "2026-04-01", "amount": 45.0},
               {"ts": "2026-04-01", "amount": 45.0}]  # a repeated line is kept, as in the batch
    later = [{"ts": f"{as_of}T00:00:00", "amount": 900.0},
             {"ts": f"{as_of}T00:30:00+01:00", "amount": 900.0},  # 23:30 UTC the day before
             {"ts": "2027-01-01", "amount": 900.0}]
    body = {"as_of": as_of, "customers": [
        {"customer_id": "17850.0", "transactions": history + later}]}
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["lines_after_as_of"] == 2
    plain = client.post("/v1/score", headers=SCORE, json={"as_of": as_of, "customers": [
        {"customer_id": "17850", "transactions": history + later[1:2]}]}).json()
    assert plain["lines_after_as_of"] == 0
    assert answer["scores"][0]["customer_id"] == "17850"
    assert answer["scores"][0]["churn_probability"] == plain["scores"][0]["churn_probability"]


@pytest.mark.parametrize(("body", "field", "says"), [
    (one_customer_body(amount=1e13), "customers[0].transactions[0].amount", "less than or equal"),
    (one_customer_body(ts=1767225600), "customers[0].transactions[0].ts", "ISO 8601"),
    (one_customer_body(ts="1850-01-01"), "customers[0].transactions[0].ts", "between"),
    (one_customer_body(ts="yesterday"), "customers[0].transactions[0].ts", "datetime"),
    (one_customer_body(as_of="2026-13-01"), "as_of", "date"),
    (one_customer_body(coupon="X"), "customers[0].transactions[0].coupon", "Extra inputs"),
    ({"as_of": "2026-07-01", "customers": []}, "customers", "at least 1"),
    ({"as_of": "2026-07-01", "customers": [{"customer_id": f"C{i}", "transactions": []}
                                           for i in range(1001)]}, "customers", "at most 1000"),
    ({"as_of": "2026-07-01", "customers": [{"customer_id": " ", "transactions": []}]},
     "customers[0].customer_id", "at least 1"),
    ({"as_of": "2026-07-01", "customers": [{"customer_id": "A", "transactions": []},
                                           {"customer_id": "B", "transactions": []},
                                           {"customer_id": "A ", "transactions": []}]},
     "customers[2].customer_id", "also customers[0]"),
    ({"customers": [{"customer_id": "A", "transactions": []}]}, "as_of", "required"),
])
def test_bad_input_is_rejected_with_the_field_named(client, body, field, says):
    # Raw JSON text: NaN and Infinity are not valid JSON, but Python's parser reads them.
    response = client.post("/v1/score", content=json.dumps(body), headers={
        **SCORE, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["request_id"] == response.headers["X-Request-ID"]
    assert problem["type"] == "urn:retain:problem:validation" and problem["status"] == 422
    assert field in problem["detail"] and problem["errors_total"] >= 1
    named = [d for d in problem["errors"] if d["field"] == field]
    assert named, problem["errors"]
    assert says.lower() in named[0]["msg"].lower()
    assert "input" not in named[0]


LARGE_BODY = {"as_of": "2026-07-01", "customers": [
    {"customer_id": f"C{i}", "transactions": [{"ts": "2026-05-01", "amount": 10.0}] * 20}
    for i in range(200)]}


def test_a_large_body_is_parsed_as_a_small_one(client):
    raw = json.dumps(LARGE_BODY, indent=1).encode()
    assert len(raw) > 64 * 1024
    response = client.post("/v1/score", content=raw, headers={
        **SCORE, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["scores"]) == 200


def test_a_large_body_is_parsed_off_the_event_loop_and_a_small_one_on_it(client, monkeypatch):
    import asyncio

    from retain.serving.routes import scores

    on_loop: list[bool] = []
    validate = scores.validate_score_request

    def spy(payload):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return validate(payload)

    monkeypatch.setattr(scores, "validate_score_request", spy)
    small = {"as_of": "2026-07-01", "customers": LARGE_BODY["customers"][:1]}
    for body in (LARGE_BODY, small):
        response = client.post("/v1/score", content=json.dumps(body, indent=1).encode(),
                               headers={**SCORE, "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
    assert on_loop == [False, True]


@pytest.mark.parametrize(("body", "says"), [
    (b'{"as_of": ', "unexpected end of data"),
    ('{"as_of": "2026-07-01", "customers": [{"customer_id": "\u00e9t\u00e9"'.encode("latin-1"),
     "not valid UTF-8"),
    (b"[" * 2000 + b"]" * 2000, "depth limit"),
    # NaN and Infinity are not JSON (Python's own parser would read them).
    (json.dumps(one_customer_body(amount=float("nan"))).encode(), "unexpected character"),
    (json.dumps(one_customer_body(quantity=float("inf"))).encode(), "unexpected character"),
    # Large bodies (over 64 KiB) are parsed piece by piece, with the same outcomes.
    (json.dumps(LARGE_BODY).encode()[:-3], "Expecting"),
    (json.dumps(LARGE_BODY).encode().replace(b"10.0", b"NaN", 1), "NaN is not a JSON value"),
    (json.dumps(LARGE_BODY).encode().replace(b'"C7"', '"\u00e9"'.encode("latin-1"), 1),
     "not valid UTF-8"),
    (json.dumps(LARGE_BODY).encode() + b" x", "extra data"),
])
def test_a_body_that_does_not_parse_is_a_400_problem(client, body, says):
    response = client.post("/v1/score", content=body, headers={
        **SCORE, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:retain:problem:malformed-body"
    assert problem["title"] == "Malformed body" and problem["status"] == 400
    assert says in problem["detail"]
    assert problem["instance"] == f"urn:retain:request:{response.headers['X-Request-ID']}"


def test_a_body_that_is_not_json_is_a_415_problem(client):
    response = client.post("/v1/score", content=b"as_of=2026-07-01", headers={
        **SCORE, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert response.json()["title"] == "Unsupported media type"


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": "100"}, "customers[0].transactions[0].amount"),
    ({"amount": True}, "customers[0].transactions[0].amount"),
    ({"quantity": False}, "customers[0].transactions[0].quantity"),
    ({"quantity": "2"}, "customers[0].transactions[0].quantity"),
])
def test_numbers_given_as_text_or_booleans_are_refused(client, change, field):
    response = client.post("/v1/score", json=one_customer_body(**change), headers=SCORE)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_consents_must_be_booleans(client):
    body = one_customer_body()
    body["customers"][0]["consents"] = {"email": "yes"}
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "customers[0].consents.email"


def test_consents_named_as_a_crm_spells_the_channel_choose_the_same_channel(client, shop,
                                                                            shop_history):
    body = score_body(customers_of(shop_history, 40), shop.as_of)
    spelled = json.loads(json.dumps(body))
    for plain, crm in zip(body["customers"], spelled["customers"], strict=True):
        plain["consents"] = {"email": True, "sms": True, "telegram": False}
        crm["consents"] = {"E-mail": True, " СМС ": True, "Телеграм": False}
    first = client.post("/v1/score", json=body, headers=SCORE).json()["scores"]
    assert any(s["channel"] in ("email", "sms") for s in first)
    assert client.post("/v1/score", json=spelled, headers=SCORE).json()["scores"] == first


STATUS_LINES = [  # (order_id, ts, amount, quantity, status): an Ozon and a Wildberries mix
    ("1", "2026-02-01T10:00:00", 120.0, 1.0, "Доставлен"),
    ("2", "2026-03-01T10:00:00", 80.0, 2.0, None),
    ("3", "2026-03-10T10:00:00", 900.0, 1.0, " Отменён "),
    ("2", "2026-03-12T10:00:00", 40.0, 1.0, "Возврат"),  # written positive, as WB writes it
    ("4", "2026-04-20T10:00:00", 60.0, 1.0, "Продажа"),
    ("5", "2026-05-02T10:00:00", 35.0, 1.0, "Не выкуплен"),
]


def status_body(lines, as_of) -> dict:
    return {"as_of": as_of, "customers": [{"customer_id": "S-1", "transactions": [
        {"ts": ts, "amount": amount, "order_id": order, "quantity": quantity,
         **({"status": status} if status is not None else {})}
        for order, ts, amount, quantity, status in lines]}]}


def test_a_status_per_line_is_read_by_the_batchs_rule(client, shop, settings, tracking,
                                                        tmp_path):
    from retain.features.contract import ReadOptions, load_transactions
    from retain.serving.routes.scores import transactions_frame
    from retain.serving.schemas import ScoreRequest

    as_of = shop.as_of.isoformat()
    # The same lines as the batch reads them from a status column, and as the API frames them.
    path = tmp_path / "status.csv"
    pl.DataFrame(STATUS_LINES, schema=["order_id", "ts", "amount", "quantity", "status"],
                 orient="row").with_columns(customer_id=pl.lit("S-1")).write_csv(path)
    for options in (None, ReadOptions(cancelled_statuses=("не выкуплен",))):
        batch = load_transactions(path, options=options).frame.drop("_row")
        api = transactions_frame(ScoreRequest.model_validate(status_body(STATUS_LINES, as_of)),
                                 options)
        assert api.equals(batch)
    assert batch["order_id"].to_list() == ["1", "2", "2", "4"]
    assert batch["amount"].to_list() == [120.0, 80.0, -40.0, 60.0]
    # Scored as the lines a CRM would send with the status already applied.
    applied = [(o, ts, -a if s == "Возврат" else a, -q if s == "Возврат" else q, None)
               for o, ts, a, q, s in STATUS_LINES if s not in (" Отменён ",)]
    with_status = client.post("/v1/score", json=status_body(STATUS_LINES, as_of), headers=SCORE)
    assert with_status.status_code == 200, with_status.text
    plain = client.post("/v1/score", json=status_body(applied, as_of), headers=SCORE).json()
    assert with_status.json()["scores"] == plain["scores"]
    # The service's settings add values, as --cancelled-status does for the batch.
    with served_app(settings, cancelled_statuses=["Не выкуплен"]) as extended:
        scored = extended.post("/v1/score", json=status_body(STATUS_LINES, as_of),
                               headers=SCORE).json()["scores"]
    without_it = client.post("/v1/score", json=status_body(applied[:-1], as_of),
                             headers=SCORE).json()["scores"]
    assert scored == without_it != plain["scores"]


def test_errors_in_a_large_request_name_their_customer(client):
    body = {"as_of": "2026-07-01", "customers": [
        {"customer_id": f"C{i}", "transactions": [{"ts": "2026-05-01", "amount": 10.0}]}
        for i in range(120)]}
    body["customers"][87]["transactions"][0]["amount"] = "10"
    body["customers"][3]["transactions"][0]["ts"] = 17
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [
        "customers[3].transactions[0].ts", "customers[87].transactions[0].amount"]


def test_bodies_over_the_limit_get_413(settings, tracking):
    with served_app(settings, max_request_bytes=4096) as client:
        big = one_customer_body()
        big["customers"][0]["transactions"] *= 200
        declared = client.post("/v1/score", json=big, headers=SCORE)
        assert declared.status_code == 413 and "4096 bytes" in declared.json()["detail"]
        payload = json.dumps(big).encode()
        chunked = client.post("/v1/score", headers={**SCORE, "Content-Type": "application/json"},
                              content=(payload[i:i + 1000] for i in range(0, len(payload), 1000)))
        assert chunked.status_code == 413
        assert chunked.json()["request_id"] == chunked.headers["X-Request-ID"]
        assert client.post("/v1/score", json=one_customer_body(), headers=SCORE).status_code == 200


# -- stored scores -----------------------------------------------------------------------------


def test_stored_scores_of_one_customer_and_404_for_unknown(client, store_url, registry, shop,
                                                          shop_history):
    batch = registry.trained.pipeline.score(customers_of(shop_history, 20), shop.as_of)
    batch = batch.with_columns(customer_id=pl.when(pl.int_range(pl.len()) == 5)
                               .then(pl.lit("shop/42")).otherwise("customer_id"))
    with ScoreStore(store_url).open() as store:
        older = store.write_run(batch, model_version="0", as_of=shop.as_of)
        run_id = store.write_run(batch, model_version=registry.trained.version, as_of=shop.as_of)
    assert older != run_id
    customer = batch.row(3, named=True)
    found = client.get(f"/v1/customers/{customer['customer_id']}", headers=SCORE)
    assert found.status_code == 200
    row = StoredScorePublic.model_validate(found.json())
    assert row.run_id == run_id and row.model_version == registry.trained.version
    assert row.as_of == shop.as_of and row.next_order_date == customer["next_order_date"]
    assert math.isclose(row.churn_probability, customer["churn_probability"], abs_tol=1e-9)
    slashed = client.get("/v1/customers/shop%2F42", headers=SCORE)
    assert slashed.status_code == 200 and slashed.json()["customer_id"] == "shop/42"
    missing = client.get("/v1/customers/nobody", headers=SCORE)
    assert missing.status_code == 404 and missing.json()["request_id"]


# -- segments and exports ----------------------------------------------------------------------


@pytest.fixture
def decided_run(store_url, registry, shop, shop_history) -> tuple[str, pl.DataFrame]:
    """A stored batch run with decisions, as `retain score --customers ...` writes it."""
    some = customers_of(shop_history, 300)
    decided = score_and_decide(registry.trained.pipeline, some, shop.as_of,
                               rules=default_rules(), consents=shop.customers, lang="ru")
    with ScoreStore(store_url).open() as store:
        run_id = store.write_run(decided, model_version=registry.trained.version,
                                 as_of=shop.as_of)
    return run_id, decided


def walk_customers(client, **params) -> tuple[list[dict], int]:
    """Every customer GET /v1/customers lists with ``params``, following next_cursor."""
    rows: list[dict] = []
    pages = 0
    cursor = None
    while True:
        page = client.get("/v1/customers", headers=EXPORT,
                          params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["customers"]) <= body["limit"]
        rows += body["customers"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, pages


def test_customers_are_listed_page_by_page_once_each(client, decided_run, store_url, registry,
                                                     shop):
    run_id, decided = decided_run
    rows, pages = walk_customers(client, limit=70)
    assert pages == 5  # 300 customers: 4 full pages and one of 20
    assert [r["customer_id"] for r in rows] == sorted(decided["customer_id"])
    assert {r["run_id"] for r in rows} == {run_id}
    first = next(r for r in rows if r["customer_id"] == decided["customer_id"][0])
    expected = decided.row(0, named=True)
    assert first["goal"] == expected["goal"] and first["segment"] == expected["segment"]
    assert first["p_alive"] == pytest.approx(expected["p_alive"])
    # Filters: exactly the matching customers, whatever the page size.
    goal = decided["goal"].mode()[0]
    matching, _ = walk_customers(client, goal=goal, limit=7)
    assert sorted(r["customer_id"] for r in matching) == sorted(
        decided.filter(pl.col("goal") == goal)["customer_id"])
    none, _ = walk_customers(client, channel="none", limit=1000)
    assert len(none) == decided["channel"].null_count()
    stage = decided["lifecycle_stage"][0]
    tier = decided["value_tier"][0]
    both, _ = walk_customers(client, lifecycle_stage=stage, value_tier=tier)
    assert len(both) == decided.filter(pl.col("lifecycle_stage") == stage,
                                       pl.col("value_tier") == tier).height
    # A cursor stays on its run when a newer run completes in between.
    page = client.get("/v1/customers", headers=EXPORT, params={"limit": 100}).json()
    with ScoreStore(store_url).open() as store:
        newer = store.write_run(decided.head(10), model_version=registry.trained.version,
                                as_of=shop.as_of)
    rest = client.get("/v1/customers", headers=EXPORT,
                      params={"limit": 1000, "cursor": page["next_cursor"]}).json()
    assert rest["run_id"] == run_id and len(rest["customers"]) == 200
    assert rest["next_cursor"] is None
    latest = client.get("/v1/customers", headers=EXPORT).json()
    assert latest["run_id"] == newer and len(latest["customers"]) == 10


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"}, {"cursor": "e30"}, {"cursor": "!!!"},
    # A well-formed cursor of a run the store does not have (pruned).
    {"cursor": "eyJyIjoiMDAwIiwiYyI6IkMxIn0"},
])
def test_a_bad_cursor_is_a_400_problem(client, decided_run, params):
    response = client.get("/v1/customers", headers=EXPORT, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:retain:problem:invalid-cursor"


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 1001}, "limit"), ({"limit": 0}, "limit"), ({"goal": "upsell"}, "goal"),
    ({"lifecycle_stage": "zombie"}, "lifecycle_stage"), ({"value_tier": "gold"}, "value_tier"),
    ({"segment": "vip"}, "segment"),
])
def test_customer_list_filters_are_checked(client, params, field):
    response = client.get("/v1/customers", headers=EXPORT, params=params)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_customer_list_without_a_run_is_empty(client):
    body = client.get("/v1/customers", headers=EXPORT).json()
    assert body["customers"] == [] and body["run_id"] is None and body["next_cursor"] is None


def test_stored_scores_carry_the_decision(client, decided_run):
    _, decided = decided_run
    customer = decided.row(7, named=True)
    found = client.get(f"/v1/customers/{customer['customer_id']}", headers=SCORE).json()
    for name in ("segment", "goal", "channel", "send_at", "offer", "reason", "control_group"):
        expected = customer[name]
        assert found[name] == (expected.isoformat() if name == "send_at" and expected else expected)


def test_stored_scores_carry_the_order_history(client, decided_run):
    _, decided = decided_run
    customer = decided.row(7, named=True)
    found = client.get(f"/v1/customers/{customer['customer_id']}", headers=SCORE).json()
    assert found["first_order_date"] == customer["first_order_date"].isoformat()
    assert found["last_order_date"] == customer["last_order_date"].isoformat()
    assert found["orders"] == customer["orders"] >= 1


def test_the_segment_matrix_adds_up_to_the_run(client, decided_run):
    run_id, decided = decided_run
    body = client.get("/v1/segments", headers=EXPORT).json()
    assert body["run_id"] == run_id and body["customers"] == decided.height
    cells = pl.DataFrame(body["cells"])
    assert cells["customers"].sum() == decided.height
    expected = decided.group_by("segment", "goal", "channel").agg(
        pl.len().alias("customers"), pl.col("contact_cost").sum())
    joined = cells.join(expected, on=["segment", "goal", "channel"], nulls_equal=True,
                        suffix="_expected")
    assert joined.height == cells.height == expected.height
    assert (joined["customers"] == joined["customers_expected"]).all()
    np.testing.assert_allclose(joined["contact_cost"], joined["contact_cost_expected"],
                               atol=1e-6)


def test_a_segment_export_streams_its_rows_as_csv(client, decided_run):
    _, decided = decided_run
    segment = decided["segment"].mode().sort()[0]
    response = client.get(f"/v1/segments/{segment}/export?format=csv&sep=;&bom=true",
                          headers=EXPORT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = pl.read_csv(response.content[3:], separator=";", infer_schema=False)
    expected = decided.filter(pl.col("segment") == segment).sort("customer_id")
    assert rows["customer_id"].to_list() == expected["customer_id"].to_list()
    assert rows.columns[:3] == ["customer_id", "as_of", "horizon_days"]
    assert rows["reason"].to_list() == expected["reason"].to_list()  # Cyrillic intact
    assert any("дн." in reason for reason in rows["reason"].to_list())
    only_goal = client.get(f"/v1/segments/{segment}/export?goal=none", headers=EXPORT)
    assert only_goal.status_code == 200
    goal_rows = pl.read_csv(only_goal.content, infer_schema=False)
    assert goal_rows.height == expected.filter(pl.col("goal") == "none").height
    assert client.get("/v1/segments/nope/export", headers=EXPORT).status_code == 404
    assert client.get(f"/v1/segments/{segment}/export?goal=bogus",
                      headers=EXPORT).status_code == 422
    assert client.get(f"/v1/segments/{segment}/export?format=xls",
                      headers=EXPORT).status_code == 422


def test_a_segment_export_offers_xlsx_and_parquet_in_the_readers_language(client, decided_run):
    _, decided = decided_run
    segment = decided["segment"].mode().sort()[0]
    expected = decided.filter(pl.col("segment") == segment).sort("customer_id")
    url = f"/v1/segments/{segment}/export"
    workbook_response = client.get(url, params={"format": "xlsx", "lang": "ru"}, headers=EXPORT)
    assert workbook_response.status_code == 200
    assert workbook_response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert workbook_response.headers["content-disposition"] == (
        f'attachment; filename="retain-{segment}-{decided["as_of"][0]}.xlsx"')
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_response.content)).active
    assert sheet.title == segment and sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows())
    headers = [c.value for c in rows[0]]
    assert headers[0] == "Клиент" and "Цель" in headers
    assert [r[0].value for r in rows[1:]] == expected["customer_id"].to_list()
    goals = {r[headers.index("Цель")].value for r in rows[1:]}
    assert goals == {label("goal", g, "ru") for g in expected["goal"].unique()}
    churn = [r[headers.index("Вероятность ухода за горизонт")] for r in rows[1:]]
    assert all(c.data_type == "n" and c.number_format == "0.0%" for c in churn)

    parquet = client.get(url, params={"format": "parquet"}, headers=EXPORT)
    assert parquet.status_code == 200
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert parquet.headers["content-disposition"].endswith('.parquet"')
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert frame["customer_id"].to_list() == expected["customer_id"].to_list()
    assert frame["churn_probability"].to_list() == expected["churn_probability"].to_list()

    excel = client.get(url, params={"excel": "true", "lang": "en"}, headers=EXPORT)
    assert excel.content.startswith("\ufeff".encode())
    people = pl.read_csv(excel.content[3:], separator=";", decimal_comma=True)
    assert people["Customer"].to_list() == expected["customer_id"].to_list()
    assert people["Churn probability in the horizon"].to_list() == pytest.approx(
        expected["churn_probability"].round(4).to_list(), abs=1e-12)
    assert client.get(url, params={"lang": "de"}, headers=EXPORT).status_code == 422


def test_segments_without_a_run_say_so(client):
    body = client.get("/v1/segments", headers=EXPORT).json()
    assert body == {"run_id": None, "as_of": None, "model_version": None, "customers": 0,
                    "cells": []}
    missing = client.get("/v1/segments/active-vip-stock_up/export", headers=EXPORT)
    assert missing.status_code == 404 and "retain score" in missing.json()["detail"]


# -- operations --------------------------------------------------------------------------------


def test_metrics_expose_latency_counts_predictions_and_model(client, registry, shop, shop_history):
    body = score_body(customers_of(shop_history, 7), shop.as_of)
    assert client.post("/v1/score", json=body, headers=SCORE).status_code == 200
    client.get("/v1/customers/unknown", headers=SCORE)
    response = client.get("/metrics", headers={"X-API-Key": METRICS_KEY})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'retain_http_requests_total{method="POST",route="/v1/score",status="200"} 1.0' in text
    assert 'route="/v1/customers/{customer_id:path}",status="404"' in text
    assert "unknown" not in text
    assert ('retain_http_request_duration_seconds_bucket{le="0.25",method="POST",'
            'route="/v1/score"}') in text
    assert 'retain_predictions_total{result="scored"} 7.0' in text
    version = registry.trained.version
    assert (f'retain_model_info{{alias="champion",trained_as_of="{shop.as_of}",'
            f'version="{version}"}} 1.0') in text
    assert f"retain_model_version {float(registry.trained.version)}" in text
    assert 'retain_model_reloads_total{result="reloaded"} 1.0' in text


def test_a_failure_is_a_500_with_a_request_id_and_no_details(client, monkeypatch, caplog):
    def explode(*_args):
        raise RuntimeError("customer C-1 paid 4321.5: secret detail")

    pipeline = client.app.state.service.holder.current.pipeline
    monkeypatch.setattr(pipeline, "score_features", explode)
    with caplog.at_level(logging.INFO):
        response = client.post("/v1/score", json=one_customer_body(amount=4321.5), headers=SCORE)
    assert response.status_code == 500
    rid = response.headers["X-Request-ID"]
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Internal Server Error",
                               "status": 500, "detail": "internal server error",
                               "instance": f"urn:retain:request:{rid}", "request_id": rid}
    assert "RuntimeError" in caplog.text and "explode" in caplog.text
    for leak in ("C-1", "4321.5", "secret", "Traceback"):
        assert leak not in response.text and leak not in caplog.text


def test_logs_carry_counts_not_customer_ids_amounts_or_keys(client, caplog):
    body = {"as_of": "2026-07-01", "customers": [
        {"customer_id": "person-Ivanova", "transactions": [
            {"ts": "2026-03-01", "amount": 987.65, "product_id": "P-secret"},
            {"ts": "2026-05-01", "amount": 123.45, "order_id": "order-private"}]},
        {"customer_id": "person-Petrov", "transactions": [{"ts": "2026-03-02", "amount": 55.5}]},
    ]}
    with caplog.at_level(logging.DEBUG):
        assert client.post("/v1/score", json=body, headers=SCORE).status_code == 200
        client.get("/v1/customers/person-Ivanova", headers=SCORE)
        client.get("/v1/model", headers={"X-API-Key": "wrong-key-guess"})
    # httpx is the test's own client logging its URLs; everything else is the service side.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "scored 2 customers" in logged
    for secret in ("person-", "987.65", "123.45", "55.5", "P-secret", "order-private",
                   SCORE_KEY, "wrong-key-guess"):
        assert secret not in logged


def test_request_ids_are_echoed_when_sane_and_made_up_otherwise(client):
    sane = client.get("/healthz", headers={"X-Request-ID": "crm-42.a_b"})
    assert sane.headers["X-Request-ID"] == "crm-42.a_b"
    made_up = client.get("/healthz", headers={"X-Request-ID": "x" * 65}).headers["X-Request-ID"]
    assert len(made_up) == 32




# -- an unreachable registry or store ----------------------------------------------------------

DEAD_PASSWORD = "s3cretPassw0rd"


def test_an_unreachable_registry_fails_the_reload_fast_and_masked(client, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ops:{DEAD_PASSWORD}@127.0.0.1:9")
    started = time.perf_counter()
    with caplog.at_level(logging.INFO):
        reload = client.post("/v1/admin/reload", headers=ADMIN)
    assert time.perf_counter() - started < 20  # MLflow's own retries would take minutes
    assert reload.status_code == 503
    detail = reload.json()["detail"]
    assert "is unreachable" in detail and "ops:***@127.0.0.1:9" in detail, detail
    assert client.get("/readyz").status_code == 200  # the old model still serves
    for text in (reload.text, caplog.text):
        assert DEAD_PASSWORD not in text and "Traceback" not in text


@pytest.mark.parametrize("failure, says", [
    ("store", "cannot read the score store at postgresql://u:***@db/retain"),
    ("driver", "the score store is unavailable"),
])
def test_an_unreachable_store_is_a_503_with_retry_after(client, monkeypatch, caplog, failure,
                                                        says):
    import sqlalchemy as sa

    from retain.serving.store import StoreUnavailable

    def down(*_args, **_kwargs):
        if failure == "store":
            raise StoreUnavailable(
                f"cannot read the score store at postgresql://u:{DEAD_PASSWORD}@db/retain")
        raise sa.exc.OperationalError("SELECT", {}, Exception(f"host db user u {DEAD_PASSWORD}"))

    monkeypatch.setattr(client.app.state.service.store, "latest_run", down)
    with caplog.at_level(logging.INFO):
        response = client.get("/v1/segments", headers=EXPORT)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.json()["detail"] == says
    for text in (response.text, caplog.text):
        assert DEAD_PASSWORD not in text and "Traceback" not in text
