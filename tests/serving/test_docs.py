"""/docs and /redoc served entirely by retain: the HTML names no other host, the bundled Swagger
UI and ReDoc files are served, and in a real Chromium with every request to another host
blocked both pages render the API's operations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from retain.serving.main import DOCS_ASSETS_URL, create_app
from tests.processes import launch_chromium, serve_in_thread


@pytest.fixture
def client(settings, no_registry) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_docs_pages_load_everything_from_retain_itself(client):
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # No absolute URL at all: no CDN, no Google fonts, no validator badge.
        assert not re.search(r"(https?:)?//[\w.-]+\.\w", page.text), path
        assert "cdn" not in page.text.lower()
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert asset.startswith(DOCS_ASSETS_URL + "/"), asset
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset
    assert '"validatorUrl": null' in client.get("/docs").text
    assert client.get("/openapi.json").json()["paths"]["/v1/score"]["post"]


@pytest.fixture
def live_server(settings, no_registry) -> Iterator[str]:
    """A real uvicorn server on a free port of 127.0.0.1, in a thread."""
    with serve_in_thread(create_app(settings), "docs-test-server") as base:
        yield base


def test_docs_and_redoc_render_in_chromium_with_other_hosts_blocked(chromium_path, live_server,
                                                                      tmp_path):
    from playwright.sync_api import sync_playwright

    own = urlsplit(live_server).netloc
    left: list[str] = []  # requests to any other host (blocked, and a failure)
    problems: list[str] = []  # console errors (a CSP violation, a script that did not load)

    def only_our_host(route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = launch_chromium(p, chromium_path)
        try:
            context = browser.new_context()
            context.route("**/*", only_our_host)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(f"{live_server}/docs")
            operation = page.locator(".opblock-summary-path", has_text=re.compile(r"^/v1/score$"))
            operation.first.wait_for(state="visible")
            assert page.locator(".opblock").count() >= 8  # every operation, not one
            assert page.get_by_text("/v1/customers/{customer_id}").first.is_visible()
            page.screenshot(path=str(tmp_path / "docs.png"))
            # "Try it out" works under the page's Content-Security-Policy (fetch to our host).
            health = page.locator(".opblock", has=page.locator(
                ".opblock-summary-path", has_text=re.compile(r"^/healthz$")))
            health.locator(".opblock-summary").click()
            health.get_by_role("button", name="Try it out").click()
            health.get_by_role("button", name="Execute").click()
            status = health.locator(".live-responses-table tbody .response-col_status").first
            status.wait_for()
            assert status.inner_text().strip() == "200"

            page.goto(f"{live_server}/redoc")
            page.get_by_text("/v1/score", exact=True).filter(visible=True).first.wait_for(
                state="visible")
            assert page.locator("h2").count() >= 8  # a heading per operation (summaries may change)
            # Every operation is in the side menu, not only the first.
            assert page.locator("[data-item-id^='tag/'], li[data-item-id]").count() >= 8
            page.screenshot(path=str(tmp_path / "redoc.png"))
        finally:
            browser.close()
    assert left == []
    # ReDoc's sidebar shows Redocly's logo from their CDN (and hides it when it fails to load):
    # our Content-Security-Policy stops that request before it leaves, the only one allowed.
    blocked_logo = re.compile(r"^Loading the image 'https://cdn\.redoc\.ly/redoc/logo-mini\.svg' "
                              r"violates the following Content Security Policy directive")
    assert [m for m in problems if not blocked_logo.match(m)] == []
