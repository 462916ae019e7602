"""The SMTP/LMTP listener: spool the raw bytes, commit, answer. It decides nothing else.

Parsing and routing run later in the worker, off the connection, so a mail storm is limited by
the disk and not by MIME parsing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import structlog
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from helpdeskd.adapters.connections import Gate, Guarded, Limits, install_accept_handler
from helpdeskd.adapters.store import Arrival, Store, StoreUnavailable
from helpdeskd.config import Smtp

LOGGER = "helpdeskd.smtp"
log = structlog.get_logger(LOGGER)

# Real HTML mail breaks RFC 5321's 1,000-byte line limit; refusing it would lose customer mail.
LINE_LENGTH_LIMIT = 1 << 20
# Mail committed together at most: bounds one transaction when hundreds of connections send.
GROUP_COMMIT_MAX = 64
BACKLOG = 100  # connections the kernel holds for accept(), as asyncio's default
# Mail waiting behind a commit that makes a burst: two or three are chance at a steady pace
BURST = 4


class SpoolHandler:
    def __init__(
        self,
        store: Store,
        addresses: tuple[str, ...],
        wake: Callable[[bool], None],
        *,
        lmtp: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        short_of_space: Callable[[], bool] = lambda: False,
    ):
        self.store = store
        self.short_of_space = short_of_space  # below [helpdesk] min_free_space
        self.addresses = {a.lower() for a in addresses}
        self.wake = wake
        self.lmtp = lmtp
        self.clock = clock
        # one writer thread: the commit's fsync never blocks the event loop
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-spool")
        self.waiting: list[tuple[Arrival, asyncio.Future]] = []
        self.committing: asyncio.Task | None = None

    async def drained(self, seconds: float) -> None:
        """Mail whose DATA has ended is committed and answered, within `seconds`."""
        deadline = time.monotonic() + seconds
        while self.committing is not None and not self.committing.done():
            if time.monotonic() > deadline:
                return
            await asyncio.wait({self.committing}, timeout=deadline - time.monotonic())

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options):
        if address.lower() not in self.addresses:
            return f"550 5.1.1 <{address}>: not a support address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if self.short_of_space():  # refused before the disk is full, not when it fails
            return self._per_recipient(envelope, "452 4.3.1 insufficient system storage")
        try:
            spool_id, new = await self._commit(self._arrival(raw, envelope, session))
        except StoreUnavailable as exc:
            log.error("spool commit failed", error=str(exc), peer=str(session.peer))
            return self._per_recipient(envelope, "451 4.3.0 temporary storage failure, retry later")
        log.info(
            "accepted",
            spool_id=spool_id,
            duplicate=not new,
            size=len(raw),
            mail_from=envelope.mail_from,
        )
        return self._per_recipient(envelope, f"250 2.0.0 OK queued as {spool_id}")

    def _arrival(self, raw: bytes, envelope, session) -> Arrival:
        return Arrival(
            raw,
            source="smtp",
            now=self.clock(),
            envelope_from=envelope.mail_from or "",
            recipients=tuple(a.lower() for a in envelope.rcpt_tos),
            # who connected and how it greeted: SPF is checked against them in the worker
            peer_ip=session.peer[0] if isinstance(session.peer, tuple) else None,
            helo=session.host_name or None,
        )

    async def _commit(self, arrival: Arrival) -> tuple[int, bool]:
        """Group commit: mail whose DATA ended while the previous commit ran is committed
        together in the next one, one fsync for all; each is answered after its own commit."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((arrival, future))
        if self.committing is None or self.committing.done():
            self.committing = asyncio.ensure_future(self._commit_waiting())
        return await future

    async def _commit_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            batch = self.waiting[:GROUP_COMMIT_MAX]
            del self.waiting[:GROUP_COMMIT_MAX]
            arrivals = [arrival for arrival, _ in batch]
            try:
                results = await loop.run_in_executor(self.writer, self.store.spool_all, arrivals)
            except Exception as exc:  # StoreUnavailable, or a bug: nobody gets a 250
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            if any(new for _, new in results):
                # once a commit, the worker taking the whole group; and whether a burst is
                # on (mail from several connections waits for the next commit): the
                # worker steps back then
                self.wake(len(self.waiting) >= BURST)

    def _per_recipient(self, envelope, status: str) -> str:
        """LMTP answers DATA once per recipient (RFC 2033)."""
        count = len(envelope.rcpt_tos) if self.lmtp else 1
        return "\r\n".join([status] * max(count, 1))


class Logged:
    """Mixed into the protocol: at DEBUG, each command line the client sends, the AUTH
    argument masked. Only the command itself: DATA reads the message after it, unlogged.

    aiosmtpd's own logger would log them too, but also the message's lines at DEBUG; it stays
    at ERROR (see `start`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if logging.getLogger(LOGGER).isEnabledFor(logging.DEBUG):
            for command, method in self._smtp_methods.items():
                self._smtp_methods[command] = self._logging(command, method)

    def _logging(self, command: str, method):
        @functools.wraps(method)  # HELP reads the syntax aiosmtpd attached to the method
        async def logged(arg):
            log.debug("smtp command", line=command_line(command, arg), peer=str(self.session.peer))
            await method(arg)

        return logged


def command_line(command: str, arg: str | None) -> str:
    """The line as the client sent it, but for an AUTH secret (the argument after the
    mechanism's name)."""
    if command == "AUTH" and arg:
        mechanism, _, secret = arg.partition(" ")
        return f"AUTH {mechanism} ********" if secret else f"AUTH {mechanism}"
    return f"{command} {arg}" if arg else command


class SupportSMTP(Logged, Guarded, SMTP):
    line_length_limit = LINE_LENGTH_LIMIT


class SupportLMTP(Logged, Guarded, LMTP):
    line_length_limit = LINE_LENGTH_LIMIT


def limits(config: Smtp) -> Limits:
    return Limits(
        max_connections=config.max_connections,
        max_connections_per_client=config.max_connections_per_client,
        greeting_timeout=config.greeting_timeout,
        command_timeout=config.command_timeout,
        data_timeout=config.data_timeout,
        session_timeout=config.session_timeout,
    )


def server_factory(handler: SpoolHandler, config: Smtp, gate: Gate) -> Callable[[], SMTP]:
    protocol = SupportLMTP if config.lmtp else SupportSMTP
    context = None
    if config.tls_cert and config.tls_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(config.tls_cert), str(config.tls_key))

    def factory() -> SMTP:
        return protocol(
            handler,
            data_size_limit=config.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=context,
            ident="helpdeskd",
            gate=gate,
        )

    return factory


def bind(config: Smtp) -> list[socket.socket]:
    """The listening sockets of `[smtp]` host and port, one per address the host names (as
    asyncio binds them): bound by the node's main process, served by its listener process."""
    found = socket.getaddrinfo(
        config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def start(
    handler: SpoolHandler, config: Smtp, sockets: list[socket.socket]
) -> tuple[list[asyncio.base_events.Server], Gate]:
    """The servers on `sockets`, and the gate that counts their open sessions."""
    loop = asyncio.get_running_loop()
    gate = Gate(limits(config))
    # aiosmtpd logs every connection and command (INFO) and every bogus one (WARNING): lines
    # without bound under a flood; the gate's own events say what matters, once
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    install_accept_handler(loop, gate)
    factory = server_factory(handler, config, gate)
    servers = [await loop.create_server(factory, sock=sock, backlog=BACKLOG) for sock in sockets]
    log.info("listening", host=config.host, port=config.port, lmtp=config.lmtp)
    return servers, gate
