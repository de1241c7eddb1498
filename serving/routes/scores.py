"""Scoring customers' histories on the fly, and reading one customer's stored batch scores.

``POST /v1/score`` answers for every requested customer, in request order, or rejects the
whole request:

- **422** (field-level ``detail``) for anything the data contract refuses: wrong types, unknown
  fields, non-finite or absurd amounts and quantities, dates outside 1900-2200, more than 1,000
  customers, a ``customer_id`` given twice (``17850.0`` is ``17850``, as in the batch).

Lines dated on or after ``as_of`` are outside the window, as in ``retain score``: not used,
never an error, counted in ``lines_after_as_of``. A line repeated within a customer is kept, as
the batch keeps duplicated lines (real logs repeat legitimate lines).
- **200** with an ``error`` entry (and null scores) for a customer the model cannot score: no
  transactions at all (``no_transactions``), or no purchase before ``as_of``, e.g. only refunds
  (``no_purchase_before_as_of``).

The numbers are the batch's: one polars frame of every customer's transactions (contract
dtypes) goes through the pipeline and the decisions exactly as in ``retain score``. Each
customer's ``consents`` play the customers table's ``consent_<channel>`` flags and
``recent_messages`` the contacts log's recent rows (for the frequency cap).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import numpy as np
import orjson
import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from retain.decisions.decide import DECISION_COLUMNS, score_and_decide
from retain.features.contract import ReadOptions, apply_status, normalize_customer_id
from retain.features.orders import midnight
from retain.features.segments import bool_column, float_column, int_column, string_column
from retain.features.segments import frame as frame_of
from retain.models.pipeline import SCORE_COLUMNS, SMALL_BATCH_MAX_CUSTOMERS, SMALL_BATCH_MAX_LINES
from retain.models.pyfunc import TRANSACTION_SCHEMA
from retain.serving.deps import (
    MALFORMED_BODY_TYPE,
    ProblemError,
    ServedModel,
    Service,
    problem_responses,
    request_id,
    service,
)
from retain.serving.schemas import (
    MAX_ID_LENGTH,
    CustomerIn,
    ScoreRequest,
    ScoresPublic,
    StoredScorePublic,
)
from retain.serving.security import presented_key, require

log = logging.getLogger(__name__)
router = APIRouter(tags=["scores"])

NO_TRANSACTIONS = {"code": "no_transactions", "message": "no transactions given: nothing to score"}
NO_PURCHASE = {
    "code": "no_purchase_before_as_of",
    "message": "no purchase (an order with a positive total) before as_of: nothing to score",
}
_NULL_SCORES = dict.fromkeys((*SCORE_COLUMNS, *DECISION_COLUMNS))
# Up to this many lines a frame is built column by column by polars' direct constructors (the
# least fixed cost), beyond by pl.DataFrame (the least cost per line: its timestamps are
# converted in Rust).
_DIRECT_MAX_LINES = 256
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
AUTH_ERRORS = problem_responses(401, 403)


def _problem(loc: tuple[str | int, ...], kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "loc": ("body", *loc), "msg": message, "input": None}


def transactions_frame(request: ScoreRequest, statuses: ReadOptions | None = None) -> pl.DataFrame:
    """Every customer's transactions as ONE contract-typed frame, or a RequestValidationError
    naming each offending field (see module doc). A line's ``status`` is read by the batch's
    rule (``features.contract.apply_status``; ``statuses``: the values the service's settings
    add): a cancelled line is left out, a returned one is a refund."""
    problems: list[dict[str, Any]] = []
    first_seen: dict[str, int] = {}
    for i, customer in enumerate(request.customers):
        first = first_seen.setdefault(customer.customer_id, i)
        if first != i:
            problems.append(_problem(("customers", i, "customer_id"), "duplicate_customer",
                                     f"customer_id given twice: also customers[{first}]"))
    # Plain Python, not polars: a polars query per check cost more than all of this on the
    # one-customer requests most clients send.
    cutoff = midnight(request.as_of)
    lines = [(c.customer_id, tx.get("order_id"), tx["ts"], tx["amount"], tx.get("product_id"),
              tx.get("quantity"), tx.get("channel"), tx.get("status"))
             for c in request.customers for tx in c.transactions if tx["ts"] < cutoff]
    if problems:
        raise RequestValidationError(problems)
    # As the batch loader: a missing order id makes the line its own order, quantity
    # defaults to 1.
    rows = [(customer_id, order_id or f"#row{row}", ts, amount, product_id,
             1.0 if quantity is None else quantity, channel, status)
            for row, (customer_id, order_id, ts, amount, product_id, quantity, channel, status)
            in enumerate(lines)]
    if not rows:
        return pl.DataFrame(schema=TRANSACTION_SCHEMA)
    *values, status = zip(*rows, strict=True)
    columns = dict(zip(TRANSACTION_SCHEMA, values, strict=True))
    if status.count(None) != len(status):
        # Rare (most CRMs send sales only): the one rule, on a frame with the status.
        with_status = pl.DataFrame({**columns, "status": status},
                                   schema={**TRANSACTION_SCHEMA, "status": pl.String})
        return apply_status(with_status, statuses)[0].drop("status")
    if len(rows) <= _DIRECT_MAX_LINES:
        return _direct_frame(columns)
    return pl.DataFrame(columns, schema=TRANSACTION_SCHEMA)


def _direct_frame(columns: dict[str, tuple]) -> pl.DataFrame:
    """The transactions frame by polars' direct constructors (features.segments), each
    column's dtype known: pl.DataFrame checks and infers each value (~150 us for 20 lines)."""
    built = []
    for name, dtype in TRANSACTION_SCHEMA.items():
        values = columns[name]
        if dtype == pl.String:
            built.append(string_column(name, list(values)))
        elif dtype == pl.Float64:
            # Finite (the request's contract), so float_column's NaN -> null changes nothing.
            built.append(float_column(name, np.array(values, dtype=np.float64)))
        else:  # the timestamps, naive UTC (schemas): microseconds since the epoch
            micros = np.array([(ts - _EPOCH) // _MICROSECOND for ts in values], dtype=np.int64)
            built.append(int_column(name, micros).cast(dtype))
    return frame_of(built)


def lines_after_as_of(request: ScoreRequest) -> int:
    """Lines dated on or after as_of: outside the window, not used."""
    cutoff = midnight(request.as_of)
    return sum(tx["ts"] >= cutoff for c in request.customers for tx in c.transactions)


def consents_frame(request: ScoreRequest) -> pl.DataFrame | None:
    """The customers' consents as a customers table (``customer_id, consent_<channel>``)."""
    channels = sorted({name for c in request.customers for name in (c.consents or {})})
    if not channels:
        return None
    # polars' direct constructors (features.segments): pl.Series and pl.DataFrame cost
    # ~10 us each in checks, most of this on one customer.
    return frame_of([
        string_column("customer_id", [c.customer_id for c in request.customers]),
        *(bool_column(f"consent_{name}", np.array([bool((c.consents or {}).get(name, False))
                                                   for c in request.customers], dtype=bool))
          for name in channels)])


def recent_messages_frame(request: ScoreRequest) -> pl.DataFrame | None:
    """The customers' recent messages as contacts-log rows, for the frequency cap."""
    sent = [(c.customer_id, ts) for c in request.customers for ts in (c.recent_messages or ())]
    if not sent:
        return None
    return pl.DataFrame(
        {"customer_id": [cid for cid, _ in sent], "ts": [ts for _, ts in sent],
         "control": [False] * len(sent)},
        schema={"customer_id": pl.String, "ts": pl.Datetime("us"), "control": pl.Boolean},
    )


def scores_payload(request: ScoreRequest, scored: pl.DataFrame, served: ServedModel) -> dict:
    """``ScoresPublic`` as plain data: one entry per requested customer, in request order."""
    version = served.version
    # Only the documented fields (score_and_decide is asked for no order history: the stored
    # scores of GET /v1/customers/{id} carry it, this response does not).
    # Rows as dicts, then the fields kept: a select first is a polars query (~0.2 ms).
    by_id = {row["customer_id"]: {k: v for k, v in row.items() if k in _NULL_SCORES}
             for row in scored.to_dicts()}
    unscored = {**_NULL_SCORES, "as_of": request.as_of,
                "horizon_days": served.pipeline.horizon_days, "model_version": version}
    entries = []
    for customer in request.customers:
        row = by_id.get(customer.customer_id)
        if row is None:
            error = NO_PURCHASE if customer.transactions else NO_TRANSACTIONS
            entries.append({**unscored, "customer_id": customer.customer_id, "error": error})
        else:
            # Scores only (decisions=false): the decision fields are there, null.
            entries.append({**_NULL_SCORES, **row, "model_version": version, "error": None})
    return {"model_version": version, "as_of": request.as_of,
            "lines_after_as_of": lines_after_as_of(request), "scores": entries}


SCORE_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/ScoreRequest"}}}}}


_FLAG = TypeAdapter(bool)


def decisions_flag(request: Request) -> bool:
    """The ``decisions`` query flag as FastAPI reads a ``bool`` query parameter: the last
    value given, pydantic's reading of it (true/false, 1/0, yes/no, on/off...), 422 otherwise."""
    given = request.query_params.get("decisions")
    if given is None:
        return True
    try:
        return _FLAG.validate_python(given)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", "decisions")} for e in exc.errors(
            include_url=False)]) from None


