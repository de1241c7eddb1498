"""The retain HTTP service: ``create_app(settings)``, run by ``retain serve`` (uvicorn).

At start the service opens the score store and loads the model the registry alias (default
``champion``) points at; while none can be loaded it still starts, ``/readyz`` answers 503 and
the background check keeps trying. Every ``RETAIN_RELOAD_INTERVAL`` seconds (default 60) it
checks whether the alias moved and swaps the new version in; ``POST /v1/admin/reload`` does the
same at once. A failed reload keeps the previous model.

Every response carries ``X-Request-ID`` (the client's, when it sent a sane one). Errors are JSON
with that id; an unexpected one is a 500 without any detail of the failure, and the log gets
its type and code location only: messages of data errors may quote customer ids or amounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path

import fastapi_offline
import orjson
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retain.config import Settings
from retain.decisions.rules import load_rules
from retain.features.redaction import install_log_masking, mask_credentials
from retain.models.registry import RegistryUnreachableError, tracking_uri
from retain.serving.deps import (
    COMMON_ERRORS,
    ERROR_TEXT,
    REQUEST_ID_KEY,
    RETRY_AFTER_SECONDS,
    VALIDATION_TYPE,
    ModelHolder,
    ProblemError,
    Service,
    request_id,
)
from retain.serving.metrics import UNMATCHED_ROUTE, ServiceMetrics
from retain.serving.routes import ROUTERS
from retain.serving.routes.report import router as report_router
from retain.serving.routes.ui import router as ui_router
from retain.serving.schemas import PROBLEM_MEDIA_TYPE, ProblemPublic, ScoreRequest
from retain.serving.security import KeyRing
from retain.serving.store import ScoreStore, StoreUnavailable

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 50
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DESCRIPTION = """Churn, value and next-order predictions for retention marketing.

Authenticate with an API key in the `X-API-Key` header (`RETAIN_API_KEYS`). Scopes: `score`
(scoring with decisions, stored scores, model info), `export` (the segment matrix and
exports), `admin` (model reload),
`metrics` (`/metrics`). `/healthz` and `/readyz` need no key.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service. Raises AuthConfigError when no API key is configured (and
    ``RETAIN_ALLOW_NO_AUTH`` is not set): refusing to start beats serving without keys."""
    install_log_masking()
    # Large bodies are parsed in a worker thread; a shorter GIL switch interval (5 ms by
    # default) lets the event loop take its turn sooner, so /healthz and small requests wait
    # less meanwhile (measured in benchmarks/api.py --large-bodies-only).
    sys.setswitchinterval(0.001)
    settings = settings or Settings()
    metrics = ServiceMetrics()
    state = Service(
        settings=settings,
        keyring=KeyRing(settings.api_keys, allow_no_auth=settings.allow_no_auth),
        metrics=metrics,
        holder=ModelHolder(settings.model_alias, metrics),
        store=ScoreStore(settings.store_url),
        rules=load_rules(settings.rules),
    )
    app = FastAPI(title="retain", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # ours below: FastAPI's load from a CDN
    app.state.service = state
    add_offline_docs(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(ui_router)
    app.include_router(report_router)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ProblemError, problem_error)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, unavailable_error)
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(ServiceMiddleware, metrics=metrics,
                       max_body_bytes=settings.max_request_bytes)
    return app


# Swagger UI and ReDoc as released in fastapi-offline, served by retain itself: the docs work
# behind a firewall or without internet, and no third party learns who reads them.
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/docs/static"
DOCS_HEADERS = {
    # Only our own files may load; the pages' one inline script starts Swagger UI. ReDoc runs
    # its search in a blob: worker and embeds fonts and icons as data: URLs.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles from
    ``/docs/static``, never a CDN."""
    assert app.openapi_url is not None
    spec = app.openapi_url
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{spec}", title=f"{app.title} - API documentation",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            # null: no badge fetched from validator.swagger.io
            swagger_ui_parameters={"validatorUrl": None})
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{spec}", title=f"{app.title} - API reference",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png", with_google_fonts=False)
        page.headers.update(DOCS_HEADERS)
        return page


