"""Limits that keep the SMTP listener open to real clients whatever idle or hostile ones do.

- A cap on concurrent connections, and one per client address: beyond either, the client gets
  `421 4.7.0 too many connections` and the socket is closed at once, so refused clients never
  hold a file descriptor and the process never runs out of them.
- Idle timeouts per state (before HELO/EHLO, between commands, inside DATA) that only progress
  resets: HELO/EHLO, MAIL, RCPT, DATA, STARTTLS and AUTH, and the bytes of a message. NOOP, RSET,
  HELP, VRFY and unknown commands do not, so a client cannot hold a connection by chattering.
- A total session time that bounds everything, progress included.
- Refusals, cuts and failing accept() calls are logged once when they start and then at most
  once a minute as a count, never once per connection or per retry.
"""

from __future__ import annotations

import asyncio
import errno
import functools
from collections import Counter
from dataclasses import dataclass

import structlog

log = structlog.get_logger("helpdeskd.smtp")

SUMMARY_SECONDS = 60.0  # a continuing incident is summed up at most this often
# Commands that move a transaction forward; only they buy the client more idle time.
PROGRESS = frozenset({"HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "STARTTLS", "AUTH"})
ACCEPT_QUIET = 5.0  # seconds without a failed accept() before it counts as working again
# What asyncio reports when accept() fails for lack of file descriptors or memory.
ACCEPT_FAILURE = "socket.accept() out of system resource"


@dataclass(frozen=True)
class Limits:
    max_connections: int = 200
    max_connections_per_client: int = 20
    greeting_timeout: float = 30.0  # seconds from connect to HELO/EHLO
    command_timeout: float = 300.0  # seconds between commands that progress (RFC 5321 4.5.3.2)
    data_timeout: float = 300.0  # seconds without a byte of the message during DATA
    session_timeout: float = 900.0  # seconds a connection may last, whatever it does


class Tally:
    """Counts a recurring event and logs it once when it starts, then at most once per
    `SUMMARY_SECONDS` with how often it happened, and once when it stops."""

    def __init__(self, event: str, level: str = "warning", **fields):
        self.event, self.level, self.fields = event, level, fields
        self.count = 0
        self.timer: asyncio.TimerHandle | None = None

    def hit(self, **detail) -> None:
        if self.timer is None:
            getattr(log, self.level)(self.event, **self.fields, **detail)
            self.timer = asyncio.get_running_loop().call_later(SUMMARY_SECONDS, self._summary)
        else:
            self.count += 1

    def _summary(self) -> None:
        if self.count:
            getattr(log, self.level)(
                self.event, **self.fields, more=self.count, within_seconds=SUMMARY_SECONDS
            )
            self.count = 0
            self.timer = asyncio.get_running_loop().call_later(SUMMARY_SECONDS, self._summary)
        else:
            self.timer = None
            log.info(f"{self.event}_ended", **self.fields)


class Gate:
    """Who is connected, shared by every connection of one listener."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.total = 0
        self.per_client: Counter[str] = Counter()
        self.refused = Tally("smtp.connections_refused", reason="too many connections")
        self.refused_client = Tally(
            "smtp.connections_refused", reason="too many connections from one address"
        )
        self.cut = {
            why: Tally("smtp.sessions_cut", level="info", reason=why)
            for why in ("idle", "session time")
        }
        self.accept_failures = 0
        self.last_accept_failure = 0.0

    def admit(self, client: str) -> bool:
        if self.total >= self.limits.max_connections:
            self.refused.hit(limit=self.limits.max_connections)
            return False
        if self.per_client[client] >= self.limits.max_connections_per_client:
            self.refused_client.hit(client=client, limit=self.limits.max_connections_per_client)
            return False
        self.total += 1
        self.per_client[client] += 1
        return True

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]

    def accept_failed(self, context: dict) -> None:
        """asyncio retries a failing accept() every second and reports each try with a
        traceback; one line when it starts, one when it has stopped failing for a while. At
        the edge of the limit every other accept() may succeed: that is not a recovery."""
        loop = asyncio.get_running_loop()
        self.last_accept_failure = loop.time()
        self.accept_failures += 1
        if self.accept_failures == 1:
            exc = context.get("exception")
            log.error(
                "smtp.accept_failing",
                error=str(exc),
                errno=errno.errorcode.get(getattr(exc, "errno", None) or 0),
                connections=self.total,
            )
            loop.call_later(ACCEPT_QUIET, self._accept_check)

    def _accept_check(self) -> None:
        quiet = asyncio.get_running_loop().time() - self.last_accept_failure
        if quiet < ACCEPT_QUIET:
            asyncio.get_running_loop().call_later(ACCEPT_QUIET - quiet, self._accept_check)
            return
        log.warning("smtp.accept_recovered", failed_tries=self.accept_failures)
        self.accept_failures = 0


def install_accept_handler(loop: asyncio.AbstractEventLoop, gate: Gate) -> None:
    """Route asyncio's accept() failures to `gate`; anything else goes where it went before."""
    previous = loop.get_exception_handler()
    previous = getattr(previous, "replaces", previous)  # a reload's listener: no chain of gates

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if context.get("message") == ACCEPT_FAILURE:
            gate.accept_failed(context)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.replaces = previous
    loop.set_exception_handler(handler)


class Guarded:
    """Mixed into aiosmtpd's SMTP (and LMTP) protocol: admission, idle and session limits.

    aiosmtpd resets its single timeout on every recognised command, NOOP included; its
    `_reset_timeout` is made inert here, and only the commands in PROGRESS (wrapped by
    `_progressing`) and the bytes of a message move the idle deadline (`_arm`). aiosmtpd
    cancels `_timeout_handle` when the connection goes, so the idle timer lives there.
    """

    def __init__(self, *args, gate: Gate, **kwargs):
        self.gate = gate
        self._client: str | None = None  # set once admitted
        self._refused = False
        self._idle_deadline = 0.0
        self._session_handle: asyncio.TimerHandle | None = None
        self._in_data = False
        super().__init__(*args, **kwargs)
        for command in PROGRESS & self._smtp_methods.keys():
            self._smtp_methods[command] = self._progressing(command, self._smtp_methods[command])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._client is None and not self._refused:  # not the second call after STARTTLS
            client = str((transport.get_extra_info("peername") or ("?",))[0])
            if not self.gate.admit(client):
                self._refused = True
                transport.write(b"421 4.7.0 too many connections, try again later\r\n")
                transport.close()
                return
            self._client = client
            self._timeout_handle = None
            self._arm(self.gate.limits.greeting_timeout)
            self._session_handle = self.loop.call_later(
                self.gate.limits.session_timeout, self._cut, "session time"
            )
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return  # aiosmtpd never saw this connection
        if self._client is not None:
            self.gate.release(self._client)
            self._client = None
            if self._session_handle is not None:
                self._session_handle.cancel()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._in_data:  # the message's bytes are progress; cheap: no timer is touched
            self._idle_deadline = self.loop.time() + self.gate.limits.data_timeout
        super().data_received(data)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd's own reset, made inert (see the class)."""

    def _progressing(self, command: str, method):
        @functools.wraps(method)  # HELP reads the syntax aiosmtpd attached to the method
        async def progress(arg):
            self._in_data = command == "DATA"
            limits = self.gate.limits
            self._arm(limits.data_timeout if self._in_data else limits.command_timeout)
            try:
                await method(arg)
            finally:
                if self._in_data:  # the message is in: a new transaction may start
                    self._in_data = False
                    self._arm(self.gate.limits.command_timeout)

        return progress

    def _arm(self, seconds: float) -> None:
        """The client may now stay idle for `seconds`; the timer re-checks lazily when it
        fires, so the bytes of a message only move a number, not a timer."""
        self._idle_deadline = self.loop.time() + seconds
        handle = self._timeout_handle
        if handle is None or handle.cancelled() or handle.when() > self._idle_deadline:
            if handle is not None:
                handle.cancel()
            self._timeout_handle = self.loop.call_at(self._idle_deadline, self._idle_check)

    def _idle_check(self) -> None:
        if self.loop.time() >= self._idle_deadline:
            self._cut("idle")
        else:
            self._timeout_handle = self.loop.call_at(self._idle_deadline, self._idle_check)

    def _cut(self, why: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.gate.cut[why].hit(client=self._client)
        self.transport.write(f"421 4.4.2 {why} limit reached, closing connection\r\n".encode())
        self.transport.close()
