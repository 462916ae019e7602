"""Delivery of the durable outbox: SMTP relay or Maildir, with retries and backoff.

A message is marked sent only after the relay accepted it (or the Maildir file was renamed into
`new/`), so a crash in between sends it again: at least once, and in the normal course once.
Each message is recorded as soon as its answer comes, in a small commit of its own, so a crash
sends again only the message in flight on each session; and the messages a flush had claimed
are leased in the name of its node and process, so a courier that starts on the same node takes
back at once what a dead predecessor held (`take_back`) rather than waiting out the lease.
A flush delivers through `[outbound] connections` SMTP sessions side by side (to a distant relay
every answer takes a round trip, and one session spends most of its time waiting). Mail for the
same recipients always takes the same session, so it keeps its order.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import random
import smtplib
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from helpdeskd.adapters import page_command
from helpdeskd.adapters.store import OutboxQueue, Queued, Store
from helpdeskd.config import Outbound

log = structlog.get_logger("helpdeskd.outbox")


class Deferred(smtplib.SMTPException):
    """The relay deferred some recipients (4xx): only those are tried again, so the others
    do not get the message twice."""

    def __init__(self, recipients: tuple[str, ...], message: str):
        super().__init__(message)
        self.recipients = recipients


# How long a delivery may take before another flush may try the same message again.
LEASE = timedelta(minutes=10)
# Messages claimed together, in one commit; each is recorded on its own once delivered.
BATCH = 50
# A relay session the daemon's courier keeps between passes is closed after this long unused:
# well before a relay's own time-out (Postfix waits 300 s, 10 s when it is under stress), and
# the NOOP before each pass finds one it closed earlier.
KEEP_SECONDS = 60


class PermanentFailure(Exception):
    """The relay refused for good (5xx): retrying cannot help."""


@dataclass(frozen=True)
class FlushResult:
    sent: tuple[Queued, ...] = ()
    retried: tuple[Queued, ...] = ()
    failed: tuple[Queued, ...] = ()
    pages_failed: tuple[page_command.Failed, ...] = ()  # page_commands that did not run well


class Courier:
    """Delivers messages: to one Maildir, or over one SMTP session opened at the first message
    and kept for the next ones (a relay session per message was most of the cost), in this
    flush and, for the daemon's courier, the next ones (`refresh`)."""

    def __init__(self, outbound: Outbound):
        self.outbound = outbound
        self.smtp: smtplib.SMTP | None = None
        self.maildir: mailbox.Maildir | None = None
        self.used = 0.0  # time.monotonic() of the session's last message

    def refresh(self, sending: bool) -> None:
        """Before a pass on a kept session: closed when it has idled past KEEP_SECONDS (before
        a relay's own time-out); when mail is to go, asked NOOP first, so that a session the
        relay closed meanwhile is opened again now instead of failing the first message."""
        if self.smtp is None:
            return
        if time.monotonic() - self.used > KEEP_SECONDS:
            self.close()
            return
        if not sending:
            return
        try:
            alive = self.smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            alive = False
        if not alive:
            self.close()

    def deliver(self, item: Queued) -> None:
        if self.outbound.transport == "maildir":
            if self.maildir is None:
                # Maildir(create=True) makes tmp/new/cur only when the folder itself is missing
                for sub in ("tmp", "new", "cur"):
                    (self.outbound.path / sub).mkdir(parents=True, exist_ok=True)
                self.maildir = mailbox.Maildir(str(self.outbound.path), create=True)
            # the outbox keeps the wire format (CRLF); Maildir files use plain newlines
            self.maildir.add(item.raw.replace(b"\r\n", b"\n"))
            return
        try:
            if self.smtp is None:
                self.smtp = connect(self.outbound)
            refused = self.smtp.sendmail(
                envelope_sender(item, self.outbound), list(item.recipients), item.raw
            )
            self.used = time.monotonic()
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients  # smtplib reset the session: it goes on
        except smtplib.SMTPResponseException as exc:
            self.close()  # a fresh session for the next message: this one may be gone
            if exc.smtp_code >= 500:
                raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        except (OSError, smtplib.SMTPException):
            self.close()
            raise
        check_refused(item, refused or {})

    def __enter__(self) -> Courier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


