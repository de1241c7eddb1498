"""Pages for marketers at ``/ui``: the segment x goal x channel matrix of the latest scoring run,
CSV downloads per cell, the served model's quality at a glance and a customer look-up.

Server-rendered HTML (Jinja2 templates in ``serving/templates``), no JavaScript. The API key is
entered once on a form (``POST /ui/login``) and kept in an HttpOnly, SameSite=Strict cookie
limited to ``/ui``; every page checks it through the service's :class:`KeyRing` (constant-time
compare) and needs the ``export`` scope. Everything else is a GET-only read.

Query parameters ``segment``, ``goal`` and ``channel`` filter the matrix and the downloads;
``channel=none`` means customers without a channel (``(none)`` for a missing segment or goal,
which only runs scored without decisions have). Downloads are UTF-8 CSV with a byte-order mark
and ``;`` as the separator (``sep=,`` for commas), so Excel opens Cyrillic intact.

Errors are HTML pages with the request id and never a stack trace; logs get the error's type
and code location only, never a key, a customer id or an amount.
"""

from __future__ import annotations

import inspect
import logging
import re
import traceback
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import polars as pl
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException

from serving.deps import Service, request_id
from serving.export import CHUNK_ROWS, FORMATS, MEDIA_TYPES, export_chunks
from serving.labels import LANGUAGES
from serving.schemas import MAX_ID_LENGTH
from serving.store import RunNotFound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ui", include_in_schema=False)