class ScoreRoute(APIRoute):
    """POST /v1/score's route: documented by FastAPI from the endpoint's signature like any
    route, but each request handled without FastAPI's dependency solving, which cost about
    0.2 ms of a one-customer request's ~4 ms (a pass over every parameter kind of every
    dependency). The handler checks the key's scope, then reads the query flag, then calls the
    endpoint, which reads the body: FastAPI's order, with its errors. It is built for exactly
    the endpoint below: a route whose parameters or dependencies differ is refused when the
    app is built, not served half-checked. ``app.dependency_overrides`` do not reach it (the
    service and the key ring are the app's own state: override those instead)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        calls = [d.call for d in dependant.dependencies]
        scopes = [getattr(call, "scope", None) for call in calls]
        if (len(calls) != 2 or calls[1] is not service or scopes[0] is None
                or [p.name for p in dependant.query_params] != ["decisions"]
                or dependant.path_params or dependant.header_params or dependant.cookie_params
                or dependant.body_params):
            raise TypeError(f"ScoreRoute serves the score endpoint's signature only, not "
                            f"{self.path}'s")
        endpoint, scope = self.endpoint, scopes[0]

        async def handler(request: Request) -> Response:
            svc = await service(request)
            svc.keyring.authorize(presented_key(request), scope)
            return await endpoint(request, svc, decisions_flag(request))

        return handler


async def score(
    request: Request, svc: Annotated[Service, Depends(service)],
    decisions: Annotated[bool, Query(description=(
        "false: scores only, the decision fields null (for a CRM that decides itself)"))
    ] = True,
) -> Response:
    body = await read_score_request(request)
    # A small request is scored right here on the event loop: under load, the hop to the
    # threadpool and the GIL contention among its threads cost more than its CPU time (one
    # worker, one customer at 200 req/s: 85 -> 150 req/s served scoring only, 37 -> 62 with
    # the decisions). Larger ones go to the threadpool, so they never hold up the loop long.
    if is_small_request(body):
        return score_now(body, request, svc, decisions)
    return await run_in_threadpool(score_now, body, request, svc, decisions)


router.add_api_route(
    "/v1/score", score, methods=["POST"], route_class_override=ScoreRoute,
    response_model=ScoresPublic, dependencies=[require("score")],
    operation_id="score_customers",
    summary="Score customers from their transactions, with a decision each (scope: score)",
    description=__doc__, openapi_extra=SCORE_BODY,
    responses=problem_responses(400, 401, 403, 415, 422, 503),
)


# Bodies up to this size are parsed on the event loop (a hop to a thread costs more); larger
# ones in a worker thread, in slices of customers, so the loop gets the GIL back between slices
# and /healthz and small requests keep answering while megabytes are parsed.
_PARSE_ON_LOOP_BYTES = 64 * 1024
_CUSTOMERS_PER_SLICE = 25
_customers = TypeAdapter(list[CustomerIn])
_LARGE_BODY_LOCK = threading.Lock()


async def read_score_request(request: Request) -> ScoreRequest:
    """The body as a ScoreRequest: 415 unless JSON, 400 when it does not parse (not UTF-8,
    malformed, nested too deep), 422 naming each invalid field."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/")
                                            and media.endswith("+json")):
        raise ProblemError(415, "send the body as application/json", title="Unsupported media "
                           "type")
    raw = await request.body()
    if len(raw) <= _PARSE_ON_LOOP_BYTES:
        return parse_score_request(raw)
    return await run_in_threadpool(parse_score_request, raw)


