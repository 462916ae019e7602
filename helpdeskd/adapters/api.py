"""The read API on the status page's server: `/api/v1/cases`, `/api/v1/cases/REF` and
`/api/v1/report`, the same JSON as the command line's `--json`, for bearer tokens made by
`helpdeskd token create`. A token scoped to a customer sees nothing of another's (404, as for
a case that does not exist); each token has a rate limit; every request is logged."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from helpdeskd import report, views
from helpdeskd.adapters import signin
from helpdeskd.adapters.store import Cases, SignIns, Store, Tokens
from helpdeskd.config import Config

log = structlog.get_logger("helpdeskd.api")

OPENAPI = Path(__file__).with_name("openapi.json")
PER_MINUTE = 120  # requests a token may make in a minute
WINDOW = timedelta(minutes=1)


class Denied(Exception):
    def __init__(self, status: int, why: str, headers: dict | None = None):
        super().__init__(why)
        self.status, self.headers = status, headers or {}


def token_hash(token: str) -> str:
    """What is stored of a token: a copy of the database opens nothing."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def admitted(store: Store, token: str | None, now: datetime) -> dict:
    """The token's row (name, customer), counted against its rate; else Denied."""
    found = Tokens(store).find(token_hash(token)) if token else None
    if found is None:
        raise Denied(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    key = f"api:{found['name']}"
    requests = SignIns(store)
    with store.transaction():
        requests.forget(now - signin.KEPT)
        if requests.count(key, now - WINDOW) >= PER_MINUTE:
            raise Denied(429, f"more than {PER_MINUTE} requests a minute", {"Retry-After": "60"})
        requests.note([key], now)
    return found


async def answer(request: Request, read) -> Response:
    """Admit the request's token, then `read(store, config, scope, now)` in a worker thread."""
    web = request.app.state.web
    name, status = None, 200

    def work(store: Store):
        nonlocal name
        now = web.clock()
        token = admitted(store, bearer(request), now)
        name = token["name"]
        return read(store, web.config(), token["customer"], now)

    try:
        body = await run_in_threadpool(web.with_store, work)
        response = JSONResponse(body)
    except Denied as exc:
        status = exc.status
        response = JSONResponse({"error": str(exc)}, status, headers=exc.headers)
    log.info("api request", token=name, path=request.url.path, status=status)
    return response


def listed_cases(request: Request):
    status, priority = request.query_params.get("status"), request.query_params.get("priority")

    def read(store: Store, config: Config, scope: str | None, now: datetime) -> list[dict]:
        found = Cases(store).list(status, scope)
        return [views.case_summary(c, config) for c in found if priority in (None, c.priority)]

    return read


def one_case(reference: str):
    def read(store: Store, config: Config, scope: str | None, now: datetime) -> dict:
        case = Cases(store).get(reference.strip().upper())
        if case is None or scope not in (None, case.customer):
            raise Denied(404, f"no case {reference}")
        return views.case_detail(store, case, config, now, full=False)

    return read


def figures(request: Request):
    since, until = (day(request.query_params.get(k), k) for k in ("since", "until"))

    def read(store: Store, config: Config, scope: str | None, now: datetime) -> list[dict]:
        start, end = report.window(since, until, config.helpdesk.timezone)
        cases = Cases(store).opened_between(start, end)
        return report.compliance([c for c in cases if scope in (None, c.customer)], config, now)

    return read


def day(text: str | None, name: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise Denied(400, f"{name} must be a date, YYYY-MM-DD") from None


async def cases_route(request: Request) -> Response:
    return await answer(request, listed_cases(request))


async def case_route(request: Request) -> Response:
    return await answer(request, one_case(request.path_params["reference"]))


async def report_route(request: Request) -> Response:
    try:
        read = figures(request)
    except Denied as exc:
        log.info("api request", token=None, path=request.url.path, status=exc.status)
        return JSONResponse({"error": str(exc)}, exc.status)
    return await answer(request, read)


async def openapi_route(request: Request) -> Response:
    return JSONResponse(json.loads(OPENAPI.read_text(encoding="utf-8")))


ROUTES = [
    Route("/api/v1/openapi.json", openapi_route),
    Route("/api/v1/cases", cases_route),
    Route("/api/v1/cases/{reference}", case_route),
    Route("/api/v1/report", report_route),
]
