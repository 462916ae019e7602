"""Delivery of the durable outbox: SMTP relay or Maildir, with retries and backoff.

A message is marked sent only after the relay accepted it (or the Maildir file was renamed into
`new/`), so a crash in between sends it again: at least once, and in the normal course once.
"""

from __future__ import annotations

import mailbox
import random
import smtplib
import ssl
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


class PermanentFailure(Exception):
    """The relay refused for good (5xx): retrying cannot help."""


@dataclass(frozen=True)
class FlushResult:
    sent: tuple[Queued, ...] = ()
    retried: tuple[Queued, ...] = ()
    failed: tuple[Queued, ...] = ()


def deliver(item: Queued, outbound: Outbound) -> None:
    if outbound.transport == "maildir":
        # the outbox keeps the wire format (CRLF); Maildir files use plain newlines.
        # Maildir(create=True) makes tmp/new/cur only when the folder itself is missing
        for sub in ("tmp", "new", "cur"):
            (outbound.path / sub).mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(str(outbound.path), create=True).add(item.raw.replace(b"\r\n", b"\n"))
    else:
        send_smtp(item, outbound)


def send_smtp(item: Queued, outbound: Outbound) -> None:
    try:
        with smtplib.SMTP(outbound.host, outbound.port, timeout=30) as smtp:
            if outbound.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if outbound.username and outbound.password_file:
                smtp.login(outbound.username, outbound.password_file.read_text().strip())
            refused = smtp.sendmail(item.mail_from, list(item.recipients), item.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise
    refused = refused or {}
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
    for item in queue.due(now, limit):
        if queue.claim(item.id, now, now + LEASE):
            results[_attempt(queue, item, outbound, now, rng)].append(item)
    return FlushResult(*(tuple(results[k]) for k in ("sent", "retry", "failed")))


def _attempt(
    queue: OutboxQueue, item: Queued, outbound: Outbound, now: datetime, rng: random.Random
) -> str:
    try:
        deliver(item, outbound)
    except PermanentFailure as exc:
        return _failed(queue, item, str(exc))
    except (OSError, smtplib.SMTPException) as exc:
        if item.attempts + 1 >= outbound.max_attempts:
            return _failed(queue, item, f"{type(exc).__name__}: {exc}")
        queue.retry(
            item.id,
            f"{type(exc).__name__}: {exc}",
            now + backoff(outbound, item.attempts, rng),
            getattr(exc, "recipients", None),
        )
        log.warning(
            "delivery deferred", outbox_id=item.id, attempts=item.attempts + 1, error=str(exc)
        )
        return "retry"
    queue.sent(item.id, now)
    log.info("delivered", outbox_id=item.id, kind=item.kind, to=list(item.recipients))
    return "sent"


def _failed(queue: OutboxQueue, item: Queued, error: str) -> str:
    queue.give_up(item.id, error)
    log.error("delivery given up", outbox_id=item.id, kind=item.kind, error=error)
    return "failed"
