"""Pages for marketers at ``/ui``: the segment x goal x channel matrix of the latest scoring run,
CSV downloads per cell, the served model's quality at a glance and a customer look-up.

Server-rendered HTML (Jinja2 templates in ``serving/templates``), no JavaScript. The API key is
entered once on a form (``POST /ui/login``, refused with 403 unless its Origin, or Referer, is
this server's own: no login CSRF); it starts a server-side session (serving/sessions.py) and the
browser keeps only the signed session id, in an HttpOnly, SameSite=Strict cookie limited to
``/ui`` (Secure under https). Every page looks the session up and needs the ``export`` scope of
its key in the running configuration; ``POST /ui/logout`` ends the session on the server, so a
copied cookie stops working. Everything else is a GET-only read.

Query parameters ``segment``, ``goal`` and ``channel`` filter the matrix and the downloads;
``channel=none`` means customers without a channel (``(none)`` for a missing segment or goal,
which only runs scored without decisions have). Downloads are UTF-8 CSV with a byte-order mark
and ``;`` as the separator (``sep=,`` for commas), so Excel opens Cyrillic intact.

Errors are HTML pages with the request id and never a stack trace; logs get the error's type
and code location only, never a key, a customer id or an amount.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import re
import traceback
from collections.abc import Callable, Iterator
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import polars as pl
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from retain.decisions.segments import LIFECYCLE_STAGES, VALUE_TIERS
from retain.serving import charts
from retain.serving.deps import Service, request_id
from retain.serving.export import CHUNK_ROWS, FORMATS, MEDIA_TYPES, export_chunks
from retain.serving.labels import LANGUAGES, Language, column_help, column_label, label
from retain.serving.schemas import MAX_ID_LENGTH
from retain.serving.security import same_origin
from retain.serving.sessions import UISessions
from retain.serving.store import RunNotFound
from retain.serving.ui_text import text

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ui", include_in_schema=False)

COOKIE = "retain_ui_session"
# Before sessions the cookie held the API key itself: cleared wherever it is still seen.
LEGACY_COOKIE = "retain_ui_key"
# The page's language: ``?lang=ru`` on any view, remembered in this cookie for a year.
LANG_COOKIE = "retain_ui_lang"
LANG_SECONDS = 365 * 24 * 3600
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
    # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with the
    # login form, which the Origin check must refuse; other sites still get no Referer.
    "Referrer-Policy": "same-origin",
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
        return _t("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u00a0")
    return f"{value:,.{digits}f}".replace(",", "\u00a0")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _t("yes" if value else "no")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_templates.filters.update(number=_number, percent=_percent, text=_text)


# ---------------------------------------------------------------------------------------------
# Language: every view speaks English or Russian. The request being answered is kept in a
# context variable by _guarded, so pages and error pages find its language without every helper
# passing the request along.

_REQUEST: contextvars.ContextVar[Request | None] = contextvars.ContextVar("ui_request",
                                                                          default=None)


def _language(request: Request | None) -> Language:
    """``?lang=`` if given, else the remembered choice, else the browser's first preference."""
    if request is None:
        return "en"
    for given in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if given in LANGUAGES:
            return given  # type: ignore[return-value]
    accept = request.headers.get("accept-language", "").strip().lower()
    return "ru" if accept.startswith("ru") else "en"


def _lang() -> Language:
    return _language(_REQUEST.get())


def _t(key: str, **values: Any) -> str:
    return text(key, _lang(), **values)


def _remember_language(request: Request, response: Response) -> Response:
    given = request.query_params.get("lang")
    if given in LANGUAGES and request.cookies.get(LANG_COOKIE) != given:
        response.set_cookie(LANG_COOKIE, given, max_age=LANG_SECONDS, path="/ui",
                            secure=request.url.scheme == "https", httponly=True, samesite="lax")
    return response


def _language_links(request: Request | None, signed_in: bool) -> list[tuple[str, str, str]]:
    """(code, name, href) per language: the same view and query, in that language (the query
    only for a signed-in GET: a sign-in form does not echo what was asked for)."""
    same = request is not None and request.method == "GET" and signed_in
    path = request.url.path if same else "/ui"
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] if same else []
    return [(code, text(f"lang.{code}", code), f"{path}?{urlencode([*query, ('lang', code)])}")
            for code in LANGUAGES]


