"""Delivery of the durable outbox: SMTP relay or Maildir, with retries and backoff.

A message is marked sent only after the relay accepted it (or the Maildir file was renamed into
`new/`), so a crash in between sends it again: at least once, and in the normal course once.
A flush delivers through `[outbound] connections` SMTP sessions side by side (to a distant relay
every answer takes a round trip, and one session spends most of its time waiting) and records
each batch in one transaction. Mail for the same recipients always takes the same session, so
it keeps its order.
"""

from __future__ import annotations

import mailbox
import random
import smtplib
import ssl
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

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
# Messages claimed, delivered and recorded together: one commit for each such batch.
BATCH = 50


class PermanentFailure(Exception):
    """The relay refused for good (5xx): retrying cannot help."""


@dataclass(frozen=True)
class FlushResult:
    sent: tuple[Queued, ...] = ()
    retried: tuple[Queued, ...] = ()
    failed: tuple[Queued, ...] = ()


class Courier:
    """Delivers one flush's messages: one Maildir, or one SMTP session opened at the first
    message and kept for the next ones (a relay session per message was most of the cost)."""

    def __init__(self, outbound: Outbound):
        self.outbound = outbound
        self.smtp: smtplib.SMTP | None = None
        self.maildir: mailbox.Maildir | None = None

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
        count = outbound.connections if outbound.transport == "smtp" else 1
        self.couriers = [Courier(outbound) for _ in range(count)]
        self.pool = ThreadPoolExecutor(count - 1, "courier-lane") if count > 1 else None

    def deliver(self, items: list[Queued]) -> list[tuple[Queued, Exception | None]]:
        """Each item with its error (None when it was taken), in the order given."""
        lanes: list[list[Queued]] = [[] for _ in self.couriers]
        for item in items:
            key = "\n".join(sorted(item.recipients)).encode()
            lanes[zlib.crc32(key) % len(lanes)].append(item)
        beside = [
            self.pool.submit(_try_all, courier, lane)
            for courier, lane in zip(self.couriers[1:], lanes[1:], strict=True)
            if lane
        ]
        errors = _try_all(self.couriers[0], lanes[0])
        for future in beside:
            errors.update(future.result())
        return [(item, errors[item.id]) for item in items]

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        for courier in self.couriers:
            courier.close()


def _try_all(courier: Courier, items: list[Queued]) -> dict[int, Exception | None]:
    return {item.id: _try(courier, item) for item in items}


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


def flush(
    store: Store,
    outbound: Outbound,
    now: datetime,
    *,
    rng: random.Random | None = None,
    limit: int = 1000,
) -> FlushResult:
    """Deliver what is due; returns what happened, including what was given up on."""
    queue, rng = OutboxQueue(store), rng or random.Random()
    results: dict[str, list[Queued]] = {"sent": [], "retry": [], "failed": []}
    due = queue.due(now, limit)
    with Lanes(outbound) as lanes:
        for start in range(0, len(due), BATCH):
            batch = due[start : start + BATCH]
            with store.transaction():
                claimed = [item for item in batch if queue.claim(item.id, now, now + LEASE)]
            tried = lanes.deliver(claimed)
            with store.transaction():
                for item, error in tried:
                    results[_record(queue, item, error, outbound, now, rng)].append(item)
    return FlushResult(*(tuple(results[k]) for k in ("sent", "retry", "failed")))


def _try(sending: Courier, item: Queued) -> Exception | None:
    """Deliver one message; the error, if any, is recorded with the batch."""
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
    queue.sent(item.id, now)
    log.info("delivered", outbox_id=item.id, kind=item.kind, to=list(item.recipients))
    return "sent"


def _failed(queue: OutboxQueue, item: Queued, error: str) -> str:
    queue.give_up(item.id, error)
    log.error("delivery given up", outbox_id=item.id, kind=item.kind, error=error)
    return "failed"
