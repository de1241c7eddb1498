"""The report at ``/ui/report``: the page ``retain report`` writes (serving/report.py), served
to the marketers' signed-in session (the ``/ui`` cookie and its ``export`` scope).

``?as_of=YYYY-MM-DD`` (default: the latest scoring run's as-of date, else the day after the
last transaction, else today) and
``?lang=en|ru`` (as every /ui view). The cohorts read the transactions the service is configured
with (``RETAIN_TRANSACTIONS``, with ``RETAIN_COLUMN_MAP`` and the other reading settings), the
customers table (``RETAIN_CUSTOMERS``), the costs (``RETAIN_COSTS``) and the contacts log
(``RETAIN_CONTACTS``); without them those sections say what is missing. A built page is kept
for the same date, language, latest run and unchanged files (reading a shop's log takes
seconds), at most :data:`CACHED` of them.

The page has no script; its Content-Security-Policy allows inline styles and ``data:`` images
(the registered model's backtest plots) and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from retain.config import Settings
from retain.serving.deps import request_id
from retain.serving.routes import ui
from retain.serving.ui_text import text

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ui", include_in_schema=False)

CACHED = 4
HEADERS = {**ui.SECURITY_HEADERS,
           "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                       "img-src data:; form-action 'self'; "
                                       "frame-ancestors 'none'; base-uri 'none'")}
_lock = threading.Lock()


def _as_of(request: Request, run: dict | None, config: Settings) -> date:
    given = ui._param(request, "as_of", 10)
    if given is None:
        if run:
            return run["as_of"]
        # No run yet: the day after the last transaction, as every command defaults --as-of
        # (today would show the months after the data as empty).
        span = _data_span(request, config)
        return span[1] + timedelta(days=1) if span else datetime.now(UTC).date()
    try:
        return date.fromisoformat(given)
    except ValueError:
        raise ui.BadRequest(f"as_of must be a date like 2026-07-01, not {given!r}.") from None


def _stamp(source: str | None) -> tuple:
    """What changes when a file is replaced (size and time); a database URL is read anew."""
    if not source:
        return ()
    path = Path(source)
    if path.exists():
        found = path.stat()
        return (source, found.st_size, found.st_mtime_ns)
    return (source, datetime.now(UTC).isoformat())


def _read_transactions(config: Settings, as_of: date | None):
    from retain.features.contract import ReadOptions, load_transactions

    return load_transactions(
        config.transactions, as_of=as_of, column_map=config.column_map, on_bad_rows="skip",
        query=config.query, options=ReadOptions(encoding=config.encoding or None,
                                                date_format=config.date_format or None,
                                                drop_duplicates=config.drop_duplicates,
                                                cancelled_statuses=tuple(config.cancelled_statuses),
                                                returned_statuses=tuple(config.returned_statuses),
                                                )).frame


def _data_span(request: Request, config: Settings) -> tuple[date, date] | None:
    """The first and last day of the configured transactions (None without them or when they
    cannot be read), kept per file version: the whole log is read once for it."""
    from retain.features.contract import DataError

    if not config.transactions:
        return None
    key = _stamp(config.transactions)
    state = request.app.state
    with _lock:
        kept = getattr(state, "ui_report_span", None)
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        ts = _read_transactions(config, None)["ts"]
        span = (ts.min().date(), ts.max().date())  # type: ignore[union-attr]
    except DataError as exc:
        log.warning("ui report: the transactions could not be read (%s)", type(exc).__name__)
        span = None
    with _lock:
        state.ui_report_span = (key, span)
    return span


def _side_table(kind: str, source: str | None, config: Settings):
    from retain.analytics.cohorts import load_costs
    from retain.features.contract import (
        DataError,
        ReadOptions,
        load_contacts,
        load_customers,
        table_map,
    )

    if not source:
        return None
    loader = {"customers": load_customers, "contacts": load_contacts, "costs": load_costs}[kind]
    try:
        return loader(source, on_bad_rows="skip", column_map=table_map(config.column_map, kind),
                      options=ReadOptions(encoding=config.encoding)).frame.drop("_row",
                                                                                strict=False)
    except DataError as exc:
        # The message may quote the shop's values: its kind only, in the log.
        log.warning("ui report: the %s could not be read (%s)", kind, type(exc).__name__)
        return None


def build(config: Settings, store, as_of: date, lang: str, rules=None,
          span: Callable[[], tuple[date, date] | None] | None = None) -> str:
    """The report's page at ``as_of`` from the service's configured files and store; ``span``
    (the transactions' first and last day, asked when they cannot be read as of the date)
    tells a date before the data from data missing."""
    from retain.features.contract import DataError
    from retain.serving.report import build_report, registered_backtest, render_report

    transactions = None
    data_from = None
    if config.transactions:
        try:
            transactions = _read_transactions(config, as_of).drop("_row")
        except DataError as exc:
            log.warning("ui report: the transactions could not be read (%s)", type(exc).__name__)
            found = span() if span else None
            data_from = found[0] if found and as_of <= found[0] else None
    parts = build_report(as_of, transactions,
                         customers=_side_table("customers", config.customers, config),
                         costs=_side_table("costs", config.costs, config), store=store,
                         contacts=_side_table("contacts", config.contacts, config),
                         rules=rules)
    parts.data_from = data_from  # the sections say the date is before the data
    if parts.outcomes is None:
        parts.model_version, parts.backtest_images, parts.backtest_points = \
            registered_backtest(config.model_alias)
    return render_report(parts, lang, home=("/ui", text("nav.matrix", lang)))  # type: ignore[arg-type]


@router.get("/report")
@ui._guarded
def report(request: Request) -> Response:
    svc = ui._service(request)
    if not ui._signed_in(request):
        return ui._session_refused(request)
    run = svc.store.latest_run()
    as_of = _as_of(request, run, svc.settings)
    lang = ui._lang()
    config = svc.settings
    latest = svc.store.latest_run_through(as_of)
    key = (as_of, lang, latest["run_id"] if latest else None,
           *(_stamp(s) for s in (config.transactions, config.customers, config.costs,
                                 config.contacts)))
    state = request.app.state
    with _lock:
        cache: OrderedDict = getattr(state, "ui_reports", None) or OrderedDict()
        state.ui_reports = cache
        html = cache.get(key)
    if html is None:
        started = datetime.now(UTC)
        html = build(config, svc.store, as_of, lang, svc.rules,
                     lambda: _data_span(request, config))
        with _lock:
            cache[key] = html
            while len(cache) > CACHED:
                cache.popitem(last=False)
        log.info("ui report: built for %s in %.1f s [request %s]", as_of,
                 (datetime.now(UTC) - started).total_seconds(), request_id(request))
    return HTMLResponse(html, headers=HEADERS)
