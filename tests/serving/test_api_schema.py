"""Property-based requests generated from the app's own OpenAPI schema (schemathesis): whatever
a client sends, the service never answers with a server error."""

from __future__ import annotations

import json

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from retain.config import Settings
from serving.main import create_app

# One key holding every scope, so generated requests reach every route's logic.
KEY = "all-scopes-key-0123456789"
KEYS = SecretStr(json.dumps({KEY: ["score", "export", "admin", "metrics"]}))

# The schema is read at collection, from an app that is built but never started (building does
# no I/O); the requests go to the fixture's app, started against the test registry.
schema = schemathesis.openapi.from_dict(create_app(Settings(api_keys=KEYS)).openapi())


@pytest.fixture
def app(settings, tracking) -> FastAPI:
    # schemathesis runs the lifespan (model load, store) on the first request, ends it after.
    return create_app(settings.model_copy(update={"api_keys": KEYS}))


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_no_request_makes_a_server_error(case, app):
    case.call_and_validate(app=app, headers={"X-API-Key": KEY}, checks=[not_a_server_error])
