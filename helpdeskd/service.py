"""One object owns the daemon's lifecycle: start-up, supervision, SIGHUP reload, SIGTERM drain.

Threads do the blocking work, each with its own SQLite connection: the worker (spool -> case),
the courier (outbox delivery) and one poller per IMAP mailbox. The event loop runs the SMTP
listener and the scheduler, which only wakes the threads.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from helpdeskd import config as configuration
from helpdeskd import sweep
from helpdeskd.adapters import imap, outbox, scheduler, smtp
from helpdeskd.adapters.store import Store
from helpdeskd.alerts import AdminAlerts
from helpdeskd.config import Config, ConfigError
from helpdeskd.pipeline import Prepared, prepare, settle

log = structlog.get_logger("helpdeskd.service")

DRAIN_SECONDS = 20
SWEEP_SLICE = 100  # due cases settled between two looks at the spool
GROUP_COMMIT = 8  # spooled messages applied in one transaction: one fsync, a short lock
CHECKPOINT_SECONDS = 1  # the WAL is copied into the database this often, off the commits
# While mail pours in, the worker rests this many times as long as each group took: the
# listener gets the interpreter first (one GIL for both), and the backlog follows the burst.
YIELD_TO_LISTENER = 4.0
# The alerts themselves going out prove nothing about the mail that was given up on.
ADMIN_MAIL = frozenset({"admin_alert", "admin_recovered"})


def utcnow() -> datetime:
    return datetime.now(UTC)


class Loop(threading.Thread):
    """A thread that runs `step()` whenever woken, or every `interval` seconds."""

    def __init__(self, name: str, step: Callable[[], bool], interval: float):
        super().__init__(name=name, daemon=True)
        self.step, self.interval = step, interval
        self.woken, self.stopping = threading.Event(), threading.Event()

    def wake(self) -> None:
        self.woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self.woken.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.woken.clear()
            try:
                more = self.step()
            except Exception:
                log.exception("step failed", thread=self.name)
                more = False
            if not more:
                self.woken.wait(self.interval)


class Service:
    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.clock = clock
        self.store = Store.open(config.helpdesk.database)
        self.worker_store = Store(config.helpdesk.database).leave_checkpoints()
        # the worker inserts into indexes of millions of random keys (Message-IDs): a page
        # cache of 32 MiB instead of SQLite's 2 keeps their upper levels in memory
        self.worker_store.db.execute("PRAGMA cache_size = -32768")
        self.courier_store = Store(config.helpdesk.database).leave_checkpoints()
        self.checkpoint_store = Store(config.helpdesk.database)
        self.worker = Loop("worker", self.work, 5)
        self.courier = Loop("courier", self.deliver, 30)
        self.checkpoints = Loop("checkpoint", self.checkpoint, CHECKPOINT_SECONDS)
        self.alerts = AdminAlerts(self.open_store, lambda: self.config, self.courier.wake)
        self.pollers: list[tuple[threading.Thread, threading.Event]] = []
        self.server: asyncio.base_events.Server | None = None
        self.listener: smtp.SpoolHandler | None = None
        self.scheduler = None
        self.stopped = asyncio.Event()
        self.sweep_requested = threading.Event()
        self.reloading: asyncio.Task | None = None

    def open_store(self) -> Store:
        return Store(self.config.helpdesk.database).leave_checkpoints()

    def checkpoint(self) -> bool:
        self.checkpoint_store.checkpoint()
        return False

    # -- the work ---------------------------------------------------------------------------

    def request_sweep(self) -> None:
        self.sweep_requested.set()
        self.worker.wake()

    def work(self) -> bool:
        """Process what is spooled, oldest first, then what the scheduler asked for; one thread
        does both, so a sweep and a customer's reply never race on the same case.
        True when there may be more."""
        if self.sweep_requested.is_set():
            self.sweep_requested.clear()
            self.sweep_slice()
        items = self.worker_store.pending(self.clock(), limit=50)
        for start in range(0, len(items), GROUP_COMMIT):
            self.process_group(items[start : start + GROUP_COMMIT])
        if items:
            self.courier.wake()
        return len(items) == 50 or self.sweep_requested.is_set()

    def sweep_slice(self) -> None:
        """A slice of what is due, so a Monday with thousands of due cases never keeps new
        mail waiting: the next slice comes after the mail in hand."""
        actions = sweep.run(self.worker_store, self.config, self.clock(), max_cases=SWEEP_SLICE)
        if len({a["reference"] for a in actions}) >= SWEEP_SLICE:
            self.request_sweep()
        self.courier.wake()

    def process_group(self, items: list) -> None:
        """Messages that arrived together: each parsed and classified first, without the write
        lock, then all applied in one transaction, each in its own savepoint, so they share
        one commit and a failing one is undone alone. Failures are counted after the commit."""
        store, config, failed = self.worker_store, self.config, []
        started = time.monotonic()
        ready = [
            self.attempt(item, failed, prepare, store, config, item, self.clock()) for item in items
        ]
        with store.transaction():
            for item, prepared in zip(items, ready, strict=True):
                if isinstance(prepared, Prepared):
                    self.attempt(item, failed, settle, store, config, prepared, self.clock())
        self.courier.wake()  # the group's mail is committed: out it goes, before the next group
        for item, exc in failed:
            self.count_failure(item, exc)
        self.yield_to_listener(time.monotonic() - started)

    def yield_to_listener(self, spent: float) -> None:
        """At a steady pace mail rarely waits for its commit and the worker goes on; in a
        burst the listener answers at the disk's pace and the worker catches up behind it."""
        if self.listener is not None and self.listener.busy():
            self.worker.stopping.wait(min(spent * YIELD_TO_LISTENER, 0.5))

    def attempt(self, item, failed: list, step: Callable, *args):
        """One step on one message; a failure is noted, to be counted after the commit."""
        with structlog.contextvars.bound_contextvars(spool_id=item.id):
            try:
                return step(*args)
            except Exception as exc:
                log.exception("processing failed")
                failed.append((item, exc))
                return None

    def count_failure(self, item, exc: Exception) -> None:
        state = self.worker_store.failed_attempt(
            item.id, f"{type(exc).__name__}: {exc}", self.clock(), self.config.policy.max_attempts
        )
        log.warning("processing try counted", spool_id=item.id, state=state)
        if state == "quarantined":
            self.quarantine_grew()

    def quarantine_grew(self) -> None:
        count = len(self.worker_store.quarantined())
        if count and count % 10 == 1:  # the 1st, 11th, 21st...: a growing quarantine, not spam
            self.alerts.trouble(
                f"quarantine:{count}",
                f"{count} message(s) quarantined",
                "Run `helpdeskd cases --quarantined` to see them and why.",
                self.clock(),
            )

    def deliver(self) -> bool:
        """One incident while mail is being given up on, not one alert per message: a relay
        that is down for a day would otherwise bury the admins."""
        result = outbox.flush(self.courier_store, self.config.outbound, self.clock())
        if result.failed:
            lines = [
                f"outbox {i.id} ({i.kind}) to {', '.join(i.recipients)}" for i in result.failed
            ]
            self.alerts.trouble(
                "outbox",
                "outgoing mail given up on",
                "Given up after every retry:\n"
                + "\n".join(lines)
                + "\n\n`helpdeskd outbox` lists what failed and why.",
                self.clock(),
            )
        elif any(item.kind not in ADMIN_MAIL for item in result.sent):
            self.alerts.recovered("outbox", "outgoing mail given up on", self.clock())
        return False

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopped.set)
        loop.add_signal_handler(signal.SIGINT, self.stopped.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.worker.start()  # start-up recovery: whatever was spooled but not processed
        self.courier.start()
        self.checkpoints.start()
        await self.start_listener()
        self.start_pollers()
        self.scheduler = scheduler.start(self)
        log.info("started", config=str(self.config.path))
        await self.stopped.wait()
        await self.shutdown()

    async def start_listener(self, config: Config | None = None) -> None:
        config = config or self.config
        if not config.smtp.enabled:
            return
        handler = smtp.SpoolHandler(
            self.open_store(),  # its own connection: an old handler may still be finishing
            config.helpdesk.addresses,
            self.worker.wake,
            lmtp=config.smtp.lmtp,
            clock=self.clock,
        )
        self.server = await smtp.start(handler, config.smtp)
        self.listener = handler

    def start_pollers(self) -> None:
        for mailbox in self.config.imap:
            poller = imap.MailboxPoller(
                mailbox,
                self.open_store,
                self.worker.wake,
                self.alerts,
                clock=self.clock,
                ssl_context=imap.tls_context(mailbox.ca_file),
            )
            stop = threading.Event()
            self.pollers.append((poller.start(stop), stop))

    def stop_pollers(self) -> None:
        for _, stop in self.pollers:
            stop.set()
        for thread, _ in self.pollers:
            thread.join(DRAIN_SECONDS)
        self.pollers = []

    def reload(self) -> None:
        """SIGHUP: the work is done in a task, so the signal handler never blocks the loop."""
        self.reloading = asyncio.get_running_loop().create_task(self.apply_reload())

    async def apply_reload(self) -> None:
        """A bad file keeps the running configuration; listeners and pollers restart only
        when their part of it changed."""
        try:
            new = configuration.load(self.config.path)
        except ConfigError as exc:
            log.error(
                "reload refused, keeping the running configuration",
                problems=[f"{k}: {v}" for k, v in exc.problems],
            )
            return
        old, self.config = self.config, new
        log.info("configuration reloaded")
        if (old.smtp, old.helpdesk.addresses) != (new.smtp, new.helpdesk.addresses):
            await self.restart_listener(old)
        if old.imap != new.imap:
            await asyncio.to_thread(self.stop_pollers)  # joining threads: off the loop
            self.start_pollers()

    async def restart_listener(self, old: Config) -> None:
        """If the new listener cannot start (its port taken, its certificate refused), listen
        as before rather than not at all, and tell the admins."""
        if self.server:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        try:
            await self.start_listener()
        except (OSError, ssl.SSLError) as exc:
            log.error("new SMTP listener failed, listening as before", error=str(exc))
            await asyncio.to_thread(
                self.alerts.trouble,
                "listener",
                "the new SMTP listener could not start",
                f"{exc}\nhelpdeskd listens with the previous [smtp] settings.",
                self.clock(),
            )
            await self.start_listener(old)

    async def shutdown(self) -> None:
        """First stop taking mail in, then let the threads finish what they hold."""
        log.info("stopping")
        if self.server:
            self.server.close()
        if self.scheduler:
            self.scheduler.shutdown(wait=False)
        self.stop_pollers()
        for loop in (self.worker, self.courier, self.checkpoints):
            loop.stop()
            loop.join(DRAIN_SECONDS)
        log.info("stopped")


def run(config: Config) -> None:
    asyncio.run(Service(config).run())
