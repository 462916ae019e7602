"""Prometheus metrics and `/healthz` on a local HTTP port (`[metrics]`, off by default).

Counters are kept by the daemon as it works; the open cases and the backlogs are read from the
database at scrape time (grouped counts on indexed columns), so they are right after a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from helpdeskd import disk
from helpdeskd.adapters.store import Figures, open_store
from helpdeskd.config import Config
from helpdeskd.database_url import DatabaseUrl

MESSAGES = Counter(
    "helpdeskd_messages",
    "Inbound messages processed, by entrance (smtp, imap, ingest) and outcome (the routing "
    "action: new, thread, ignore, ...; quarantined, failed)",
    ["entrance", "outcome"],
    registry=None,
)
CASES_OPENED = Counter("helpdeskd_cases_opened", "Cases opened", registry=None)
PROCESSING = Histogram(
    "helpdeskd_processing_seconds",
    "Time to process one inbound message",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
OUTBOX = Counter(
    "helpdeskd_outbox_deliveries", "Outbox delivery attempts by result", ["result"], registry=None
)
SWEEP = Counter(
    "helpdeskd_sweep_actions",
    "Scheduler actions: warn, breach, escalate, closing_warning, close",
    ["action"],
    registry=None,
)
COUNTERS = (MESSAGES, CASES_OPENED, PROCESSING, OUTBOX, SWEEP)
WORKER_SILENT = 60.0  # seconds: the idle worker turns every few seconds


def processed(entrance: str, result, seconds: float) -> None:
    outcome = "quarantined" if result.quarantined else "skipped" if result.skipped else None
    outcome = outcome or (result.decision.action if result.decision else "unknown")
    MESSAGES.labels(entrance, outcome).inc()
    PROCESSING.observe(seconds)
    if outcome == "new" and result.reference:
        CASES_OPENED.inc()


def processing_failed(entrance: str) -> None:
    MESSAGES.labels(entrance, "failed").inc()


def swept(actions: Iterable[dict]) -> None:
    for action in actions:
        SWEEP.labels(action["action"]).inc()


def delivered(counts: dict[str, int]) -> None:
    """A courier's pass: {"sent": n, "retried": n, "failed": n} (delivery.tally)."""
    for name in ("sent", "retried", "failed"):
        OUTBOX.labels(name).inc(counts.get(name, 0))


class DatabaseGauges(Collector):
    """Gauges computed when scraped, each from one indexed query."""

    def __init__(self, database: Callable[[], Path | DatabaseUrl]):
        self.database = database

    def collect(self):
        store = open_store(self.database(), migrate=False)
        try:
            figures = Figures(store)
            open_cases = GaugeMetricFamily(
                "helpdeskd_open_cases",
                "Cases not closed, by status and plan",
                labels=("status", "plan"),
            )
            for row in figures.open_cases():
                open_cases.add_metric([row["status"], row["plan"]], row["n"])
            queued, _ = figures.outbox_backlog(datetime.now(UTC))
            waiting, _ = figures.spool_backlog()
            dead = figures.dead_mail()
        finally:
            store.close()
        yield open_cases
        for name, about, value in (
            ("helpdeskd_outbox_queued", "Mail waiting to be sent", queued),
            ("helpdeskd_spool_waiting", "Inbound mail not yet processed", waiting),
            ("helpdeskd_outbox_failed", "Mail given up on", dead["outbox_failed"]),
            ("helpdeskd_quarantined", "Inbound mail quarantined", dead["quarantined"]),
        ):
            yield GaugeMetricFamily(name, about, value=value)


class SpaceGauges(Collector):
    """The free space for the database and the margin kept (`[helpdesk] min_free_space`)."""

    def __init__(self, space: Callable[[], disk.Space | None]):
        self.space = space

    def collect(self):
        room = self.space()
        if room is None:
            return
        yield GaugeMetricFamily(
            "helpdeskd_free_bytes", "Free space on the database's filesystem", value=room.free
        )
        yield GaugeMetricFamily(
            "helpdeskd_wal_bytes",
            "The WAL's size: copied back, it may take as much",
            value=room.wal,
        )
        yield GaugeMetricFamily(
            "helpdeskd_free_margin_bytes",
            "Free space below which mail is refused (452) and /healthz fails",
            value=room.margin,
        )


def registry(
    database: Callable[[], Path | DatabaseUrl],
    space: Callable[[], disk.Space | None] = lambda: None,
) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=True)
    for counter in COUNTERS:
        found.register(counter)
    found.register(DatabaseGauges(database))
    found.register(SpaceGauges(space))
    return found


def application(config: Callable[[], Config], worker) -> Callable:
    """/metrics for Prometheus, /healthz for a load balancer: 200 while the worker turns and
    the database answers, 503 otherwise."""
    metrics_app = make_wsgi_app(
        registry(lambda: config().helpdesk.database, lambda: disk.space(config()))
    )

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/healthz":
            return metrics_app(environ, start_response)
        problem = liveness(config(), worker)
        status = "503 Service Unavailable" if problem else "200 OK"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [(problem or "ok").encode() + b"\n"]

    return app


def liveness(config: Config, worker) -> str | None:
    silent = time.monotonic() - worker.beat
    if silent > WORKER_SILENT:
        return f"worker silent for {silent:.0f}s"
    room = disk.space(config)
    if room is not None and room.short:
        return f"free space {disk.megabytes(room.left)}, below the margin: mail is refused"
    try:
        store = open_store(config.helpdesk.database, migrate=False)
        try:
            Figures(store).spool_backlog()
        finally:
            store.close()
    except Exception as exc:
        return f"database: {exc}"
    return None


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every 15 s are not news
        pass


def serve(host: str, port: int, config: Callable[[], Config], worker) -> WSGIServer:
    server = make_server(
        host, port, application(config, worker), server_class=_Server, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