class Lanes:
    """The sessions of one flush; a message goes to the lane of its recipients. The first lane
    delivers in the calling thread, the others in a pool beside it."""

    def __init__(self, outbound: Outbound):
        self.outbound = outbound
        count = outbound.connections if outbound.transport == "smtp" else 1
        self.couriers = [Courier(outbound) for _ in range(count)]
        self.pool = ThreadPoolExecutor(count - 1, "courier-lane") if count > 1 else None

    def deliver(self, items: list[Queued], done: Callable[[Queued, Exception | None], None]):
        """Each item is handed to `done` with its error (None when it was taken) as soon as
        its answer comes, from the thread of its lane."""
        lanes: list[list[Queued]] = [[] for _ in self.couriers]
        for item in items:
            key = "\n".join(sorted(item.recipients)).encode()
            lanes[zlib.crc32(key) % len(lanes)].append(item)
        beside = [
            self.pool.submit(_try_all, courier, lane, done)
            for courier, lane in zip(self.couriers[1:], lanes[1:], strict=True)
            if lane
        ]
        _try_all(self.couriers[0], lanes[0], done)
        for future in beside:
            future.result()

    def refresh(self, sending: bool) -> None:
        for courier in self.couriers:
            courier.refresh(sending)

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        for courier in self.couriers:
            courier.close()


def _try_all(courier: Courier, items: list[Queued], done: Callable) -> None:
    for item in items:
        done(item, _try(courier, item))


def deliver(item: Queued, outbound: Outbound) -> None:
    """One message on its own (an admin alert by another route than the courier's)."""
    with Courier(outbound) as courier:
        courier.deliver(item)


def connect(outbound: Outbound) -> smtplib.SMTP:
    context = None
    if outbound.tls != "none":  # loading the system's CAs costs milliseconds: only for TLS
        cafile = str(outbound.ca_file) if outbound.ca_file else None
        context = ssl.create_default_context(cafile=cafile)
    if outbound.tls == "implicit":
        smtp = smtplib.SMTP_SSL(outbound.host, outbound.port, timeout=30, context=context)
    else:
        smtp = smtplib.SMTP(outbound.host, outbound.port, timeout=30)
    try:
        if outbound.tls == "starttls":
            smtp.starttls(context=context)
        if outbound.username and outbound.password_file:
            smtp.login(outbound.username, outbound.password_file.read_text().strip())
    except BaseException:
        smtp.close()
        raise
    return smtp


def envelope_sender(item: Queued, outbound: Outbound) -> str:
    """Automatic mail goes out with the null sender, so nothing bounces back to a robot, unless
    the relay refuses a null sender and `automatic_sender` names one."""
    return item.mail_from or outbound.automatic_sender


def check_refused(item: Queued, refused: dict) -> None:
    deferred = tuple(r for r, (code, _) in refused.items() if code < 500)
    if deferred:
        raise Deferred(deferred, f"recipients deferred: {refused}")
    if len(refused) == len(item.recipients):
        raise PermanentFailure(f"every recipient refused: {refused}")


def backoff(outbound: Outbound, attempts: int, rng: random.Random) -> timedelta:
    """Exponential, capped, with jitter so a relay coming back is not hit all at once."""
    base = min(outbound.backoff * 2**attempts, outbound.backoff_max)
    return timedelta(seconds=base * rng.uniform(0.8, 1.2))


def lease_owner(node: str | None = None) -> str:
    """Who holds the mail this process delivers: its node (`[helpdesk] node`) and process."""
    return f"{node or socket.gethostname()}:{os.getpid()}"