# ---------------------------------------------------------------------------------------------
# Responses, errors, sessions


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    request = _REQUEST.get()
    lang = _language(request)
    words = {"lang": lang, "t": partial(text, lang=lang), "languages": _language_links(request, bool(context.get("signed_in"))),
             "label": partial(label, lang=lang), "column_label": partial(column_label, lang=lang),
             "column_help": partial(column_help, lang=lang)}
    html = _templates.get_template(template).render(**words, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    try:
        signed_in = _signed_in(request)
    except Exception:  # noqa: BLE001 - the sessions' database may be what failed: still a page
        signed_in = False
    return _page("ui_error.html", status, title=title, message=message,
                 request_id=request_id(request), signed_in=signed_in)


def _where(exc: BaseException) -> str:
    """Where an exception came from: files, lines and functions, never its message."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


def _failure(request: Request, exc: Exception) -> HTMLResponse:
    if isinstance(exc, BadRequest):
        return _error_page(request, 400, _t("error.bad_request"), str(exc))
    rid = request_id(request)
    if isinstance(exc, (ConnectionError, sa.exc.OperationalError)):
        log.error("ui: score store unavailable: %s at %s [request %s]", type(exc).__name__,
                  _where(exc), rid)
        return _error_page(request, 503, _t("error.unavailable"), _t("error.unavailable_text"))
    # The message of a data error may quote customer ids or amounts: type and place only.
    log.error("ui: unhandled %s at %s [request %s]", type(exc).__name__, _where(exc), rid)
    return _error_page(request, 500, _t("error.failed"), _t("error.failed_text"))


def _guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Any exception -> an HTML error page (no stack trace, no message of the failure). The
    wrapper keeps the handler's kind: a plain def runs in the threadpool (the store's reads
    block), a coroutine on the event loop."""
    if inspect.iscoroutinefunction(handler):
        async def guarded_async(request: Request) -> Response:
            current = _REQUEST.set(request)
            try:
                return _remember_language(request, await handler(request))
            except HTTPException:
                raise  # e.g. the middleware's 413 for a body over the limit
            except Exception as exc:  # noqa: BLE001 - shown as a page, logged without details
                return _remember_language(request, _failure(request, exc))
            finally:
                _REQUEST.reset(current)
        guarded_async.__name__ = handler.__name__
        return guarded_async

    def guarded(request: Request) -> Response:
        current = _REQUEST.set(request)
        try:
            return _remember_language(request, handler(request))
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - shown as a page, logged without details
            return _remember_language(request, _failure(request, exc))
        finally:
            _REQUEST.reset(current)
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


def _sessions(request: Request) -> UISessions:
    state = request.app.state
    if getattr(state, "ui_sessions", None) is None:
        state.ui_sessions = UISessions(_service(request), SCOPE, SESSION_SECONDS)
    return state.ui_sessions


def _signed_in(request: Request) -> bool:
    """A live session whose key (still configured) has the export scope. Looked up once per
    request: the database read blocks, so from a coroutine only via the threadpool."""
    if _service(request).keyring.open:
        return True
    cached = getattr(request.state, "ui_signed_in", None)
    if cached is None:
        cached = _sessions(request).valid(request.cookies.get(COOKIE))
        request.state.ui_signed_in = cached
    return cached


def _login_form(request: Request, status: int, message: str | None = None) -> HTMLResponse:
    response = _page("ui_login.html", status, message=message, signed_in=False)
    if COOKIE in request.cookies or LEGACY_COOKIE in request.cookies:
        _forget(response, request)
    return response


def _session_refused(request: Request, entry: bool = False) -> HTMLResponse:
    """The login form for a request without a usable session: 200 on the entry page when no
    session was ever set, else 401."""
    if COOKIE in request.cookies:
        return _login_form(request, 401, _t("login.ended"))
    return _login_form(request, 200 if entry else 401,
                       None if entry else _t("login.first"))


def _forget(response: Response, request: Request) -> None:
    for name in (COOKIE, LEGACY_COOKIE):
        if name in request.cookies or name == COOKIE:
            response.delete_cookie(name, path="/ui", secure=request.url.scheme == "https",
                                   httponly=True, samesite="strict")


def _cross_origin(request: Request, doing: str) -> HTMLResponse:
    log.warning("ui: %s refused: posted from another origin [request %s]", doing,
                request_id(request))
    # The form again, but the cookie left alone: this request is not the browser's user's.
    return _page("ui_login.html", 403, signed_in=False, message=_t("login.cross_origin"))


# ---------------------------------------------------------------------------------------------
# Query parameters


def _param(request: Request, name: str, max_chars: int = MAX_PARAM_CHARS) -> str | None:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_chars:
        raise BadRequest(_t("error.too_long", name=column_label(name, _lang()),
                            chars=max_chars))
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
    lang = _lang()
    rows = []
    for _, task, metric, higher, digits in MODEL_METRICS:
        verdict = model_verdict(metrics, task, metric, higher)
        if verdict is None:
            continue
        best = verdict["best"]
        rows.append({
            **verdict, "label": text(f"metric.{task}", lang), "digits": digits,
            "short": label("task", task, lang),
            "verdict_text": text(f"verdict.{verdict['verdict'] or 'unchecked'}", lang),
            "chosen": (label("model", verdict["chosen_code"], lang)
                       if verdict["chosen_code"] else None),
            "best": best and {**best, "name": label("model", best["code"], lang)
                              if best["code"] else best["name"]},
        })
    chart = charts.model_quality(
        rows, "retain", (text("chart.worse", lang), text("chart.better", lang)), _number,
        text("chart.model_title", lang)) if rows else ""
    return {"version": served.version, "alias": served.alias,
            "trained_as_of": served.pipeline.trained_as_of, "loaded_at": served.loaded_at,
            "horizon_days": getattr(served.pipeline, "horizon_days", None), "metrics": rows,
            "chart": chart}


CHOICE_NAMES = ("simple baseline", "probabilistic model (BTYD)", "LightGBM")
CHOICE_CODES = ("baseline", "btyd", "gbm")  # the same, as codes of serving.labels' "model"
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
        best_code = "gbm" if named == ["LightGBM"] else named[0] if named else None
        best = {"name": (named[0] if named else "best alternative").replace("_", " "),
                "value": alternative, "code": best_code}
    elif others:
        name = (max if higher else min)(others, key=lambda k: others[k])
        best = {"name": name.replace("_", " "), "value": others[name], "code": name}
    if ours is None and best is None:
        return None
    lo, hi = metrics.get(f"vs_baseline.{task}.lo"), metrics.get(f"vs_baseline.{task}.hi")
    verdict = None
    if lo is not None and hi is not None:
        verdict = "better" if lo > 0 else "worse" if hi < 0 else "tie"
    code = metrics.get(f"choice.{task}")
    known = code is not None and 0 <= code < len(CHOICE_NAMES)
    chosen = CHOICE_NAMES[int(code)] if known else None
    return {"ours": ours, "best": best, "verdict": verdict, "verdict_text": VERDICT_TEXT[verdict],
            "better": verdict == "better", "chosen": chosen,
            "chosen_code": CHOICE_CODES[int(code)] if known else None,
            "diff": metrics.get(f"vs_baseline.{task}.diff"), "lo": lo, "hi": hi}


def _export_href(tokens: dict[str, str], sep: str | None = None, fmt: str | None = None,
                 lang: str | None = None) -> str:
    query = dict(tokens)
    if sep:
        query["sep"] = sep
    if fmt:
        query["format"] = fmt
    if lang:
        query["lang"] = lang
    return "/ui/export?" + urlencode(query) if query else "/ui/export"


SUMS = ("customers", "predicted_revenue", "expected_incremental_revenue", "contact_cost")
NULL_TEXT = {"segment": "no_segment", "goal": "no_goal", "channel": "no_channel"}
OTHER = "(other)"  # the group of segments not shaped <lifecycle>-<tier>-<behaviour>


def _cell_label(name: str, code: str | None, lang: Language) -> str:
    return text(NULL_TEXT[name], lang) if code is None else label(name, code, lang)


def _totals(frame: pl.DataFrame) -> dict:
    sums = frame.select(pl.col(name).sum() for name in SUMS).row(0, named=True)
    return {"customers": int(sums["customers"] or 0),
            **{name: float(sums[name] or 0.0) for name in SUMS[1:]}}


def _by(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    return frame.group_by(key).agg(pl.col(name).sum() for name in SUMS)


def _charts(shown: pl.DataFrame, lang: Language) -> dict:
    cells = charts.lifecycle_value(shown)

    def tip(row: dict) -> str:
        return text("chart.heat_tip", lang, stage=label("lifecycle_stage", row["lifecycle_stage"],
                                                        lang),
                    tier=label("value_tier", row["value_tier"], lang),
                    customers=_number(row["customers"]),
                    revenue=_number(row["expected_incremental_revenue"]))

    measures = [(name, text(f"chart.{name}", lang)) for name in
                ("customers", "expected_incremental_revenue", "contact_cost")]
    return {
        "heatmap": charts.heatmap(cells, LIFECYCLE_STAGES, VALUE_TIERS,
                                  partial(label, "lifecycle_stage", lang=lang),
                                  partial(label, "value_tier", lang=lang), tip,
                                  text("chart.heatmap_title", lang)),
        **{name: charts.bars(_by(shown, name), name, measures,
                             partial(_cell_label, name, lang=lang), partial(_number, digits=0),
                             text(f"chart.{name}_title", lang), f"chart-{name}",
                             key_heading=text(f"chart.by_{name}", lang))
           for name in ("goal", "channel")},
    }


def _matrix_view(matrix: pl.DataFrame, tokens: dict[str, str]) -> dict:
    """The matrix folded by lifecycle stage, then value tier (each with its totals), the cells
    inside; charts of what is shown; the filters' choices, labelled."""
    lang = _lang()
    options = {}
    for name in CELL:
        values = matrix[name].unique().to_list()
        known = sorted(v for v in values if v is not None)
        choices = sorted(({"value": v, "label": _cell_label(name, v, lang)} for v in known),
                         key=lambda c: c["label"])
        if None in values:
            choices.append({"value": NULL_TOKEN[name], "label": _cell_label(name, None, lang)})
        given = tokens.get(name)
        if given is not None and given not in {c["value"] for c in choices}:
            choices.append({"value": given, "label": given})  # keep what was asked for visible
        options[name] = choices
    shown = _filtered(matrix, tokens)
    parts = pl.col("segment").str.split_exact("-", 2)
    shaped = pl.col("segment").str.count_matches("-") == 2
    grouped = shown.with_columns(
        pl.when(shaped).then(parts.struct.field("field_0")).otherwise(pl.lit(OTHER))
        .alias("stage"),
        pl.when(shaped).then(parts.struct.field("field_1")).otherwise(pl.lit(OTHER))
        .alias("tier"),
        pl.when(shaped).then(parts.struct.field("field_2")).otherwise(pl.col("segment"))
        .alias("behaviour"),
    )
    order = {code: n for n, code in enumerate((*LIFECYCLE_STAGES, *VALUE_TIERS))}
    groups = []
    for (stage,), stage_rows in sorted(grouped.group_by("stage"),
                                       key=lambda g: (order.get(g[0][0], 99), str(g[0][0]))):
        tiers = []
        for (tier,), tier_rows in sorted(stage_rows.group_by("tier"),
                                         key=lambda g: (order.get(g[0][0], 99), str(g[0][0]))):
            rows = []
            for row in tier_rows.sort("customers", descending=True).iter_rows(named=True):
                cell = {name: _token(name, row[name]) for name in CELL}
                behaviour = (label("behaviour_type", row["behaviour"], lang)
                             if row["behaviour"] is not None
                             else _cell_label("segment", None, lang))
                rows.append({**row, "tokens": cell, "href": _export_href(cell),
                             "xlsx_href": _export_href(cell, fmt="xlsx", lang=lang),
                             "labels": {"segment": behaviour,
                                        "goal": _cell_label("goal", row["goal"], lang),
                                        "channel": _cell_label("channel", row["channel"], lang)}})
            tiers.append({"code": tier, "rows": rows, "totals": _totals(tier_rows),
                          "label": (text("home.other_segments", lang) if tier == OTHER
                                    else label("value_tier", tier, lang))})
        groups.append({"code": stage, "tiers": tiers, "totals": _totals(stage_rows),
                       "label": (text("home.other_segments", lang) if stage == OTHER
                                 else label("lifecycle_stage", stage, lang))})
    return {"options": options, "groups": groups, "rows": [r for g in groups for t in g["tiers"]
                                                           for r in t["rows"]],
            "totals": _totals(shown), "cells": matrix.height, "all_href": _export_href(tokens),
            "all_xlsx_href": _export_href(tokens, fmt="xlsx", lang=lang),
            # Folded unless the marketer narrowed it down to what they want to see.
            "open": bool(tokens) or shown.height <= 8,
            "charts": _charts(shown, lang) if shown.height else {}}


# (section, ((column, format), ...)); labels and one-line explanations come from serving.labels.
CUSTOMER_SECTIONS = (
    ("decision", (("segment", "segment"), ("goal", "goal"), ("channel", "channel"),
                  ("send_at", "text"), ("offer", "offer"), ("control_group", "text"),
                  ("lifecycle_stage", "lifecycle_stage"), ("value_tier", "value_tier"),
                  ("behaviour_type", "behaviour_type"))),
    ("scores", (("p_alive", "percent"), ("churn_probability", "percent"),
                ("expected_orders", "number"), ("predicted_revenue", "number"),
                ("clv_12m", "number"), ("expected_incremental_revenue", "number"),
                ("contact_cost", "number"), ("overdue_days", "number"))),
    ("timing", (("next_order_date", "text"), ("next_order_p10", "text"),
                ("next_order_p90", "text"), ("due_product_id", "text"),
                ("due_product_date", "text"), ("first_order_date", "text"),
                ("last_order_date", "text"), ("orders", "number"))),
)
CUSTOMER_META = ("as_of", "horizon_days", "model_version")
CUSTOMER_FIELDS = tuple(field for _, fields in CUSTOMER_SECTIONS for field in fields)


def _field_value(kind: str, value: Any, lang: Language) -> str:
    if value is None:
        return "—"
    if kind == "percent":
        return _percent(value)
    if kind == "number":
        return _number(value)
    if kind == "text":
        return _text(value)
    return label(kind, value, lang)


def _customer_timeline(row: dict, lang: Language) -> str:
    as_of = row.get("as_of")
    if not isinstance(as_of, date):
        return ""
    due = row.get("due_product_id")
    marks = [("expected", row.get("next_order_date"), text("chart.expected", lang))]
    if due is not None:
        marks.append(("due", row.get("due_product_date"), f"{text('chart.due', lang)}: {due}"))
    # The store keeps the first and last purchase and their count (migration 3), not every
    # order: runs stored before it have none, and then no history is drawn.
    first, last, orders = (row.get(c) for c in ("first_order_date", "last_order_date", "orders"))
    history = None
    if isinstance(first, date) and isinstance(last, date) and orders is not None:
        history = charts.OrderHistory(first, last, text("chart.orders", lang, n=_number(orders)),
                                      column_label("first_order_date", lang),
                                      column_label("last_order_date", lang))
    return charts.timeline(as_of, marks, (row.get("next_order_p10"), row.get("next_order_p90"),
                                          text("chart.band", lang)),
                           text("chart.as_of", lang), text("chart.timeline_title", lang),
                           history=history)


def _lookup(svc: Service, customer_id: str | None) -> dict | None:
    if customer_id is None:
        return None
    row = svc.store.latest(customer_id)
    if row is None:
        return {"customer_id": customer_id, "found": False}
    lang = _lang()
    horizon = row.get("horizon_days")
    sections = [{"name": name, "title": text(f"lookup.{name}", lang),
                 "fields": [{"column": column, "label": column_label(column, lang),
                             "help": column_help(column, lang, horizon),
                             "value": _field_value(kind, row.get(column), lang)}
                            for column, kind in fields]}
                for name, fields in CUSTOMER_SECTIONS]
    meta = {column: _text(row.get(column)) for column in CUSTOMER_META}
    return {"customer_id": customer_id, "found": True, "reason": row.get("reason"),
            "sections": sections, "meta": meta, "timeline": _customer_timeline(row, lang)}


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
    model = _model_summary(svc)
    return _page("ui_home.html", signed_in=True, model=model, run=run,
                 horizon=model["horizon_days"] if model else None,
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
    if not same_origin(request):
        return _cross_origin(request, "sign-in")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _login_form(request, 413, _t("login.too_large"))
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    given = (form.get("api_key") or [""])[0]
    key = given if _key_allows(svc, given) is not None else given.strip()
    allowed = _key_allows(svc, key)
    if allowed is None:
        return _login_form(request, 401, _t("login.invalid"))
    if not allowed:
        return _login_form(request, 403, _t("login.no_scope"))
    response = RedirectResponse("/ui", status_code=303)
    if not svc.keyring.open:
        sessions = _sessions(request)
        # A fresh session each time; the one the browser held before (if any) ends.
        await run_in_threadpool(sessions.end, request.cookies.get(COOKIE))
        cookie = await run_in_threadpool(sessions.start, key)
        if LEGACY_COOKIE in request.cookies:
            response.delete_cookie(LEGACY_COOKIE, path="/ui", httponly=True, samesite="strict",
                                   secure=request.url.scheme == "https")
        response.set_cookie(COOKIE, cookie, max_age=SESSION_SECONDS, path="/ui",
                            secure=request.url.scheme == "https", httponly=True,
                            samesite="strict")
    log.info("ui: signed in [request %s]", request_id(request))
    return response


@router.post("/logout")
@_guarded
async def logout(request: Request) -> Response:
    if not same_origin(request):
        return _cross_origin(request, "sign-out")
    if not _service(request).keyring.open:
        await run_in_threadpool(_sessions(request).end, request.cookies.get(COOKIE))
    response = RedirectResponse("/ui", status_code=303)
    _forget(response, request)
    return response
