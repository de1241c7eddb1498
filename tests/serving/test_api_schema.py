"""The API's contract: the OpenAPI document describes every field and error, and requests
generated from it (schemathesis) get only documented statuses and bodies that match it."""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from retain.config import Settings
from retain.serving.main import create_app

# One key holding every scope, so generated requests reach every route's logic.
KEY = "all-scopes-key-0123456789"
KEYS = SecretStr(json.dumps({KEY: ["score", "export", "admin", "metrics"]}))

# The schema is read at collection, from an app that is built but never started (building does
# no I/O); the requests go to the fixture's app, started against the test registry.
DOCUMENT = create_app(Settings(api_keys=KEYS)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)
OPERATION_IDS = {"score_customers", "list_customers", "get_customer", "get_segments",
                 "export_segment", "get_model", "reload_model", "healthz", "readyz", "metrics",
                 "get_effect", "get_channels"}


def fields(document: dict):
    """(where, property schema, the schema's own examples) of every field of every schema
    and parameter in the document."""
    for name, component in document["components"]["schemas"].items():
        examples = component.get("examples", [])
        for field, prop in component.get("properties", {}).items():
            yield f"{name}.{field}", prop, [e for e in examples if field in e]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header":
                    continue  # the API key, described by its security scheme
                yield f"{method} {path} ?{parameter['name']}", parameter, []


def test_every_field_has_a_description_and_an_example():
    undocumented = [where for where, prop, _ in fields(DOCUMENT) if not prop.get("description")]
    without_example = [where for where, prop, examples in fields(DOCUMENT)
                       if not (prop.get("examples") or prop.get("example") is not None
                               or prop.get("schema", {}).get("examples") or examples
                               or "default" in prop.get("schema", prop)
                               or prop.get("schema", {}).get("enum"))]
    assert undocumented == []
    assert len(list(fields(DOCUMENT))) > 130
    assert without_example == []


def test_every_operation_has_a_stable_id_and_documents_its_errors_as_problems():
    seen = set()
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            seen.add(operation["operationId"])
            for status, response in operation["responses"].items():
                if int(status) >= 400 and (path, status) not in {("/readyz", "503"),
                                                                 ("/v1/admin/reload", "503")}:
                    assert list(response["content"]) == ["application/problem+json"], \
                        (method, path, status)
            statuses = set(operation["responses"])
            assert {"413", "431", "500"} <= statuses, (method, path)
            if operation.get("security") or "X-API-Key" in json.dumps(operation):
                assert {"401", "403"} <= statuses, (method, path)
    assert seen == OPERATION_IDS
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_categories_are_enums_in_the_document():
    score = DOCUMENT["components"]["schemas"]["StoredScorePublic"]["properties"]
    goal = score["goal"]["anyOf"][0]
    assert goal["enum"] == ["onboard", "cross_sell", "replenish", "reactivate", "win_back",
                            "keep_vip", "none", "control"]
    assert score["lifecycle_stage"]["anyOf"][0]["enum"] == ["new", "active", "at_risk",
                                                            "sleeping", "lost"]
    assert score["value_tier"]["anyOf"][0]["enum"] == ["vip", "high", "mid", "low"]
    assert score["behaviour_type"]["anyOf"][0]["enum"] == ["stock_up", "hedonist", "occasional"]
    assert "pattern" in score["offer"]["anyOf"][0] and "pattern" in score["segment"]["anyOf"][0]
    transaction = DOCUMENT["components"]["schemas"]["TransactionIn"]["properties"]
    assert transaction["amount"]["type"] == "number"


@pytest.fixture
def app(settings, tracking) -> FastAPI:
    # schemathesis runs the lifespan (model load, store) on the first request, ends it after.
    return create_app(settings.model_copy(update={"api_keys": KEYS}))


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_generated_requests_get_documented_statuses_and_bodies(case, app):
    case.call_and_validate(app=app, headers={"X-API-Key": KEY}, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance])
