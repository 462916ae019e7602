"""The ways an admin alert can still reach someone when the outbound relay does not take it:
a Maildir, a command given the mail on stdin (argv, no shell), a second relay."""

from __future__ import annotations

import smtplib
import subprocess
from collections.abc import Callable, Iterator

import structlog

from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import Queued
from helpdeskd.config import AlertRoutes, Outbound

log = structlog.get_logger("helpdeskd.alerts")

COMMAND_TIMEOUT = 30  # seconds a route command may take
FAILURES = (OSError, smtplib.SMTPException, subprocess.SubprocessError, outbox.PermanentFailure)


def deliver_elsewhere(item: Queued, routes: AlertRoutes) -> str | None:
    """Try each configured route in turn; the name of the one that took the mail, else None."""
    for name, send in _routes(routes):
        try:
            send(item)
        except FAILURES as exc:
            log.error("alert route failed", route=name, error=f"{type(exc).__name__}: {exc}")
            continue
        return name
    return None


def _routes(routes: AlertRoutes) -> Iterator[tuple[str, Callable[[Queued], None]]]:
    if routes.maildir:
        maildir = Outbound(transport="maildir", path=routes.maildir)
        yield f"maildir {routes.maildir}", lambda item: outbox.deliver(item, maildir)
    if routes.command:
        yield f"command {routes.command[0]}", lambda item: _run(routes.command, item)
    if routes.relay:
        relay = routes.relay
        yield f"relay {relay.host}:{relay.port}", lambda item: outbox.deliver(item, relay)


def _run(command: tuple[str, ...], item: Queued) -> None:
    """Like a sendmail: the message on stdin, with plain newlines; success is exit 0."""
    subprocess.run(
        list(command),
        input=item.raw.replace(b"\r\n", b"\n"),
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
    )
