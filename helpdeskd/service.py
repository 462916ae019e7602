"""One object owns the daemon's lifecycle: start-up, supervision, SIGHUP reload, SIGTERM drain.

The SMTP listener and the courier run in processes of their own (children.py, roles.py), on
sockets this process binds. Threads here do the rest of the blocking work, each with its own
store connection: the worker (spool -> case, and the sweep), the webhooks and one poller per
IMAP mailbox. The event loop runs the status page and the scheduler, which only wakes them.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

import structlog

from helpdeskd import (
    allowlist,
    budget,
    disk,
    files,
    logs,
    metrics,
    quarantine,
    retention,
    sdnotify,
    sweep,
)
from helpdeskd import config as configuration
from helpdeskd.adapters import imap, scheduler, signin, smtp, webhooks
from helpdeskd.adapters.store import Heartbeats, Leases, Nodes, SearchIndex, Store, open_store
from helpdeskd.alerts import AdminAlerts
from helpdeskd.children import Child, ChildFailed
from helpdeskd.config import Config, ConfigError
from helpdeskd.delivery import Delivery, tally
from helpdeskd.loops import Loop
from helpdeskd.pipeline import Prepared, check, looks_up, prepare, settle

log = structlog.get_logger("helpdeskd.service")

DRAIN_SECONDS = 20
SWEEP_SLICE = 100  # due cases settled between two looks at the spool
GROUP_COMMIT = 8  # spooled messages applied in one transaction: one fsync, a short lock
# A backlog while the listener is quiet: longer transactions delay nobody's `250`
GROUP_COMMIT_BACKLOG = 25
BATCH = 50  # spooled messages the worker takes at once
SEARCH_SLICE = 20  # texts indexed at a time while no mail waits: some 15 ms of the write lock
QUIET_SECONDS = 0.5
RESTART_SECONDS = 1.0  # a child process that ended on its own is started again after this
# While mail pours in, the worker rests this many times as long as each group took, so that
# the listener's spool commits get the database's write lock (and a core) first; the backlog
# follows the burst. A burst: the listener said, within the last BURST_SECONDS, that
# several mails (smtp.BURST) waited behind its commit.
YIELD_TO_LISTENER = 4.0
BURST_SECONDS = 0.05
WEBHOOK_SECONDS = 5  # how often due webhook retries are looked for
CHECKPOINT_SECONDS = 1  # the WAL is copied into the database this often, off the commits
# Messages whose senders are checked side by side: with a resolver that does not answer, a
# batch of mail from as many domains waits out this many time-outs at once.
LOOKUPS_SIDE_BY_SIDE = 16
WEB_FAILED = "the new status page could not start"
LISTENER_FAILED = "the new SMTP listener could not start"


def utcnow() -> datetime:
    return datetime.now(UTC)


def group_end(items: list, waits: list, start: int, size: int) -> int:
    """Where the group from `start` ends: after `size` messages, or before a large message
    still being parsed (in the parse child), so that the mail before it is committed, and
    acknowledged, without waiting for that parse."""
    end = min(start + size, len(items))
    for i in range(start + 1, end):
        parsing = waits[i] is None or not waits[i].done()
        if parsing and len(items[i].raw) > budget.INLINE_BYTES:
            return i
    return end


class CannotStart(Exception):
    """The daemon cannot do its work here (its listening address is taken): said before any
    thread starts, in one line."""


def bind_listener(config: Config) -> list[socket.socket]:
    """The listener's sockets, bound here before anything starts: a second `run` fails here,
    in one line, rather than halfway up."""
    try:
        return smtp.bind(config.smtp)
    except OSError as exc:
        where = f"{config.smtp.host}:{config.smtp.port}"
        hint = {
            errno.EADDRINUSE: "is helpdeskd already running? Stop it, or set another [smtp] port",
            errno.EADDRNOTAVAIL: "that address is not one of this machine's: check [smtp] host",
            errno.EACCES: "ports below 1024 need privileges: use a higher [smtp] port",
        }.get(exc.errno or 0, "check [smtp] host and port")
        why = (exc.strerror or str(exc)).lower()
        raise CannotStart(f"cannot listen on {where}: {why}; {hint}") from exc


class Service:
    def __init__(self, config: Config, clock: Callable[[], datetime] = utcnow):
        self.config = config
        self.clock = clock
        self.store = open_store(config.helpdesk.database)
        self.worker_store = self.open_store()
        self.worker_store.large_cache()
        self.checkpoint_store = open_store(config.helpdesk.database, migrate=False)
        self.ahead = budget.Ahead()
        self.parsing: dict[int, Future] = {}  # spool id: its parse ahead, for the next batch
        self.lookups = ThreadPoolExecutor(LOOKUPS_SIDE_BY_SIDE, "lookups")
        self.worker = Loop("worker", self.work, 5)
        self.courier = Loop("courier", self.deliver, 30)
        # webhooks in a thread of their own: a receiver that hangs holds up neither mail nor cases
        self.hooks_store = self.open_store()
        self.hooks = Loop("webhooks", self.tell_webhooks, WEBHOOK_SECONDS)
        self.checkpoints = Loop("checkpoint", self.checkpoint, CHECKPOINT_SECONDS)
        # the node's heartbeat and its leases, renewed three times a lease
        self.lease_store = self.open_store()
        self.leasing = Loop("leases", self.renew_leases, config.helpdesk.lease_seconds / 3)
        self.started_at = clock()
        self.held: frozenset[str] = frozenset()  # the leases this node holds
        self.pollers_guard = threading.Lock()
        self.alerts = AdminAlerts(self.open_store, lambda: self.config, lambda: self.courier.wake())
        self.pollers: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self.listening: list[socket.socket] = []  # bound here, served by the listener process
        self.listener: Child | None = None
        self.last_spooled = 0.0  # time.monotonic() of the listener's last spooled mail
        self.last_burst = 0.0  # ... and of its last commit with a burst waiting behind it
        self.scheduler = None
        self.stopped = asyncio.Event()
        self.sweep_requested = threading.Event()
        self.reloading: asyncio.Task | None = None
        self.metrics_server = None
        self.next_purge = 0.0  # monotonic time of the next retention pass
        self.loop: asyncio.AbstractEventLoop | None = None
        self.allowlist_seen = allowlist.mtime(config)
        self.web: tuple | None = None  # (server, task) of the status page, when enabled
        self.short_of_space = False  # below [helpdesk] min_free_space at the last look

    def open_store(self) -> Store:
        return open_store(self.config.helpdesk.database, migrate=False).leave_checkpoints()

    def checkpoint(self) -> bool:
        if not self.watch_space():
            self.checkpoint_store.checkpoint()
        return False

    def watch_space(self) -> bool:
        """Each second: below the margin the WAL is copied back and cut to nothing, instead of
        the usual checkpoint (it is space the database gives back; without room for the copy
        it fails, quietly, until there is); once space returns, once more, and the worker and
        the courier go on at once with what waited (the listener looks for itself, mail by
        mail). True when the WAL was seen to."""
        room = disk.space(self.config)
        short = room is not None and room.short
        cut = short or self.short_of_space
        if cut:
            self.checkpoint_store.truncate_wal()
        if short != self.short_of_space:
            self.space_changed(room, short)
        return cut

    def space_changed(self, room: disk.Space, short: bool) -> None:
        """Said once each way, not each second; space back, what waited goes on at once."""
        self.short_of_space = short
        if short:
            log.error(
                "free space below the margin: mail is refused with 452",
                free=disk.megabytes(room.free),
                wal=disk.megabytes(room.wal),
                margin=disk.megabytes(room.margin),
            )
        else:
            log.warning("free space back above the margin: mail is taken again")
            self.worker.wake()
            self.courier.wake()

    # -- the work ---------------------------------------------------------------------------

    def request_sweep(self) -> None:
        self.sweep_requested.set()
        self.worker.wake()

    # -- one node at a time: the sweep and each mailbox ------------------------------------

    def renew_leases(self) -> bool:
        """The node's heartbeat, then its leases taken or renewed: the sweep (with the monthly
        reports) and each IMAP mailbox run where their lease is held. A lease newly taken
        (its holder died) starts its work at once."""
        now, node, seconds = (
            self.clock(),
            self.config.helpdesk.node,
            self.config.helpdesk.lease_seconds,
        )
        leases = Leases(self.lease_store)
        Nodes(self.lease_store).beat(node, os.getpid(), self.started_at, now)
        wanted = ["sweep", *(f"imap:{box.name}" for box in self.config.imap)]
        held = frozenset(name for name in wanted if leases.take(name, node, now, seconds))
        gained, lost = held - self.held, self.held - held
        self.held = held
        if gained or lost:
            log.info("leases changed", gained=sorted(gained), lost=sorted(lost))
        if "sweep" in gained:
            self.request_sweep()
        if any(name.startswith("imap:") for name in gained | lost):
            self.start_pollers()
        return False

    def release_leases(self) -> None:
        """A node stopping lets its leases go, so another takes over at once."""
        leases = Leases(self.lease_store)
        for name in self.held:
            leases.release(name, self.config.helpdesk.node)
        self.held = frozenset()

    def work(self) -> bool:
        """Process what is spooled, oldest first, then what the scheduler asked for; one thread
        does both, so a sweep and a customer's reply never race on the same case. With no
        mail in hand, the search index catches up. True when there may be more."""
        if self.sweep_requested.is_set():
            self.sweep_requested.clear()
            self.sweep_slice()
        fetched = self.worker_store.pending(self.clock(), limit=BATCH + GROUP_COMMIT)
        parsed = self.parse_ahead(fetched)
        items, parsed = fetched[:BATCH], parsed[:BATCH]
        checked = self.check_ahead(items, parsed)
        waits = [c or p for c, p in zip(checked, parsed, strict=True)]
        start = 0
        while start < len(items):
            room = disk.space(self.config)
            if room is not None and room.scarce:  # watch_space wakes it when space returns
                return False
            self.reload_if_allowlist_changed()
            end = group_end(items, waits, start, self.group_size(room))
            self.process_group(items[start:end], parsed[start:end], checked[start:end])
            start = end
        if items:
            self.courier.wake()
            self.hooks.wake()
            return True  # more mail may have come meanwhile; if not, its texts are indexed
        return self.index_texts() or self.sweep_requested.is_set()

    def index_texts(self) -> bool:
        """With no mail in hand, the search index takes in the texts the last mail added;
        True while more are left. (Indexed in the mail's own transaction, they cost each mail
        some 0.8 ms, and its acknowledgement waited for them.)"""
        return SearchIndex(self.worker_store).catch_up(SEARCH_SLICE) == SEARCH_SLICE

    def group_size(self, room: disk.Space | None) -> int:
        """Below the margin, one message a commit: a group's commit may take more than the
        half of the margin that is the worker's."""
        if room is not None and room.short:
            return 1
        quiet = time.monotonic() - self.last_spooled > QUIET_SECONDS
        return GROUP_COMMIT_BACKLOG if quiet else GROUP_COMMIT

    def parse_ahead(self, items: list) -> list:
        """What waits behind the first group is parsed in the parse child meanwhile; the
        first group is parsed as it is applied, so that mail arriving at a steady pace is
        not handed from thread to thread (a few milliseconds each time). Behind a batch,
        the next batch's first group is parsed ahead too, so a backlog is parsed in the
        child throughout and never in the worker's interpreter."""
        seconds = self.config.policy.processing_budget
        started, self.parsing = self.parsing, {}
        parsed = [started.pop(item.id, None) for item in items]
        for future in started.values():  # mail another worker took meanwhile
            future.cancel()
        for i in range(GROUP_COMMIT, len(items)):
            parsed[i] = parsed[i] or self.ahead.submit(
                items[i].raw, items[i].envelope_from, seconds
            )
        self.parsing = {item.id: f for item, f in zip(items[BATCH:], parsed[BATCH:], strict=True)}
        return parsed

    def check_ahead(self, items: list, parsed: list) -> list:
        """The senders of the messages that need DNS (a first hop's DKIM, SPF and DMARC) are
        checked side by side, so a domain whose servers do not answer costs its own message
        the time-out and no one else's. A message alone is checked as it is applied."""
        config = self.config
        wanted = [looks_up(config, item.source) for item in items]
        if sum(wanted) < 2:
            return [None] * len(items)
        return [
            self.lookups.submit(check, config, item, ahead) if want else None
            for item, ahead, want in zip(items, parsed, wanted, strict=True)
        ]

    def reload_if_allowlist_changed(self) -> None:
        """An engineer's #allow (here or in an `ingest`) rewrote the allow-list file: reload,
        on the event loop as SIGHUP does, before the next message is classified."""
        seen = allowlist.mtime(self.config)
        if seen == self.allowlist_seen or self.loop is None:
            return
        self.allowlist_seen = seen
        asyncio.run_coroutine_threadsafe(self.apply_reload(), self.loop).result(DRAIN_SECONDS)

    def sweep_slice(self) -> None:
        """A slice of what is due, so a Monday with thousands of due cases never keeps new
        mail waiting: the next slice comes after the mail in hand."""
        if "sweep" not in self.held:
            return  # another node sweeps
        now = self.clock()
        actions = sweep.run(self.worker_store, self.config, now, max_cases=SWEEP_SLICE)
        metrics.swept(actions)
        Heartbeats(self.worker_store).stamp("sweep", now)
        if len({a["reference"] for a in actions}) >= SWEEP_SLICE:
            self.request_sweep()
        else:
            self.apply_retention(now)
        self.courier.wake()
        self.hooks.wake()

    def apply_retention(self, now: datetime) -> None:
        """`[retention]` once an hour, after a sweep has caught up: it is housekeeping."""
        days = self.config.retention.raw_mail_days
        if days and time.monotonic() >= self.next_purge:
            self.next_purge = time.monotonic() + 3600
            retention.purge(self.worker_store, timedelta(days=days), now)

    def process_group(self, items: list, parsed: list, checked: list) -> None:
        """Messages that arrived together: each parsed and classified first, without the write
        lock, then all applied in one transaction, each in its own savepoint, so they share
        one commit and a failing one is undone alone. Failures are counted after the commit."""
        store, config, failed = self.worker_store, self.config, []
        started = time.monotonic()
        ready = [
            self.attempt(item, failed, prepare, store, config, item, self.clock(), inbound, done)
            for item, inbound, done in zip(items, parsed, checked, strict=True)
        ]
        done = []
        with store.transaction():
            for item, prepared in zip(items, ready, strict=True):
                result = prepared
                if isinstance(prepared, Prepared):
                    result = self.attempt(
                        item, failed, settle, store, config, prepared, self.clock()
                    )
                if result is not None:
                    done.append((item, result))
        self.courier.wake()  # the group's mail is committed: out it goes, before the next group
        spent = time.monotonic() - started
        for item, result in done:
            metrics.processed(item.source, result, spent / len(items))  # the group's time, shared
            if result.quarantined:
                self.quarantine_grew(item.id)
        for item, exc in failed:
            metrics.processing_failed(item.source)
            self.count_failure(item, exc)
        self.yield_to_listener(spent)

    def yield_to_listener(self, spent: float) -> None:
        """At a steady pace mail rarely waits for its commit and the worker goes on; in a
        burst the listener answers at the disk's pace and the worker catches up behind it."""
        if time.monotonic() - self.last_burst < BURST_SECONDS:
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
        if disk.is_full(exc):  # not the message's fault: it goes again when space returns
            log.warning("processing waits for free space", spool_id=item.id)
            return
        state = self.worker_store.failed_attempt(
            item.id, f"{type(exc).__name__}: {exc}", self.clock(), self.config.policy.max_attempts
        )
        log.warning("processing try counted", spool_id=item.id, state=state)
        if state == "quarantined":
            self.quarantine_grew(item.id)

    def quarantine_grew(self, spool_id: int) -> None:
        """Every quarantined message reaches the admins at once, one mail per window."""
        quarantine.tell_admins(self.alerts, self.worker_store, spool_id, self.clock())

    @cached_property
    def delivery(self) -> Delivery:
        return Delivery(lambda: self.config, self.open_store, self.clock, self.alerts)

    def deliver(self) -> bool:
        """One courier's turn in this process (the daemon's courier runs in its own)."""
        metrics.delivered(tally(self.delivery.deliver()))
        return False

    def tell_webhooks(self) -> bool:
        return (
            bool(self.config.webhooks)
            and webhooks.flush(self.hooks_store, self.config, self.clock()) > 0
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopped.set)
        loop.add_signal_handler(signal.SIGINT, self.stopped.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        if self.config.smtp.enabled:
            self.listening = bind_listener(self.config)
        budget.warm_up()  # a spare parse child, ready before the first large message
        files.warn_if_exposed(self.config.helpdesk.database, signin.secret_path(self.config))
        self.worker.start()  # start-up recovery: whatever was spooled but not processed
        try:
            await self.spawn_children()
            self.hooks.start()
            self.checkpoints.start()
            self.renew_leases()  # before the scheduler's first sweep
            self.leasing.start()
            await self.start_web()
        except ChildFailed as exc:
            await self.stop_children()
            raise CannotStart(str(exc)) from exc
        except OSError as exc:  # the status page's port taken, its key file out of reach
            await self.stop_children()
            raise CannotStart(f"the status page cannot start: {exc}; check [web]") from exc
        self.start_pollers()
        self.scheduler = scheduler.start(self)
        self.start_metrics()
        log.info("started", config=str(self.config.path))
        # only now: `systemctl start` returns once the port takes mail and the store is open
        sdnotify.notify("READY=1")
        watchdog = asyncio.create_task(self.watch())
        await self.stopped.wait()
        watchdog.cancel()
        await self.shutdown()

    async def watch(self) -> None:
        """WATCHDOG=1 only while the worker answers: each tick pokes it, and the next tick
        pings only if it has turned round since. A stuck worker (or event loop) goes unpinged
        and systemd restarts the daemon."""
        interval = sdnotify.watchdog_seconds()
        if not interval:
            return
        poked = time.monotonic()
        self.worker.wake()
        while True:
            await asyncio.sleep(interval / 4)
            if self.worker.beat >= poked:
                sdnotify.notify("WATCHDOG=1")
            else:
                log.warning("worker not answering", seconds=round(time.monotonic() - poked, 1))
                continue  # keep the old poke: the worker must answer that one
            poked = time.monotonic()
            self.worker.wake()

    def start_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled:
            return
        try:
            self.metrics_server = metrics.serve(
                settings.host, settings.port, lambda: self.config, self.worker
            )
        except OSError as exc:  # the mail matters more than its figures: run without them
            log.error("metrics endpoint not started", port=settings.port, error=str(exc))

    # -- the listener's and the courier's processes ------------------------------------------

    async def spawn(self, role: str, sockets: list[socket.socket] = ()) -> Child:
        """A child process, serving once this returns; ChildFailed with its reason if not."""
        child = Child(
            role, self.config, self.heard, sockets=sockets, clock_offset=self.clock_offset()
        )
        child.on_exit = self.child_ended
        await asyncio.to_thread(child.start)
        return child

    async def spawn_children(self) -> None:
        """Both at once (each is an interpreter starting); the courier first takes back
        whatever a killed courier of this node held."""
        listening = self.config.smtp.enabled
        started = await asyncio.gather(
            self.spawn("courier"),
            *([self.spawn("listener", self.listening)] if listening else []),
            return_exceptions=True,
        )
        self.courier, self.listener = (*started, None)[:2]
        failed = [found for found in started if isinstance(found, BaseException)]
        if failed:
            raise failed[0]
        self.pass_on_config()  # a reload while they started

    def pass_on_config(self) -> None:
        """The children run this process's configuration, never a file of their own reading."""
        for child in (self.listener, self.courier):
            if isinstance(child, Child) and child.config is not self.config:
                child.reload(self.config)

    def clock_offset(self) -> float:
        """The children keep this process's time when it is not the machine's."""
        offset = (self.clock() - utcnow()).total_seconds()
        return offset if abs(offset) > 1 else 0.0

    def heard(self, message: dict) -> None:
        """From a child's thread: mail spooled (the worker's turn), mail delivered (counted)."""
        if "spooled" in message:
            self.last_spooled = time.monotonic()
            if message.get("burst"):
                self.last_burst = self.last_spooled
            self.worker.wake()
        if "delivered" in message:
            metrics.delivered(message["delivered"])

    def child_ended(self, child: Child) -> None:
        """From the ended child's thread: it is started again, on the event loop. Meanwhile
        mail waits in the senders' queues (the listener) or in the outbox (the courier)."""
        if self.loop is not None and not self.stopped.is_set():
            self.loop.call_soon_threadsafe(asyncio.ensure_future, self.restart_child(child))

    async def restart_child(self, child: Child, attempt: int = 1) -> None:
        await asyncio.sleep(min(RESTART_SECONDS * 2 ** (attempt - 1), 60))
        if self.stopped.is_set() or child not in (self.listener, self.courier):
            return  # stopping, or replaced meanwhile by a reload
        try:
            new = await self.spawn(child.role, child.sockets)
        except ChildFailed as exc:
            log.error("process could not start again", role=child.role, error=str(exc))
            await self.restart_child(child, attempt + 1)
            return
        if child is self.listener:
            self.listener = new
        else:
            self.courier = new

    async def stop_listener(self) -> None:
        """Its sockets closed here too, so that no connection waits for an accept."""
        for sock in self.listening:
            sock.close()
        if isinstance(self.listener, Child):
            await asyncio.to_thread(self.listener.stop, DRAIN_SECONDS)

    async def stop_children(self) -> None:
        await self.stop_listener()
        if isinstance(self.courier, Child):
            await asyncio.to_thread(self.courier.stop, DRAIN_SECONDS)

    async def start_web(self) -> None:
        if self.config.web.enabled:
            self.web = await self.serve_web(self.new_page())

    def new_page(self):
        from helpdeskd.adapters import web  # the web stack loads only where it is used

        return web.Web(lambda: self.config, self.worker.wake, self.courier.wake, self.clock)

    async def serve_web(self, page, sock: socket.socket | None = None) -> tuple:
        from helpdeskd.adapters import web

        return await web.serve(page, sock or web.bind(self.config))

    async def restart_web(self, old: Config) -> None:
        """The new page is made, and its new address bound, before the old page stops: when
        either fails (the port taken, the key file unreadable), the old page serves on with
        the old `[web]`, which the next reload tries again, and the admins are told."""
        from helpdeskd.adapters import web

        new, sock = self.config.web, None
        moving = not old.web.enabled or (old.web.host, old.web.port) != (new.host, new.port)
        try:
            if new.enabled and moving:
                sock = web.bind(self.config)
            page = self.new_page() if new.enabled else None
        except OSError as exc:
            if sock:
                sock.close()
            self.config = replace(self.config, web=old.web)
            log.error("new status page failed, serving as before", error=str(exc))
            await asyncio.to_thread(
                self.alerts.trouble,
                "web",
                WEB_FAILED,
                f"{exc}\nhelpdeskd serves the status page with the previous [web] settings.",
                self.clock(),
            )
            return
        await self.stop_web()
        if page:
            self.web = await self.serve_web(page, sock)
        await asyncio.to_thread(self.alerts.recovered, "web", WEB_FAILED, self.clock())

    async def stop_web(self) -> None:
        if self.web:
            server, task = self.web
            server.should_exit = True
            await asyncio.wait_for(task, DRAIN_SECONDS)
            self.web = None

    def start_pollers(self) -> None:
        """A poller for each mailbox whose lease this node holds, none for the others."""
        with self.pollers_guard:
            held = {m.name for m in self.config.imap if f"imap:{m.name}" in self.held}
            self._stop_pollers(set(self.pollers) - held)
            for mailbox in self.config.imap:
                if mailbox.name in held and mailbox.name not in self.pollers:
                    self.pollers[mailbox.name] = self.start_poller(mailbox)

    def start_poller(self, mailbox) -> tuple[threading.Thread, threading.Event]:
        poller = imap.MailboxPoller(
            mailbox,
            self.open_store,
            self.worker.wake,
            self.alerts,
            clock=self.clock,
            ssl_context=imap.tls_context(mailbox.ca_file),
            max_message_size=self.config.smtp.max_message_size,  # one limit, every entrance
        )
        stop = threading.Event()
        return poller.start(stop), stop

    def stop_pollers(self) -> None:
        with self.pollers_guard:
            self._stop_pollers(set(self.pollers))

    def _stop_pollers(self, names: set[str]) -> None:
        stopping = [self.pollers.pop(name) for name in names]
        for _, stop in stopping:
            stop.set()
        for thread, _ in stopping:
            thread.join(DRAIN_SECONDS)

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
        logs.configure_for(new)
        log.info("configuration reloaded")
        if (old.smtp, old.helpdesk.addresses) != (new.smtp, new.helpdesk.addresses):
            await self.restart_listener(old)
        self.pass_on_config()
        if old.web != new.web:
            await self.restart_web(old)
        if old.imap != new.imap:
            await asyncio.to_thread(self.stop_pollers)  # joining threads: off the loop
            self.start_pollers()

    async def restart_listener(self, old: Config) -> None:
        """The new listener serves before the old one stops: on the same sockets when its
        address is the same, on sockets bound first when it moved. When either fails (the
        port taken, the certificate refused), the old one listens on with the old `[smtp]`,
        which the next reload tries again, and the admins are told."""
        new = self.config.smtp
        moved = (old.smtp.host, old.smtp.port) != (new.host, new.port) or not self.listening
        sockets, child = (self.listening if new.enabled else []), None
        try:
            if new.enabled and moved:
                sockets = await asyncio.to_thread(bind_listener, self.config)
            if new.enabled:
                child = await self.spawn("listener", sockets)
        except (CannotStart, ChildFailed) as exc:
            if sockets is not self.listening:
                for sock in sockets:
                    sock.close()
            self.config = replace(self.config, smtp=old.smtp)
            log.error("new SMTP listener failed, listening as before", error=str(exc))
            await asyncio.to_thread(
                self.alerts.trouble,
                "listener",
                LISTENER_FAILED,
                f"{exc}\nhelpdeskd listens with the previous [smtp] settings.",
                self.clock(),
            )
            return
        before, self.listener = self.listener, child
        if sockets is not self.listening:
            for sock in self.listening:
                sock.close()
            self.listening = sockets
        if before is not None:
            await asyncio.to_thread(before.stop, DRAIN_SECONDS)
        await asyncio.to_thread(self.alerts.recovered, "listener", LISTENER_FAILED, self.clock())

    async def shutdown(self) -> None:
        """First stop taking mail in, then let the threads finish what they hold, and the
        courier deliver what the worker's last group queued."""
        log.info("stopping")
        sdnotify.notify("STOPPING=1")
        if self.metrics_server:
            self.metrics_server.shutdown()
        await self.stop_listener()
        await self.stop_web()
        if self.scheduler:
            self.scheduler.shutdown(wait=False)
        self.leasing.stop()
        self.leasing.join(DRAIN_SECONDS)
        self.stop_pollers()
        for loop in (self.worker, self.hooks, self.checkpoints):
            loop.stop()
            loop.join(DRAIN_SECONDS)
        await self.stop_children()
        self.release_leases()
        self.ahead.close()
        self.lookups.shutdown(wait=False, cancel_futures=True)
        log.info("stopped")


def run(config: Config) -> None:
    logs.configure_for(config)
    asyncio.run(Service(config).run())
