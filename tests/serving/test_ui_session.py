"""The page's sign-in is a server-side session: the cookie holds a signed session id, never the
key; signing out ends the session on the server (a copied cookie stops working); a session ends
when its key leaves the configuration; sign-ins posted from another origin are refused (login
CSRF), through TestClient and in a real Chromium."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from html import unescape

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.pool import NullPool

from retain.config import Settings
from retain.serving import sessions
from retain.serving.main import create_app
from retain.serving.routes import ui
from retain.serving.security import KeyRing
from tests.processes import launch_chromium, serve_in_thread
from tests.serving.conftest import EXPORT_KEY, KEYS, SCORE_KEY

OWN = "http://testserver"


@pytest.fixture
def ui_settings(settings, monkeypatch) -> Settings:
    def missing(alias: str) -> str:  # no model needed, nothing touches MLflow
        raise LookupError(f"no alias {alias!r} (stubbed in tests)")

    monkeypatch.setattr("retain.serving.deps.alias_version", missing)
    return settings


def app_client(settings: Settings, base_url: str = OWN) -> TestClient:
    return TestClient(create_app(settings), base_url=base_url, follow_redirects=False)


@pytest.fixture
def client(ui_settings) -> Iterator[TestClient]:
    with app_client(ui_settings) as test_client:
        yield test_client


def sign_in(client: TestClient, key: str = EXPORT_KEY, **headers: str) -> str:
    client.cookies.clear()
    response = client.post("/ui/login", data={"api_key": key},
                           headers={"Origin": OWN, **headers})
    assert response.status_code == 303, response.text
    return client.cookies[ui.COOKIE]


def signed_in(client: TestClient, cookie: str | None = None) -> bool:
    if cookie is not None:
        client.cookies.clear()
        client.cookies.set(ui.COOKIE, cookie)
    page = client.get("/ui")
    return 'name="api_key"' not in page.text


def session_rows(settings: Settings) -> list[tuple]:
    """The sessions table as stored (SQLite or PostgreSQL); empty before the first session."""
    engine = sa.create_engine(settings.store_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(sessions.TABLE):
                return []
            return [tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {sessions.TABLE}"))]
    finally:
        engine.dispose()


def test_the_cookie_holds_a_signed_session_id_and_the_server_never_stores_the_key(
        client, ui_settings):
    cookie = sign_in(client)
    assert EXPORT_KEY not in cookie and len(cookie) >= 40
    session_id, signature = cookie.rsplit(".", 1)
    assert len(session_id) >= 40 and signature
    rows = session_rows(ui_settings)
    assert len(rows) == 1
    stored = " ".join(map(str, rows[0]))
    assert EXPORT_KEY not in stored and session_id not in stored  # only a hash of the id
    assert signed_in(client)
    # A session id with a forged signature, and a bare id, are refused.
    for forged in (f"{session_id}.{'A' * len(signature)}", session_id, "garbage"):
        client.cookies.clear()
        client.cookies.set(ui.COOKIE, forged)
        page = client.get("/ui")
        assert page.status_code == 401 and "no longer valid" in page.text


def test_signing_out_ends_the_session_so_a_copied_cookie_stops_working(client, ui_settings):
    cookie = sign_in(client)
    with app_client(ui_settings) as thief:  # e.g. a cookie copied off the machine
        assert signed_in(thief, cookie)
        out = client.post("/ui/logout", headers={"Origin": OWN})
        assert out.status_code == 303
        assert ui.COOKIE not in client.cookies
        assert session_rows(ui_settings) == []
        assert not signed_in(thief, cookie)
        assert thief.get("/ui/export").status_code == 401


def test_a_session_is_seen_by_every_worker_and_survives_a_restart(ui_settings):
    with app_client(ui_settings) as first:
        cookie = sign_in(first)
        with app_client(ui_settings) as second:  # another worker on the same store
            assert signed_in(second, cookie)
    with app_client(ui_settings) as restarted:
        assert signed_in(restarted, cookie)


def test_sessions_on_sqlite_and_postgresql_are_shared_by_workers_and_end_everywhere(
        ui_settings, store_db_url):
    settings = ui_settings.model_copy(update={"store_url": store_db_url})
    with app_client(settings) as first, app_client(settings) as second:
        # Both workers make the tables and the secret at once on first use: one secret wins.
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def first_use(client: TestClient) -> None:
            barrier.wait()
            statuses.append(client.get("/ui", headers={"Cookie": f"{ui.COOKIE}=x.y"}).status_code)

        threads = [threading.Thread(target=first_use, args=(c,)) for c in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [401, 401]  # refused cleanly, neither failed on the other's tables
        cookie = sign_in(first)
        assert signed_in(second, cookie)  # the other worker verifies and finds it
        assert len(session_rows(settings)) == 1
        assert second.post("/ui/logout", headers={"Origin": OWN}).status_code == 303
        assert not signed_in(first, cookie)
        assert session_rows(settings) == []


def test_a_session_ends_when_its_key_is_removed_or_loses_the_scope(client, ui_settings):
    cookie = sign_in(client)
    svc = client.app.state.service
    configured = svc.keyring
    svc.keyring = KeyRing(SecretStr(json.dumps({SCORE_KEY: ["score"]})))  # key removed
    page = client.get("/ui")
    assert page.status_code == 401 and "no longer valid" in page.text
    assert session_rows(ui_settings) == []  # ended, not only refused
    svc.keyring = configured  # the key back: its old session stays ended
    assert not signed_in(client, cookie)

    cookie = sign_in(client)
    svc.keyring = KeyRing(SecretStr(json.dumps({**KEYS, EXPORT_KEY: ["score"]})))
    assert not signed_in(client, cookie)  # still configured, but without 'export'

    # A restart with the key gone from RETAIN_API_KEYS.
    svc.keyring = configured
    cookie = sign_in(client)
    revoked = ui_settings.model_copy(
        update={"api_keys": SecretStr(json.dumps({SCORE_KEY: ["score"]}))})
    with app_client(revoked) as restarted:
        assert not signed_in(restarted, cookie)
    assert session_rows(ui_settings) == []


def test_an_expired_session_is_refused_and_dropped(client, ui_settings, monkeypatch):
    cookie = sign_in(client)
    later = time.time() + ui.SESSION_SECONDS + 1
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    assert not signed_in(client, cookie)
    sign_in(client)  # a new sign-in clears expired sessions
    assert len(session_rows(ui_settings)) == 1


def test_a_sign_in_posted_from_another_origin_is_refused(client, ui_settings):
    foreign = [{"Origin": "https://evil.example"}, {"Origin": "null"},
               {"Origin": "http://testserver:8080"}, {"Origin": "https://testserver"},
               {"Referer": "https://evil.example/login-csrf.html"}]
    for headers in foreign:
        response = client.post("/ui/login", data={"api_key": EXPORT_KEY}, headers=headers)
        assert response.status_code == 403, headers
        assert "another site" in unescape(response.text)
        assert "set-cookie" not in response.headers
    # In the browser's language, like every other sign-in message.
    russian = client.post("/ui/login", data={"api_key": EXPORT_KEY},
                          headers={"Origin": "https://evil.example", "Accept-Language": "ru"})
    assert russian.status_code == 403
    assert "Эта форма отправлена с другого сайта" in unescape(russian.text)
    assert session_rows(ui_settings) == []
    # The server's own origin, by Origin or (without one) by Referer; a non-browser client
    # sends neither.
    sign_in(client)
    sign_in(client, Origin="http://testserver:80")
    client.post("/ui/login", data={"api_key": EXPORT_KEY},
                headers={"Referer": f"{OWN}/ui?goal=reactivate"})
    assert client.post("/ui/login", data={"api_key": EXPORT_KEY}).status_code == 303
    # Signing out from another site is refused too (and ends nothing).
    assert client.post("/ui/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert signed_in(client)


def test_over_https_the_session_cookie_is_secure_strict_and_limited_to_ui(ui_settings):
    with app_client(ui_settings, base_url="https://retain.example") as client:
        response = client.post("/ui/login", data={"api_key": EXPORT_KEY},
                               headers={"Origin": "https://retain.example"})
        assert response.status_code == 303
        attributes = {p.strip().lower() for p in response.headers["set-cookie"].split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/ui"} <= attributes
        assert client.post("/ui/login", data={"api_key": EXPORT_KEY},
                           headers={"Origin": "http://retain.example"}).status_code == 403


def test_the_old_cookie_holding_the_key_is_cleared_and_never_accepted(client):
    client.cookies.set(ui.LEGACY_COOKIE, EXPORT_KEY)
    page = client.get("/ui")
    assert 'name="api_key"' in page.text
    response = client.post("/ui/login", data={"api_key": EXPORT_KEY}, headers={"Origin": OWN})
    cleared = [c for c in response.headers.get_list("set-cookie")
               if c.startswith(f"{ui.LEGACY_COOKIE}=")]
    assert cleared and "max-age=0" in cleared[0].lower()


# -- a real browser --------------------------------------------------------------------------------


@pytest.fixture
def live_server(ui_settings) -> Iterator[str]:
    with serve_in_thread(create_app(ui_settings), "session-test-server") as base:
        yield base


def test_in_chromium_a_login_csrf_from_another_site_fails_and_our_own_form_works(
        chromium_path, live_server, ui_settings):
    from playwright.sync_api import sync_playwright

    attacker = ("<html><body><form id=f method=post action='" + live_server + "/ui/login'>"
                f"<input name=api_key value='{EXPORT_KEY}'></form>"
                "<script>document.getElementById('f').submit()</script></body></html>")
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium_path)
        try:
            context = browser.new_context()
            # Another site, served by the browser itself: it auto-posts the attacker's key.
            context.route("http://evil.test/**", lambda route: route.fulfill(
                status=200, content_type="text/html", body=attacker))
            page = context.new_page()
            page.set_default_timeout(15_000)
            with page.expect_response(f"{live_server}/ui/login") as posted:
                page.goto("http://evil.test/csrf.html")
            assert posted.value.status == 403
            assert not [c for c in context.cookies() if c["name"] == ui.COOKIE]
            assert session_rows(ui_settings) == []

            page.goto(f"{live_server}/ui")
            page.fill("#api_key", EXPORT_KEY)
            page.click("form[action='/ui/login'] button")
            page.wait_for_selector("header form button")
            cookies = [c for c in context.cookies() if c["name"] == ui.COOKIE]
            assert len(cookies) == 1 and EXPORT_KEY not in cookies[0]["value"]
            assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
            assert cookies[0]["path"] == "/ui"
            assert len(session_rows(ui_settings)) == 1

            page.click("header form button")  # sign out
            page.wait_for_selector("#api_key")
            assert session_rows(ui_settings) == []
        finally:
            browser.close()


def test_with_the_database_down_the_page_says_so_instead_of_failing(client, monkeypatch):
    cookie = sign_in(client)

    def down(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(client.app.state.service.store, "write_connection", down)
    monkeypatch.setattr(type(client.app.state.service.store), "engine", property(down))
    page = client.get("/ui", headers={"Cookie": f"{ui.COOKIE}={cookie}"})
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    out = client.post("/ui/logout", headers={"Origin": OWN})
    assert out.status_code == 503 and "text/html" in out.headers["content-type"]
    assert "connection refused" not in page.text + out.text