def parse_score_request(raw: bytes) -> ScoreRequest:
    if len(raw) <= _PARSE_ON_LOOP_BYTES:
        return validate_score_request(_loads(raw))
    # One large body at a time: threads parsing side by side only take turns on the GIL, and
    # each turn they win is one the event loop waits for.
    with _LARGE_BODY_LOCK, _collector_paused():
        return validate_score_request(_loads_in_pieces(raw))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic garbage collection while a large body is parsed: its hundreds of
    thousands of new objects would trigger full collections that walk them all with the GIL
    held (~0.4 s per 8 MB body here). Parsing makes no reference cycles, and the objects are
    freed by reference counting once the request is answered."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _malformed(reason: object) -> ProblemError:
    # The parser's message says where and why (e.g. "str is not valid UTF-8", "depth limit
    # exceeded"), never the body itself.
    return ProblemError(400, f"the body is not valid JSON: {reason}", MALFORMED_BODY_TYPE,
                        "Malformed body")


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _malformed(exc) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_SPACE = re.compile(r"[ \t\n\r]*")


def _loads_in_pieces(raw: bytes) -> Any:
    """A large body parsed value by value (each customer on its own) rather than in one call:
    a parser holds the GIL for a whole call, ~40 ms per MB here, and the event loop would wait
    that long. Top-level members other than an object's "customers" array are parsed whole."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        return _pieces(text)
    except (json.JSONDecodeError, ValueError) as exc:
        raise _malformed(exc) from None
    except RecursionError:
        raise _malformed("nested too deep") from None


def _pieces(text: str) -> Any:
    pos = _SPACE.match(text, 0).end()
    if not text.startswith("{", pos):
        value, pos = _DECODER.raw_decode(text, pos)
        return _end(text, pos, value)
    data: dict[str, Any] = {}
    pos = _SPACE.match(text, pos + 1).end()
    if text.startswith("}", pos):
        return _end(text, pos + 1, data)
    while True:
        key, pos = _DECODER.raw_decode(text, pos)
        if not isinstance(key, str):
            raise ValueError(f"expected a member name at char {pos}")  # noqa: TRY004
        pos = _SPACE.match(text, pos).end()
        if not text.startswith(":", pos):
            raise ValueError(f"expected ':' at char {pos}")
        pos = _SPACE.match(text, pos + 1).end()
        if key == "customers" and text.startswith("[", pos):
            data[key], pos = _array(text, pos + 1)
        else:
            data[key], pos = _DECODER.raw_decode(text, pos)
        pos = _SPACE.match(text, pos).end()
        if text.startswith("}", pos):
            return _end(text, pos + 1, data)
        if not text.startswith(",", pos):
            raise ValueError(f"expected ',' or '}}' at char {pos}")
        pos = _SPACE.match(text, pos + 1).end()


def _array(text: str, pos: int) -> tuple[list, int]:
    items: list = []
    pos = _SPACE.match(text, pos).end()
    if text.startswith("]", pos):
        return items, pos + 1
    while True:
        item, pos = _DECODER.raw_decode(text, pos)
        items.append(item)
        pos = _SPACE.match(text, pos).end()
        if text.startswith("]", pos):
            return items, pos + 1
        if not text.startswith(",", pos):
            raise ValueError(f"expected ',' or ']' at char {pos}")
        pos = _SPACE.match(text, pos + 1).end()


def _end(text: str, pos: int, value: Any) -> Any:
    if _SPACE.match(text, pos).end() != len(text):
        raise ValueError(f"extra data at char {pos}")
    return value


def validate_score_request(data: Any) -> ScoreRequest:
    customers = data.get("customers") if isinstance(data, dict) else None
    if isinstance(customers, list) and len(customers) > _CUSTOMERS_PER_SLICE:
        problems: list[dict] = []
        parsed: list[CustomerIn] = []
        for start in range(0, len(customers), _CUSTOMERS_PER_SLICE):
            piece = customers[start:start + _CUSTOMERS_PER_SLICE]
            # The parsed JSON of a slice goes as soon as it is validated: half the peak memory.
            customers[start:start + _CUSTOMERS_PER_SLICE] = [None] * len(piece)
            try:
                parsed += _customers.validate_python(piece)
            except ValidationError as exc:
                problems += [{**e, "loc": ("body", "customers", start + e["loc"][0], *e["loc"][1:])}
                             for e in exc.errors(include_input=False, include_url=False)]
        if problems:
            raise RequestValidationError(problems)
        data = {**data, "customers": parsed}
    try:
        return ScoreRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(
            include_input=False, include_url=False)]) from None


def is_small_request(body: ScoreRequest) -> bool:
    """Few enough customers and lines for the pipeline's small-batch path."""
    return (len(body.customers) <= SMALL_BATCH_MAX_CUSTOMERS
            and sum(len(c.transactions) for c in body.customers) <= SMALL_BATCH_MAX_LINES)