COOKIE = "retain_ui_key"
SCOPE = "export"
SESSION_SECONDS = 12 * 3600
CELL = ("segment", "goal", "channel")
# How a null travels in a query string (channel: customers nobody can be contacted through).
NULL_TOKEN = {"segment": "(none)", "goal": "(none)", "channel": "none"}
NULL_LABEL = {"segment": "(no segment)", "goal": "(no goal)", "channel": "no channel"}
MAX_PARAM_CHARS = 200
MAX_FORM_BYTES = 8192
# Backtest metrics shown at a glance: (label, task, metric, higher is better, digits shown).
MODEL_METRICS = (
    ("Churn: AUC (who leaves; higher is better)", "churn", "auc", True, 3),
    ("Revenue: Spearman rank correlation (who spends most; higher is better)", "value",
     "spearman", True, 3),
    ("Next order: mean error in days (lower is better)", "timing", "mae_days", False, 1),
    ("Due product: hit rate (in the next order; higher is better)", "due_product", "hit_rate",
     True, 3),
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
    autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


class BadRequest(ValueError):
    """A query parameter the page cannot use; the message is shown to the user."""


# ---------------------------------------------------------------------------------------------
# Formatting (used by the templates)


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u00a0")
    return f"{value:,.{digits}f}".replace(",", "\u00a0")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_templates.filters.update(number=_number, percent=_percent, text=_text)


# ---------------------------------------------------------------------------------------------
# Responses, errors, sessions


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return _page("ui_error.html", status, title=title, message=message,
                 request_id=request_id(request), signed_in=_signed_in(request))


def _where(exc: BaseException) -> str:
    """Where an exception came from: files, lines and functions, never its message."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


def _failure(request: Request, exc: Exception) -> HTMLResponse:
    if isinstance(exc, BadRequest):
        return _error_page(request, 400, "That request could not be used", str(exc))
    rid = request_id(request)
    if isinstance(exc, (ConnectionError, sa.exc.OperationalError)):
        log.error("ui: score store unavailable: %s at %s [request %s]", type(exc).__name__,
                  _where(exc), rid)
        return _error_page(request, 503, "The score store cannot be read right now",
                           "Please try again in a minute. If it keeps failing, tell the team "
                           "that runs retain and give them the request id below.")
    # The message of a data error may quote customer ids or amounts: type and place only.
    log.error("ui: unhandled %s at %s [request %s]", type(exc).__name__, _where(exc), rid)
    return _error_page(request, 500, "Something went wrong",
                       "The page could not be shown. Please try again; if it keeps failing, "
                       "tell the team that runs retain and give them the request id below.")


def _guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Any exception -> an HTML error page (no stack trace, no message of the failure). The
    wrapper keeps the handler's kind: a plain def runs in the threadpool (the store's reads
    block), a coroutine on the event loop."""
    if inspect.iscoroutinefunction(handler):
        async def guarded_async(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException:
                raise  # e.g. the middleware's 413 for a body over the limit
            except Exception as exc:  # noqa: BLE001 - shown as a page, logged without details
                return _failure(request, exc)
        guarded_async.__name__ = handler.__name__
        return guarded_async

    def guarded(request: Request) -> Response:
        try:
            return handler(request)
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - shown as a page, logged without details
            return _failure(request, exc)
    guarded.__name__ = handler.__name__
    return guarded


def _service(request: Request) -> Service:
    return request.app.state.service


def _key_allows(svc: Service, key: str | None) -> bool | None:
    """None: not a configured key; False: a key without the export scope; True: fine."""
    if svc.keyring.open:
        return True
    scopes = svc.keyring.scopes(key)
    if scopes is None:
        return None
    return SCOPE in scopes


def _signed_in(request: Request) -> bool:
    return bool(_key_allows(_service(request), request.cookies.get(COOKIE)))


def _login_form(request: Request, status: int, message: str | None = None) -> HTMLResponse:
    response = _page("ui_login.html", status, message=message, signed_in=False)
    if COOKIE in request.cookies:
        _forget(response, request)
    return response


def _session_refused(request: Request, entry: bool = False) -> HTMLResponse:
    """The login form for a request without a usable session: 200 on the entry page when no
    session was ever set, else 401."""
    if COOKIE in request.cookies:
        return _login_form(request, 401, "Your session has ended or the key is no longer valid. "
                                         "Please enter an API key again.")
    return _login_form(request, 200 if entry else 401,
                       None if entry else "Please enter your API key first.")


def _forget(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/ui", secure=request.url.scheme == "https",
                           httponly=True, samesite="strict")


# ---------------------------------------------------------------------------------------------
# Query parameters


def _param(request: Request, name: str, max_chars: int = MAX_PARAM_CHARS) -> str | None:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_chars:
        raise BadRequest(f"The {name.replace('_', ' ')} given is too long "
                         f"(at most {max_chars} characters).")
    return value.strip()


def _cell_filters(request: Request) -> dict[str, str]:
    """The segment/goal/channel filters as given (tokens; a missing one means any)."""
    return {name: value for name in CELL if (value := _param(request, name)) is not None}


def _store_filters(tokens: dict[str, str]) -> dict[str, str | None]:
    return {name: None if value == NULL_TOKEN[name] else value for name, value in tokens.items()}


def _token(name: str, value: str | None) -> str:
    return NULL_TOKEN[name] if value is None else value


def _filtered(matrix: pl.DataFrame, tokens: dict[str, str]) -> pl.DataFrame:
    for name, value in _store_filters(tokens).items():
        matrix = matrix.filter(pl.col(name).is_null() if value is None
                               else pl.col(name) == value)
    return matrix


# ---------------------------------------------------------------------------------------------
# What the pages show


def _model_summary(svc: Service) -> dict | None:
    served = svc.holder.current
    if served is None:
        return None
    metrics = served.registered.metrics
    rows = []
    for label, task, metric, higher, digits in MODEL_METRICS:
        verdict = model_verdict(metrics, task, metric, higher)
        if verdict is not None:
            rows.append({**verdict, "label": label, "digits": digits})
    return {"version": served.version, "alias": served.alias,
            "trained_as_of": served.pipeline.trained_as_of, "loaded_at": served.loaded_at,
            "horizon_days": getattr(served.pipeline, "horizon_days", None), "metrics": rows}


CHOICE_NAMES = ("simple baseline", "probabilistic model (BTYD)", "LightGBM")
VERDICT_TEXT = {"better": "retain is better", "worse": "retain is worse",
                "tie": "a tie: the difference is within noise",
                None: "not checked against noise (trained before the check existed)"}


def model_verdict(metrics: dict[str, float], task: str, metric: str, higher: bool) -> dict | None:
    """retain's backtest figure for ``task`` beside the best alternative, with the verdict of
    the paired bootstrap logged at training (``vs_baseline.<task>.lo/.hi``): better, worse, or a
    tie when the interval holds zero. Never "better" without an interval. None when the run
    logged neither figure. Shared by /ui and GET /v1/model."""
    ours = metrics.get(f"backtest.{task}.retain.{metric}")
    others = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if (len(parts) == 4 and parts[0] == "backtest" and parts[1] == task
                and parts[3] == metric and parts[2] not in ("retain", "gbm")):
            others[parts[2]] = value
    alternative = metrics.get(f"vs_baseline.{task}.alternative_value")
    best = None
    if alternative is not None:  # the alternative the choice was measured against
        named = [n for n, v in others.items() if v == alternative]
        if f"backtest.{task}.gbm.{metric}" in metrics and metrics[f"backtest.{task}.gbm.{metric}"] == alternative:
            named = ["LightGBM"]
        best = {"name": (named[0] if named else "best alternative").replace("_", " "),
                "value": alternative}
    elif others:
        name = (max if higher else min)(others, key=lambda k: others[k])
        best = {"name": name.replace("_", " "), "value": others[name]}
    if ours is None and best is None:
        return None
    lo, hi = metrics.get(f"vs_baseline.{task}.lo"), metrics.get(f"vs_baseline.{task}.hi")
    verdict = None
    if lo is not None and hi is not None:
        verdict = "better" if lo > 0 else "worse" if hi < 0 else "tie"
    code = metrics.get(f"choice.{task}")
    chosen = CHOICE_NAMES[int(code)] if code is not None and 0 <= code < len(CHOICE_NAMES) else None
    return {"ours": ours, "best": best, "verdict": verdict, "verdict_text": VERDICT_TEXT[verdict],
            "better": verdict == "better", "chosen": chosen,
            "diff": metrics.get(f"vs_baseline.{task}.diff"), "lo": lo, "hi": hi}


def _export_href(tokens: dict[str, str], sep: str | None = None, fmt: str | None = None) -> str:
    query = dict(tokens)
    if sep:
        query["sep"] = sep
    if fmt:
        query["format"] = fmt
    return "/ui/export?" + urlencode(query) if query else "/ui/export"


def _matrix_view(matrix: pl.DataFrame, tokens: dict[str, str]) -> dict:
    options = {}
    for name in CELL:
        values = matrix[name].unique().to_list()
        known = sorted(v for v in values if v is not None)
        choices = [{"value": v, "label": v} for v in known]
        if None in values:
            choices.append({"value": NULL_TOKEN[name], "label": NULL_LABEL[name]})
        given = tokens.get(name)
        if given is not None and given not in {c["value"] for c in choices}:
            choices.append({"value": given, "label": given})  # keep what was asked for visible
        options[name] = choices
    shown = _filtered(matrix, tokens)
    rows = []
    for row in shown.iter_rows(named=True):
        cell = {name: _token(name, row[name]) for name in CELL}
        rows.append({**row, "labels": {name: row[name] if row[name] is not None
                                       else NULL_LABEL[name] for name in CELL},
                     "tokens": cell, "href": _export_href(cell),
                     "xlsx_href": _export_href(cell, fmt="xlsx")})
    totals = {
        "customers": int(shown["customers"].sum()),
        "predicted_revenue": float(shown["predicted_revenue"].sum()),
        "expected_incremental_revenue": float(shown["expected_incremental_revenue"].sum()),
        "contact_cost": float(shown["contact_cost"].sum()),
    }
    return {"options": options, "rows": rows, "totals": totals, "cells": matrix.height,
            "all_href": _export_href(tokens), "all_xlsx_href": _export_href(tokens, fmt="xlsx")}


CUSTOMER_FIELDS = (
    # (label, column, format)
    ("Segment", "segment", "text"),
    ("Lifecycle stage", "lifecycle_stage", "text"),
    ("Value tier", "value_tier", "text"),
    ("Behaviour type", "behaviour_type", "text"),
    ("Goal", "goal", "text"),
    ("Channel", "channel", "text"),
    ("Send on", "send_at", "text"),
    ("Offer", "offer", "text"),
    ("In the control group", "control_group", "text"),
    ("Churn probability", "churn_probability", "percent"),
    ("Probability still a customer", "p_alive", "percent"),
    ("Expected orders in the horizon", "expected_orders", "number"),
    ("Predicted revenue in the horizon", "predicted_revenue", "number"),
    ("Predicted 12-month value (CLV)", "clv_12m", "number"),
    ("Expected next order", "next_order_date", "text"),
    ("Next order, likely between", "next_order_p10", "text"),
    ("… and", "next_order_p90", "text"),
    ("Days overdue", "overdue_days", "number"),
    ("Product due", "due_product_id", "text"),
    ("Product due on", "due_product_date", "text"),
    ("Expected extra revenue from contacting", "expected_incremental_revenue", "number"),
    ("Contact cost", "contact_cost", "number"),
    ("Scores as of", "as_of", "text"),
    ("Horizon, days", "horizon_days", "text"),
    ("Model version", "model_version", "text"),
)


def _lookup(svc: Service, customer_id: str | None) -> dict | None:
    if customer_id is None:
        return None
    row = svc.store.latest(customer_id)
    if row is None:
        return {"customer_id": customer_id, "found": False}
    fields = []
    for label, column, kind in CUSTOMER_FIELDS:
        value = row.get(column)
        shown = (_percent(value) if kind == "percent" and value is not None
                 else _number(value) if kind == "number" else _text(value))
        fields.append({"label": label, "value": shown})
    return {"customer_id": customer_id, "found": True, "reason": row.get("reason"),
            "fields": fields}


def _customer_param(request: Request) -> str | None:
    return _param(request, "customer_id", MAX_ID_LENGTH)


# ---------------------------------------------------------------------------------------------
# Routes


@router.get("")
@_guarded
def home(request: Request) -> Response:
    svc = _service(request)
    if not _signed_in(request):
        return _session_refused(request, entry=True)
    tokens = _cell_filters(request)
    customer_id = _customer_param(request)
    run = svc.store.latest_run()
    view = None
    if run is not None:
        try:
            matrix = svc.store.segment_matrix(run["run_id"])
        except RunNotFound:  # pruned between the two reads: show the newest one
            run = svc.store.latest_run()
            matrix = svc.store.segment_matrix(run["run_id"]) if run else None
        if matrix is not None:
            view = _matrix_view(matrix, tokens)
    return _page("ui_home.html", signed_in=True, model=_model_summary(svc), run=run,
                 view=view, filters=tokens, lookup=_lookup(svc, customer_id),
                 customer_id=customer_id or "")


@router.get("/customers")
@_guarded
def customers(request: Request) -> Response:
    svc = _service(request)
    if not _signed_in(request):
        return _session_refused(request)
    customer_id = _customer_param(request)
    return _page("ui_customer.html", signed_in=True, lookup=_lookup(svc, customer_id),
                 customer_id=customer_id or "")


def _filename_part(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "_"


def _content_disposition(name: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/export")
@_guarded
def export(request: Request) -> Response:
    svc = _service(request)
    if not _signed_in(request):
        return _session_refused(request)
    tokens = _cell_filters(request)
    separator = _param(request, "sep") or ";"
    if separator not in (";", ","):
        raise BadRequest("The separator (sep) must be ; or , (a semicolon or a comma).")
    fmt = _param(request, "format") or "csv"
    if fmt not in FORMATS:
        raise BadRequest("The format must be csv, xlsx (Excel) or parquet.")
    lang = _param(request, "lang")
    if lang is not None and lang not in LANGUAGES:
        raise BadRequest("The language (lang) must be en or ru.")
    excel = _param(request, "excel") in ("1", "true")  # decimal comma, rounded (see export.py)
    run = svc.store.latest_run()
    if run is None:
        return _error_page(request, 404, "No scores yet",
                           "There is no scoring run in the store yet, so there is nothing to "
                           "download. Run `retain score` first.")
    try:
        frames = svc.store.iter_scores(run["run_id"], chunk_size=CHUNK_ROWS,
                                       filters=_store_filters(tokens))
    except RunNotFound:
        return _error_page(request, 409, "The scores changed",
                           "A newer scoring run replaced these scores. Go back to the matrix "
                           "and download again.")
    parts = [_filename_part(tokens.get(name, "all")) for name in CELL]
    name = f"retain-{'-'.join(parts)}-{run['as_of'].isoformat()}.{fmt}"
    rid = request_id(request)

    def counted() -> Iterator[pl.DataFrame]:
        rows = 0
        for frame in frames:
            rows += frame.height
            yield frame
        log.info("ui export: %d rows of run %s, %d filter(s) [request %s]", rows,
                 run["run_id"], len(tokens), rid)

    chunks = export_chunks(counted(), dict(svc.store.empty_frame().schema), fmt=fmt,
                           separator=separator, bom=True, excel=excel,
                           lang=lang,  # type: ignore[arg-type]
                           sheet=tokens.get("segment", "scores"))
    headers = {**SECURITY_HEADERS, "Content-Disposition": _content_disposition(name)}
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/login")
async def login_page() -> Response:
    return RedirectResponse("/ui", status_code=303)


@router.post("/login")
@_guarded
async def login(request: Request) -> Response:
    svc = _service(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _login_form(request, 413, "That form was too large. Paste only the API key.")
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    given = (form.get("api_key") or [""])[0]
    key = given if _key_allows(svc, given) is not None else given.strip()
    allowed = _key_allows(svc, key)
    if allowed is None:
        return _login_form(request, 401, "That API key is not valid. Check it and try again.")
    if not allowed:
        return _login_form(request, 403, "That API key is valid but may not see segments and "
                                         "downloads: it needs the 'export' scope. Ask for a key "
                                         "with that scope.")
    response = RedirectResponse("/ui", status_code=303)
    if not svc.keyring.open:
        response.set_cookie(COOKIE, key, max_age=SESSION_SECONDS, path="/ui",
                            secure=request.url.scheme == "https", httponly=True,
                            samesite="strict")
    log.info("ui: signed in [request %s]", request_id(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui", status_code=303)
    _forget(response, request)
    return response
