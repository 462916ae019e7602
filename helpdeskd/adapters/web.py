"""The status page: thin routes that read `portal` views and write spool entries, as smtp.py
does for mail. Off unless `[web] enabled`.

Starlette served by uvicorn's `Server.serve()` in the daemon's own event loop: one process, one
loop, no extra threads beyond the small pool that runs the SQLite work. (aiohttp would do as
well; Starlette keeps routes plain functions and uvicorn is the most used ASGI server.) uvicorn
is kept away from the signals: the service owns SIGTERM and SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import urllib.parse
from collections.abc import Callable
from datetime import UTC, date, datetime

import jinja2
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive

from helpdeskd import portal
from helpdeskd.adapters import api, signin
from helpdeskd.adapters.store import SearchIndex, Store, open_store
from helpdeskd.config import PACKAGED_TEMPLATES, Config
from helpdeskd.core import access, search, submission, terms
from helpdeskd.core.access import Viewer
from helpdeskd.core.address import usable
from helpdeskd.core.submission import Submission, Upload

log = structlog.get_logger("helpdeskd.web")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # a sign-in link must never leak in a Referer
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
MAX_UPLOADS = 10
SESSION = "helpdeskd.session"  # where a request's checked session waits for its route
LARGEST_ID = 2**63 - 1  # SQLite's largest integer: a longer number in a path names nothing


def too_large() -> HTTPException:
    return HTTPException(413, "That is more than the helpdesk accepts in one message.")


class Web:
    """The application and what its routes need from the daemon."""

    def __init__(
        self,
        config: Callable[[], Config],
        wake_worker: Callable[[], None],
        wake_courier: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config, self.clock = config, clock
        self.wake_worker, self.wake_courier = wake_worker, wake_courier
        self.secret = signin.load_secret(config())
        # an admin's own templates folder may restyle the pages; what it lacks comes packaged
        folders = [str(config().helpdesk.templates / "web"), str(PACKAGED_TEMPLATES / "web")]
        self.pages = jinja2.Environment(loader=jinja2.FileSystemLoader(folders), autoescape=True)
        self.app = Starlette(routes=ROUTES(self), exception_handlers={HTTPException: self.error})
        self.app.state.web = self
        self.errands: set[asyncio.Task] = set()

    # -- plumbing ---------------------------------------------------------------------------

    def store(self) -> Store:
        return open_store(self.config().helpdesk.database, migrate=False)

    def session(self, request: Request) -> signin.Session | None:
        """The request's session, as `CheckedSessions` found it before the route ran."""
        return request.scope.get(SESSION)

    async def check_session(self, request: Request) -> signin.Session | None:
        """The cookie's session if its signature holds, and, signed in, if it was not ended."""
        found = signin.unseal(self.secret, request.cookies.get(signin.COOKIE), self.clock())
        if found is None or found.address is None:
            return found

        def still_open(store: Store) -> bool:
            return signin.still_open(store, self.config(), found, self.clock())

        return found if await run_in_threadpool(self.with_store, still_open) else None

    def viewer(self, request: Request) -> Viewer | None:
        found = self.session(request)
        if found is None or found.address is None:
            return None
        return access.viewer_for(found.address, self.config())

    def page(self, request: Request, name: str, status: int = 200, **context) -> Response:
        """A page, with a visitor session (for its CSRF token) if there is none yet."""
        found = self.session(request)
        fresh = found is None
        if fresh:
            found = signin.new_session(None, self.config().web.session_ttl, self.clock())
        html = self.pages.get_template(f"{name}.html").render(
            helpdesk=self.config().helpdesk,
            viewer=self.viewer(request),
            csrf=signin.csrf_token(self.secret, found),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if fresh:
            self.set_session(response, found)
        return response

    def set_session(self, response: Response, session: signin.Session) -> None:
        web = self.config().web
        response.set_cookie(
            signin.COOKIE,
            signin.seal(self.secret, session),
            max_age=web.session_ttl,
            httponly=True,
            secure=web.secure,
            samesite="lax",
        )

    async def form(self, request: Request):
        """The posted form, refused unless its CSRF token matches the session's, and read no
        further than the size of a message (`413`), whether or not the size was declared."""
        limit = self.config().smtp.max_message_size
        declared = request.headers.get("content-length") or "0"
        if not declared.isdigit() or int(declared) > limit:
            raise too_large()
        capped = Request(request.scope, capped_receive(request.receive, limit))
        form = await capped.form(max_files=MAX_UPLOADS, max_fields=20, max_part_size=limit)
        if not signin.csrf_ok(self.secret, self.session(request), form.get("csrf")):
            raise HTTPException(403, "This form has expired. Go back, reload the page, try again.")
        return form

    def signed_in(self, request: Request) -> Viewer:
        viewer = self.viewer(request)
        if viewer is None:
            raise HTTPException(401, "Please sign in.")
        return viewer

    async def error(self, request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401:
            return RedirectResponse("/signin", status_code=303)
        return self.page(request, "error", exc.status_code, message=exc.detail)

    def submit(self, sub: Submission) -> None:
        """Into the spool, as mail would go: the worker does the rest."""
        config, now = self.config(), self.clock()
        message_id = f"web.{secrets.token_hex(12)}@{config.helpdesk.domain}"
        raw = submission.as_mail(sub, config.helpdesk.address, message_id, now)
        if len(raw) > config.smtp.max_message_size:  # the limit mail has: encoding adds a third
            raise too_large()
        store = self.store()
        try:
            store.spool(
                raw,
                source="web",
                now=now,
                envelope_from=sub.sender,
                recipients=(config.helpdesk.address,),
            )
        finally:
            store.close()
        self.wake_worker()

    async def hand_off(self, work: Callable, *args) -> None:
        """Blocking work the answer must not wait for, started in the thread pool and not
        awaited (nor is the connection's next request held for it); `finish` waits for what
        is still running when the page stops."""
        errand = asyncio.get_running_loop().create_task(run_in_threadpool(work, *args))
        self.errands.add(errand)
        errand.add_done_callback(self.errands.discard)

    async def finish(self) -> None:
        await asyncio.gather(*self.errands, return_exceptions=True)

    def mail_link(self, address: str) -> None:
        """A sign-in link to the address if it is known; nothing otherwise."""
        try:
            sent = self.with_store(
                lambda s: signin.mail_link(s, self.config(), address, self.clock())
            )
        except Exception:
            log.exception("sign-in link not sent")
            return
        if sent:
            self.wake_courier()
        log.info("sign-in link asked", outcome="sent" if sent else "unknown")

    def with_store(self, work: Callable[[Store], object]):
        store = self.store()
        try:
            return work(store)
        finally:
            store.close()


def capped_receive(receive: Receive, limit: int) -> Receive:
    """The request's body as it streams in, counted: past `limit` bytes the request is refused
    before the rest is read (a chunked body declares no size)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise too_large()
        return message

    return counted


async def uploads(form) -> tuple[Upload, ...]:
    found = []
    for item in form.getlist("files"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read()
            found.append(Upload(item.filename, item.content_type or "", data))
    return tuple(found)


# -- sign-in -------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.viewer(request)
    target = "/signin" if viewer is None else ("/queue" if viewer.engineer else "/cases")
    return RedirectResponse(target, status_code=303)


async def signin_form(request: Request) -> Response:
    return request.app.state.web.page(request, "signin")


async def signin_request(request: Request) -> Response:
    """The answer depends on the limits alone; the link, for a known address only, is made
    and queued after it (`Web.mail_link`), so its time tells nobody who is a customer."""
    web: Web = request.app.state.web
    form = await web.form(request)
    address = str(form.get("address") or "").strip()[:254]
    client = request.client.host if request.client else "unknown"
    admitted = await run_in_threadpool(
        web.with_store, lambda store: signin.admit(store, address, client, web.clock())
    )
    if not admitted:
        return web.page(request, "signin", 429, limited=True)
    response = web.page(request, "signin_sent", address=address)
    response.background = BackgroundTask(web.hand_off, web.mail_link, address)  # once sent
    return response


async def signin_confirm(request: Request) -> Response:
    """A page with a button, not a sign-in: mail scanners that open links must not use them."""
    return request.app.state.web.page(request, "signin_confirm", token=request.path_params["token"])


async def signin_redeem(request: Request) -> Response:
    web: Web = request.app.state.web
    await web.form(request)
    token = request.path_params["token"]

    def sign_in(store: Store) -> signin.Session | None:
        address = signin.redeem(store, token, web.clock())
        return address and signin.open_session(store, web.config(), address, web.clock())

    session = await run_in_threadpool(web.with_store, sign_in)
    if session is None:
        return web.page(request, "error", 400, message=EXPIRED)
    response = RedirectResponse("/", status_code=303)
    web.set_session(response, session)
    log.info("signed in", role=access.viewer_for(session.address, web.config()).role)
    return response


EXPIRED = "This sign-in link has expired or was used already. Ask for a new one."


async def signout(request: Request) -> Response:
    web: Web = request.app.state.web
    await web.form(request)
    found = web.session(request)
    if found is not None and found.address is not None:  # ended here: copies of it too
        await run_in_threadpool(web.with_store, lambda s: signin.close_session(s, found))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(signin.COOKIE)
    return response


# -- cases -----------------------------------------------------------------------------------


async def case_list(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    if viewer.engineer:
        return RedirectResponse("/queue", status_code=303)
    cases = await run_in_threadpool(web.with_store, lambda s: portal.visible_cases(s, viewer))
    rows = [portal.listed(c, web.config()) for c in cases]
    return web.page(request, "cases", cases=rows)


def _case(viewer: Viewer, reference: str, store: Store):
    case = portal.case_by_reference(store, viewer, reference)
    if case is None:
        raise HTTPException(404, "There is no such case here.")
    return case


async def case_view(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)

    def read(store: Store) -> dict:
        case = _case(viewer, request.path_params["reference"], store)
        return portal.case_page(store, case, web.config(), web.clock(), inside=viewer.engineer)

    detail = await run_in_threadpool(web.with_store, read)
    return web.page(request, "case", case=detail, may_act=not viewer.engineer)


async def case_action(request: Request) -> Response:
    """Reply (or reopen), escalate or rate: each a message on the case, as by mail."""
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    form = await web.form(request)
    reference, action = request.path_params["reference"], request.path_params["action"]
    case = await run_in_threadpool(web.with_store, lambda s: _case(viewer, reference, s))
    if not access.may_act(viewer, case):
        raise HTTPException(403, "Engineers answer cases by mail.")
    web.submit(await _action(action, case, viewer, form))
    return web.page(request, "received", case=case, action=action)


async def _action(action: str, case, viewer: Viewer, form) -> Submission:
    text = str(form.get("text") or "")
    if action == "reply":
        if not text.strip():
            raise HTTPException(400, "Write something first.")
        return submission.on_case(case, viewer.address, text, await uploads(form))
    if action == "escalate":
        return submission.escalation_request(case, viewer.address, text)
    if action == "rate":
        try:
            return submission.rating(case, viewer.address, int(form.get("score") or 0), text)
        except ValueError as exc:
            raise HTTPException(400, "Choose a rating from 1 to 5.") from exc
    raise HTTPException(404, "There is no such page here.")


async def download(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    p = request.path_params
    if max(p["message"], p["index"]) > LARGEST_ID:
        raise HTTPException(404, "There is no such file here.")

    def fetch(store: Store):
        case = _case(viewer, p["reference"], store)
        return portal.attachment(store, case, p["message"], p["index"])

    found = await run_in_threadpool(web.with_store, fetch)
    if found is None:
        raise HTTPException(404, "There is no such file here.")
    return Response(
        found.data,
        media_type="application/octet-stream",  # never rendered by the browser as a page
        headers={"content-disposition": as_attachment(found.filename or "attachment")},
    )


def as_attachment(filename: str) -> str:
    """RFC 6266: the name in UTF-8 as `filename*`, and an ASCII stand-in for older clients
    (a header is Latin-1 at most: a raw `отчёт.txt` cannot be written)."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    encoded = urllib.parse.quote(filename.encode("utf-8", "replace"), safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


async def new_case_form(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    choices = terms.form_priorities(viewer.address, web.config(), web.clock().date())
    return web.page(request, "new", priorities=choices)


async def new_case(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    form = await web.form(request)
    subject, description = str(form.get("subject") or ""), str(form.get("description") or "")
    if not subject.strip() or not description.strip():
        raise HTTPException(400, "A new case needs a subject and a description.")
    sub = submission.new_case(
        viewer.address,
        subject,
        description,
        str(form.get("priority") or ""),
        str(form.get("environment") or ""),
        await uploads(form),
    )
    customer = str(form.get("for") or "").strip().lower()
    if customer:
        sub = submission.for_customer(sub, on_behalf_of(web, viewer, customer))
    web.submit(sub)
    return web.page(request, "received", case=None, action="new")


def on_behalf_of(web: Web, viewer: Viewer, customer: str) -> str:
    """Only an engineer opens a case for someone else, and only for an address."""
    if web.config().engineer(viewer.address) is None:
        raise HTTPException(403, "Only engineers open cases on a customer's behalf.")
    if not usable(customer):
        raise HTTPException(400, f"{customer!r} is not an email address.")
    return customer


# -- reports and the queue ----------------------------------------------------------------------


async def monthly_report(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    if not viewer.representative:
        raise HTTPException(404, "There is no such page here.")
    now = web.clock()
    month = report_month(request.query_params.get("month"), now.date())
    figures = await run_in_threadpool(
        web.with_store,
        lambda s: portal.monthly(s, web.config(), viewer.customer, month, now),
    )
    return web.page(request, "report", report=figures, month=month.first.strftime("%Y-%m"))


def report_month(text: str | None, today: date) -> portal.Month:
    """The month asked for, as YYYY-MM in plain digits, from 1970 to the end of next year:
    beyond that the calendar's arithmetic fails (9999-12 has no next month)."""
    refused = HTTPException(400, "Choose a month as YYYY-MM.")
    if text and not re.fullmatch(r"[0-9]{4}-[0-9]{2}", text):
        raise refused
    try:
        month = portal.Month.parse(text, today)
    except ValueError as exc:
        raise refused from exc
    if not 1970 <= month.first.year <= today.year + 1:
        raise refused
    return month


async def team_queue(request: Request) -> Response:
    web: Web = request.app.state.web
    viewer = web.signed_in(request)
    if not viewer.engineer:
        raise HTTPException(404, "There is no such page here.")
    rows = await run_in_threadpool(
        web.with_store, lambda s: portal.queue(s, web.config(), web.clock())
    )
    return web.page(request, "queue", cases=rows)


SEARCH_WORDS = 10  # words of one query at most: each is a condition on the index
SEARCH_RESULTS = 50


async def case_search(request: Request) -> Response:
    """Engineers search every case as `helpdeskd search` does; nobody else has this page."""
    web: Web = request.app.state.web
    if not web.signed_in(request).engineer:
        raise HTTPException(404, "There is no such page here.")
    query = request.query_params.get("q", "")[:200]
    words = search.words(query)[:SEARCH_WORDS]
    found = []
    if words:
        found = await run_in_threadpool(
            web.with_store,
            lambda s: search.rank(SearchIndex(s).matching(words), words, SEARCH_RESULTS),
        )
    return web.page(request, "search", query=query, searched=bool(words), found=found)


async def stylesheet(request: Request) -> Response:
    web: Web = request.app.state.web
    css, _, _ = web.pages.loader.get_source(web.pages, "style.css")
    return Response(css, media_type="text/css")


def ROUTES(web: Web) -> list[Route]:
    return [
        Route("/", home),
        Route("/style.css", stylesheet),
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin_request, methods=["POST"]),
        Route("/signin/{token}", signin_confirm, methods=["GET"]),
        Route("/signin/{token}", signin_redeem, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/cases", case_list),
        Route("/cases/{reference}", case_view),
        Route("/cases/{reference}/{action}", case_action, methods=["POST"]),
        Route("/cases/{reference}/files/{message:int}/{index:int}", download),
        Route("/new", new_case_form, methods=["GET"]),
        Route("/new", new_case, methods=["POST"]),
        Route("/reports", monthly_report),
        Route("/queue", team_queue),
        *api.ROUTES,
        Route("/search", case_search),
    ]


# -- serving ---------------------------------------------------------------------------------


class CheckedSessions:
    """Each request's session looked up once, before the routes (which read it without
    waiting): a signature alone does not keep a session open once it was ended."""

    def __init__(self, web: Web):
        self.web = web

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope[SESSION] = await self.web.check_session(Request(scope))
        await self.web.app(scope, receive, send)


class SecurityHeaders:
    """Every response, error pages included, carries the same strict headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the service stops it."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind(config: Config) -> socket.socket:
    """Bind before start-up finishes, so a port in use is an error at once, not later."""
    family = socket.AF_INET6 if ":" in config.web.host else socket.AF_INET
    # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it each page's body waited 40 ms for the client's delayed ACK of its head
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.web.host, config.web.port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(web: Web, sock: socket.socket) -> tuple[QuietServer, asyncio.Task]:
    config = uvicorn.Config(
        SecurityHeaders(CheckedSessions(web)),
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",  # a reverse proxy on this host may say who the client is
        server_header=False,
        lifespan="off",
    )
    server = QuietServer(config)

    async def run() -> None:
        await server.serve(sockets=[sock])
        await web.finish()  # links being queued when the page stopped are queued still

    task = asyncio.get_running_loop().create_task(run())
    log.info("status page listening", host=web.config().web.host, port=web.config().web.port)
    return server, task
