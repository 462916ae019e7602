"""The node's other processes, seen from its main one: the SMTP listener and the courier each
run in an interpreter of their own (roles.py), so that taking mail in, applying it and sending
what it caused never wait for one another's turn at one GIL.

Each child talks to the main process over a socket pair: a byte wakes it; lines of JSON come
back (`ready` once it serves, a wake for the worker, delivery counts). The pair is also the
child's lifeline: when the main process dies, even by SIGKILL, the child reads the end of it
and stops, so no orphan keeps a port or a lease.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger("helpdeskd.children")

READY_SECONDS = 60  # a child's start: an interpreter, the imports, the store opened
RESTART_SECONDS = 1.0  # between a child's unexpected end and its next start


class ChildFailed(Exception):
    """A child could not start: its own words, or how it ended."""


class Child:
    def __init__(
        self,
        role: str,
        config_path: Path,
        heard: Callable[[dict], None],
        *,
        sockets: list[socket.socket] = (),
        clock_offset: float = 0.0,
    ):
        self.role, self.config_path, self.heard = role, config_path, heard
        self.sockets, self.clock_offset = list(sockets), clock_offset
        self.process: subprocess.Popen | None = None
        self.channel: socket.socket | None = None
        self.stopping = threading.Event()
        self.on_exit: Callable[[Child], None] = lambda child: None

    def argv(self, channel: int) -> list[str]:
        argv = [sys.executable, "-m", "helpdeskd.roles", self.role]
        argv += ["--config", str(self.config_path), "--channel", str(channel)]
        argv += [f"--listen={sock.fileno()}" for sock in self.sockets]
        if self.clock_offset:
            argv.append(f"--clock-offset={self.clock_offset}")
        return argv

    def start(self) -> None:
        """Start the child and wait until it serves; ChildFailed with its reason if it ends
        first (a certificate refused, a store that does not open)."""
        mine, theirs = socket.socketpair()
        fds = [theirs.fileno(), *(sock.fileno() for sock in self.sockets)]
        self.process = subprocess.Popen(
            self.argv(theirs.fileno()), pass_fds=fds, stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.channel = mine
        lines = mine.makefile("rb")
        first = _message(lines.readline())
        if not first.get("ready"):
            self.process.wait(READY_SECONDS)
            mine.close()
            why = first.get("failed") or f"it ended with status {self.process.returncode}"
            raise ChildFailed(f"the {self.role} process did not start: {why}")
        log.info("process started", role=self.role, pid=self.process.pid)
        threading.Thread(target=self.listen, args=(lines,), name=self.role, daemon=True).start()

    def listen(self, lines) -> None:
        """What the child says, until it ends; an end nobody asked for is the supervisor's."""
        for line in lines:
            if message := _message(line):
                self.heard(message)
        code = self.process.wait()
        if not self.stopping.is_set():
            log.error("process ended unexpectedly", role=self.role, status=code)
            self.on_exit(self)

    def wake(self) -> None:
        """Never blocks: a child whose channel is full is awake already."""
        with contextlib.suppress(BlockingIOError, OSError, AttributeError):
            self.channel.send(b"w", socket.MSG_DONTWAIT)

    def reload(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGHUP)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, seconds: float) -> None:
        """SIGTERM, and SIGKILL when it has not ended within `seconds`."""
        self.stopping.set()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                log.warning("process killed after its drain", role=self.role)
                self.process.kill()
                self.process.wait()
        if self.channel is not None:
            self.channel.close()


def _message(line: bytes) -> dict:
    try:
        found = json.loads(line)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def tell(channel: socket.socket, **message) -> None:
    """A child's line to the main process (roles.py)."""
    channel.sendall(json.dumps(message).encode() + b"\n")