def score_now(body: ScoreRequest, request: Request, svc: Service, decisions: bool) -> Response:
    served = svc.holder.require()
    frame = transactions_frame(body, svc.statuses)
    started = time.perf_counter()
    if decisions:
        scored = score_and_decide(
            served.pipeline, frame, body.as_of, rules=svc.rules, consents=consents_frame(body),
            contacts=recent_messages_frame(body), lang=body.lang,
            measure_channels_from_contacts=False, order_history=False)
    else:
        scored = served.pipeline.score(frame, body.as_of)
    payload = scores_payload(body, scored, served)
    n_scored = scored.height
    n_unscored = len(body.customers) - n_scored
    svc.metrics.predictions.labels("scored").inc(n_scored)
    if n_unscored:
        svc.metrics.predictions.labels("unscored").inc(n_unscored)
    log.info("scored %d customers (%d unscorable, %d transactions) with model %s in %.1f ms "
             "[request %s]", n_scored, n_unscored, frame.height, served.version,
             (time.perf_counter() - started) * 1000, request_id(request))
    # Serialized here with orjson (dates, NaN -> null) rather than validated again field by
    # field: the rows come straight from the pipeline, whose schema is fixed.
    return Response(orjson.dumps(payload), media_type="application/json")


@router.get(
    # :path, so ids holding a slash (sent as %2F) reach the route too.
    "/v1/customers/{customer_id:path}", response_model=StoredScorePublic,
    dependencies=[require("score")], operation_id="get_customer",
    summary="One customer's latest stored batch scores (scope: score)",
    responses=problem_responses(401, 403, 404, 422, 503, e404="Unknown customer"),
)
def stored_scores(
    customer_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH,
                                     description="The customer's id", examples=["C0001"])],
    svc: Annotated[Service, Depends(service)],
) -> StoredScorePublic:
    # Stored ids are normalized like every input id (the data contract: stripped, and a
    # spreadsheet's float 17850.0 is 17850).
    row = svc.store.latest(normalize_customer_id(customer_id))
    if row is None:
        raise HTTPException(404, "no stored scores for this customer_id")
    return StoredScorePublic.model_validate(row)