def problem_openapi(app: FastAPI) -> dict:
    """FastAPI's OpenAPI document with every error as problem details
    (``application/problem+json``, schema ``ProblemPublic``), FastAPI's own 422 schemas
    replaced, and the bodies routes parse themselves (``openapi_extra``) described."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description,
                      routes=app.routes, tags=app.openapi_tags)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    template = "#/components/schemas/{model}"
    for model in (ProblemPublic, ScoreRequest):
        schema = model.model_json_schema(ref_template=template)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem_ref = {"$ref": template.format(model="ProblemPublic")}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in COMMON_ERRORS:
                responses.setdefault(str(code), {"description": ERROR_TEXT[code]})
            for code, response in responses.items():
                content = response.get("content", {})
                own = content.get("application/json", {}).get("schema", {})
                if int(code) >= 400 and (not content or own == problem_ref
                                         or "HTTPValidationError" in str(own)):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
                    if code == "422":
                        response["description"] = ERROR_TEXT[422]
    app.openapi_schema = doc
    return doc


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc: Service = app.state.service
    await asyncio.to_thread(svc.store.open)
    # The model loads in the background: the service listens at once (/healthz answers, and
    # /readyz says 503 until a model is in), even while the registry does not answer; the
    # task keeps trying, then follows the alias. A local registry (a file) cannot hang, so
    # its first load is awaited: the service then starts ready.
    loader = asyncio.create_task(svc.holder.keep_loaded(
        svc.settings.reload_interval, svc.settings.load_retry_interval))
    if not registry_is_remote():
        await svc.holder.first_attempt.wait()
    try:
        yield
    finally:
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
        svc.store.close()


def registry_is_remote() -> bool:
    """Whether the registry is a server (which may not answer) rather than a local file."""
    return tracking_uri().lower().startswith(("http://", "https://", "databricks"))


def _field(loc: tuple | list) -> str:
    """``("body", "customers", 3, "amount")`` -> ``customers[3].amount``."""
    text = ""
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return (text or str(loc[0])) if loc else ""


def _field_error(error: dict) -> dict:
    if error["type"] == "json_invalid":  # loc is ("body", character offset), not a field
        reason = error.get("ctx", {}).get("error", "")
        return {"field": "body", "loc": ["body"], "type": "json_invalid",
                "msg": f"invalid JSON at character {error['loc'][-1]}: {reason}"}
    return {"field": _field(error["loc"]), "loc": list(error["loc"]), "msg": error["msg"],
            "type": error["type"]}


def problem(status: int, detail: str, rid: str, *, type_: str = "about:blank",
            title: str | None = None, headers: dict[str, str] | None = None,
            **extra: object) -> Response:
    """An RFC 9457 problem details response: the one shape of every error this service gives."""
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status,
            "detail": detail, "instance": f"urn:retain:request:{rid}", "request_id": rid,
            **extra}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                    headers=headers)


async def problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem(exc.status, exc.detail, request_id(request), type_=exc.type, title=exc.title)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    # No "input" echoed back: it may be megabytes, and it is the client's own data anyway.
    fields = [_field_error(e) for e in errors[:MAX_REPORTED_ERRORS]]
    log.info("422: %d validation error(s) [request %s]", len(errors), request_id(request))
    named = ", ".join(dict.fromkeys(f["field"] for f in fields[:5]))
    more = ", ..." if len(errors) > 5 else ""
    noun = "field" if len(errors) == 1 else "fields"
    return problem(422, f"{len(errors)} invalid {noun}: {named}{more}", request_id(request),
                   type_=VALIDATION_TYPE, title="Invalid request", errors=fields,
                   errors_total=len(errors))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), request_id(request), headers=exc.headers)


UNAVAILABLE: tuple[type[Exception], ...] = (StoreUnavailable, RegistryUnreachableError,
                                            sa.exc.OperationalError)


async def unavailable_error(request: Request, exc: Exception) -> Response:
    """The registry or the score store does not answer: 503 with Retry-After, one masked
    sentence and never a stack trace (a database driver's message may name hosts and users,
    so only retain's own sentences are passed on)."""
    if isinstance(exc, StoreUnavailable | RegistryUnreachableError):
        detail = mask_credentials(str(exc).splitlines()[0])
    else:
        detail = "the score store is unavailable"
    log.warning("503: %s [request %s]", detail, request_id(request))
    return problem(503, detail, request_id(request), headers={"Retry-After": RETRY_AFTER_SECONDS})


def _where(exc: BaseException) -> str:
    """Where an exception came from: files, lines and functions, never its message."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


class ServiceMiddleware:
    """Request id, body size limit, access log and metrics for every request, and the
    catch-all for errors.

    Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task or body buffering per request.
    The size limit is ours rather than FastAPI's ``max_body_size`` so that every 413 is the
    same JSON error with a request id.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = rid
        status = 500
        started = False
        received = 0
        too_large = f"request body over {self.max_body_bytes} bytes (RETAIN_MAX_REQUEST_BYTES)"

        async def limited_receive() -> Message:
            # A body without Content-Length (chunked) is counted as it arrives; FastAPI
            # passes an HTTPException raised while it reads the body on to our handler.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise StarletteHTTPException(413, too_large)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        begin = time.perf_counter()
        try:
            declared = headers.get(b"content-length", b"")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                # Refused before reading a byte of it.
                await problem(413, too_large, rid)(scope, receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except Exception as exc:
            log.error("500: unhandled %s at %s [request %s]", type(exc).__name__, _where(exc), rid)
            if started:
                raise  # too late for a clean answer: let the server drop the connection
            response = problem(500, "internal server error", rid)
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - begin
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED_ROUTE)
            self.metrics.observe_request(scope["method"], template, status, elapsed)
            log.info("%s %s %d %.1f ms [request %s]", scope["method"], template, status,
                     elapsed * 1000, rid)