def take_back(store: Store, node: str | None, now: datetime) -> int:
    """At a courier's start: mail leased by a process of this node that is gone (killed, or
    crashed) is due at once. Leases of other nodes, and of live processes here (an `outbox
    --flush` beside the daemon), run their course. Returns how many messages."""
    queue, mine = OutboxQueue(store), lease_owner(node)
    queue.fold_deliveries()  # the dead one's deliveries are sent, not due again
    here = mine.rpartition(":")[0]
    taken = 0
    for owner in queue.lease_holders():
        holder, _, pid = owner.rpartition(":")
        if holder == here and owner != mine and pid.isdigit() and _gone(int(pid)):
            taken += queue.release(owner, now)
    if taken:
        log.warning("took back mail a dead courier held", messages=taken)
    return taken


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def flush(
    store: Store,
    outbound: Outbound,
    now: datetime,
    *,
    node: str | None = None,
    rng: random.Random | None = None,
    limit: int = 1000,
    lanes: Lanes | None = None,
) -> FlushResult:
    """Deliver what is due, then run the page_commands of the pages recorded since; returns
    what happened, including what was given up on. `node` names this node in the leases (the
    host name by default). `lanes`: sessions kept from the caller's earlier passes (refreshed
    first); without them, a flush opens its own."""
    queue, owner = OutboxQueue(store), lease_owner(node)
    record = _Records(queue, outbound, now, rng or random.Random())
    queue.fold_deliveries()  # what a courier killed since delivered is not due again
    due = queue.due(now, limit)
    with contextlib.ExitStack() as held:
        if lanes is None:
            lanes = held.enter_context(Lanes(outbound))
        else:
            lanes.refresh(sending=bool(due))
        held.enter_context(store.lazy_commits())
        for start in range(0, len(due), BATCH):
            batch = due[start : start + BATCH]
            with store.transaction():
                claimed = [item for item in batch if queue.claim(item.id, now, now + LEASE, owner)]
            lanes.deliver(claimed, record)
            queue.fold_deliveries()
    return replace(record.result(), pages_failed=page_command.run_due(store, now))


class _Records:
    """Records each delivery as its answer comes (in the store's journal of deliveries, on
    SQLite, folded into the outbox after each batch: see store/journal.py); the lanes share
    the store's connection, so they record one at a time."""

    def __init__(self, queue: OutboxQueue, outbound: Outbound, now: datetime, rng: random.Random):
        self.queue, self.outbound, self.now, self.rng = queue, outbound, now, rng
        self.lock = threading.Lock()
        self.results: dict[str, list[Queued]] = {"sent": [], "retry": [], "failed": []}

    def __call__(self, item: Queued, error: Exception | None) -> None:
        with self.lock:
            outcome = _record(self.queue, item, error, self.outbound, self.now, self.rng)
            self.results[outcome].append(item)

    def result(self) -> FlushResult:
        return FlushResult(*(tuple(self.results[k]) for k in ("sent", "retry", "failed")))


def _try(sending: Courier, item: Queued) -> Exception | None:
    """Deliver one message; the error, if any, is recorded by the caller."""
    try:
        sending.deliver(item)
    except (PermanentFailure, OSError, smtplib.SMTPException) as exc:
        return exc
    return None


def _record(
    queue: OutboxQueue,
    item: Queued,
    error: Exception | None,
    outbound: Outbound,
    now: datetime,
    rng: random.Random,
) -> str:
    if isinstance(error, PermanentFailure):
        return _failed(queue, item, str(error))
    if error is not None:
        reason = f"{type(error).__name__}: {error}"
        if item.attempts + 1 >= outbound.max_attempts:
            return _failed(queue, item, reason)
        at = now + backoff(outbound, item.attempts, rng)
        queue.retry(item.id, reason, at, getattr(error, "recipients", None))
        log.warning(
            "delivery deferred", outbox_id=item.id, attempts=item.attempts + 1, error=reason
        )
        return "retry"
    queue.delivered(item.id, now)
    log.info("delivered", outbox_id=item.id, kind=item.kind, to=list(item.recipients))
    return "sent"


def _failed(queue: OutboxQueue, item: Queued, error: str) -> str:
    queue.give_up(item.id, error)
    log.error("delivery given up", outbox_id=item.id, kind=item.kind, error=error)
    return "failed"
