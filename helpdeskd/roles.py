"""The node's child processes (children.py starts them): `python -m helpdeskd.roles ROLE`.

- `listener`: the SMTP/LMTP listener on the sockets the main process bound; each mail spooled
  wakes the main process's worker.
- `courier`: delivers the outbox whenever the main process wakes it, and every 30 s.

Each runs the configuration the main process sends it, at the start and at each reload (it
ignores SIGHUP itself); SIGTERM or SIGINT, or the end of the channel (the main process gone),
stops it after a drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from helpdeskd import logs
from helpdeskd.adapters.store import open_store
from helpdeskd.children import Received, first_config, tell
from helpdeskd.config import Config

log = structlog.get_logger("helpdeskd.roles")

DRAIN_SECONDS = 10  # mail in its DATA when the listener stops: its commit, then its answer
SESSIONS_LOOK = 0.05  # how often a stopping listener looks whether its sessions have ended
COURIER_SECONDS = 30  # the courier's turn when nobody wakes it (retries come due)


class Role:
    """What both children share: the configuration, the channel, the signals, the stop."""

    def __init__(self, config: Config, channel: socket.socket, clock: Callable[[], datetime]):
        self.config, self.channel, self.clock = config, channel, clock
        self.received = Received()
        self.stopped = asyncio.Event()

    def open_store(self):
        return open_store(self.config.helpdesk.database, migrate=False).leave_checkpoints()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)
        await self.start()
        loop.add_reader(self.channel.fileno(), self.heard)
        tell(self.channel, ready=True)
        await self.stopped.wait()
        loop.remove_reader(self.channel.fileno())
        await self.stop()

    def heard(self) -> None:
        """Wakes and configurations, or the end: the main process stopped or died."""
        try:
            data = self.channel.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.stopped.set()
            return
        wakes, configs = self.received.feed(data)
        for config in configs:
            self.reload(config)
        if wakes or configs:
            self.wake()

    def reload(self, config: Config) -> None:
        self.config = config
        logs.configure_for(config, announce=False)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None: ...


class Listener(Role):
    def __init__(self, config, channel, clock, sockets: list[socket.socket]):
        super().__init__(config, channel, clock)
        self.sockets = sockets
        self.servers: list = []
        self.handler = self.gate = None

    async def start(self) -> None:
        from helpdeskd import disk  # each role imports only what it runs: a quicker start
        from helpdeskd.adapters import smtp

        self.handler = smtp.SpoolHandler(
            self.open_store(),
            self.config.helpdesk.addresses,
            self.mail_spooled,
            lmtp=self.config.smtp.lmtp,
            clock=self.clock,
            short_of_space=lambda: disk.short(self.config),
        )
        self.servers, self.gate = await smtp.start(self.handler, self.config.smtp, self.sockets)

    def mail_spooled(self, burst: bool) -> None:
        """The worker is woken, and told whether mail waits for the next commit; a full
        channel means it is awake already."""
        line = b'{"spooled": 1, "burst": 1}\n' if burst else b'{"spooled": 1}\n'
        with contextlib.suppress(OSError):
            self.channel.send(line, socket.MSG_DONTWAIT)

    async def stop(self) -> None:
        """No new connection; the sessions open go on to their end (a reload's new listener
        takes the next ones), and mail whose DATA has ended is committed and answered, all
        within the drain."""
        for server in self.servers:
            server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        while self.gate.total and loop.time() < deadline:
            await asyncio.sleep(SESSIONS_LOOK)
        await self.handler.drained(max(deadline - loop.time(), 0))


class Courier(Role):
    def __init__(self, config, channel, clock):
        from helpdeskd.alerts import AdminAlerts
        from helpdeskd.delivery import Delivery
        from helpdeskd.loops import Loop

        super().__init__(config, channel, clock)
        alerts = AdminAlerts(self.open_store, lambda: self.config, self.wake)
        self.delivery = Delivery(lambda: self.config, self.open_store, clock, alerts)
        self.loop = Loop("courier", self.deliver, COURIER_SECONDS)

    async def start(self) -> None:
        await asyncio.to_thread(self.delivery.take_back)
        self.loop.start()

    def deliver(self) -> bool:
        from helpdeskd.delivery import tally

        result = self.delivery.deliver()
        if result.sent or result.retried or result.failed:
            tell(self.channel, delivered=tally(result))
        return False

    def wake(self) -> None:
        self.loop.wake()

    async def stop(self) -> None:
        self.loop.stop()
        await asyncio.to_thread(self.loop.join, DRAIN_SECONDS)
        self.delivery.close()


def shifted(offset: float) -> Callable[[], datetime]:
    """The main process's clock, when it is not the machine's (a benchmark's shifted start)."""
    return lambda: datetime.now(UTC) + timedelta(seconds=offset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="helpdeskd.roles")
    parser.add_argument("role", choices=("listener", "courier"))
    parser.add_argument("--channel", type=int, required=True)
    parser.add_argument("--listen", type=int, action="append", default=[])
    parser.add_argument("--clock-offset", type=float, default=0.0)
    args = parser.parse_args(argv)
    channel = socket.socket(fileno=args.channel)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the main process sends the reloads
    try:
        config, received = first_config(channel)
        logs.configure_for(config, announce=False)
        structlog.contextvars.bind_contextvars(process=args.role)
        clock = shifted(args.clock_offset)
        if args.role == "listener":
            sockets = [socket.socket(fileno=fd) for fd in args.listen]
            role: Role = Listener(config, channel, clock, sockets)
        else:
            role = Courier(config, channel, clock)
        role.received = received
        asyncio.run(role.run())
    except Exception as exc:  # said to the main process, which refuses to start with it
        log.exception("process failed", role=args.role)
        with contextlib.suppress(OSError):
            tell(channel, failed=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
