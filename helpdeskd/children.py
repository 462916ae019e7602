"""The node's other processes, seen from its main one: the SMTP listener and the courier each
run in an interpreter of their own (roles.py), so that taking mail in, applying it and sending
what it caused never wait for one another's turn at one GIL.

Each child talks to the main process over a socket pair. Down it go the configuration, at the
start and at each reload (the main process's own, which passed its checks: a child never reads
a file an admin may be editing), and wakes; lines of JSON come back (`ready` once it serves, a
wake for the worker, delivery counts). The pair is also the child's lifeline: when the main
process dies, even by SIGKILL, the child reads the end of it and stops, so no orphan keeps a
port or a lease.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable

import structlog

from helpdeskd.config import Config

log = structlog.get_logger("helpdeskd.children")

READY_SECONDS = 60  # a child's start: an interpreter, the imports, the store opened
WAKE, CONFIG = b"w", b"c"  # what the main process sends: a byte, or a byte and a frame
LENGTH = struct.Struct("!I")


class ChildFailed(Exception):
    """A child could not start: its own words, or how it ended."""


class Child:
    def __init__(
        self,
        role: str,
        config: Config,
        heard: Callable[[dict], None],
        *,
        sockets: list[socket.socket] = (),
        clock_offset: float = 0.0,
    ):
        self.role, self.config, self.heard = role, config, heard
        self.sockets, self.clock_offset = list(sockets), clock_offset
        self.process: subprocess.Popen | None = None
        self.channel: socket.socket | None = None
        self.sending = threading.Lock()  # a wake never lands inside a configuration's bytes
        self.stopping = threading.Event()
        self.on_exit: Callable[[Child], None] = lambda child: None

    def argv(self, channel: int) -> list[str]:
        argv = [sys.executable, "-m", "helpdeskd.roles", self.role, "--channel", str(channel)]
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
        self.reload(self.config)
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
        # a child killed with wakes unread in its socket ends the pair with a reset
        with contextlib.suppress(OSError):
            for line in lines:
                if message := _message(line):
                    self.heard(message)
        code = self.process.wait()
        if not self.stopping.is_set():
            log.error("process ended unexpectedly", role=self.role, status=code)
            self.on_exit(self)

    def wake(self) -> None:
        """Never blocks: a child whose channel is full, or that is being sent a configuration
        (which wakes it too), is awake already."""
        if not self.sending.acquire(blocking=False):
            return
        try:
            with contextlib.suppress(BlockingIOError, OSError, AttributeError):
                self.channel.send(WAKE, socket.MSG_DONTWAIT)
        finally:
            self.sending.release()

    def reload(self, config: Config) -> None:
        """The child runs `config` from now on (and is woken)."""
        self.config = config
        frame = pickle.dumps(config)
        with self.sending, contextlib.suppress(OSError):
            self.channel.sendall(CONFIG + LENGTH.pack(len(frame)) + frame)

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


class Received:
    """What a child reads from the main process, as it comes: wakes, and configurations."""

    def __init__(self):
        self.buffer = b""

    def feed(self, data: bytes) -> tuple[int, list[Config]]:
        """The wakes and the whole configurations in what has come so far."""
        self.buffer += data
        wakes, configs = 0, []
        while self.buffer:
            if self.buffer[:1] == WAKE:
                wakes, self.buffer = wakes + 1, self.buffer[1:]
                continue
            head = 1 + LENGTH.size
            if len(self.buffer) < head:
                break
            (size,) = LENGTH.unpack(self.buffer[1:head])
            if len(self.buffer) < head + size:
                break
            configs.append(pickle.loads(self.buffer[head : head + size]))
            self.buffer = self.buffer[head + size :]
        return wakes, configs


def first_config(channel: socket.socket) -> tuple[Config, Received]:
    """The configuration a child is started with, the first thing the main process sends; and
    the reader, holding whatever came after it."""
    received = Received()
    while True:
        data = channel.recv(65536)
        if not data:
            raise ChildFailed("the main process went away before it sent the configuration")
        _, configs = received.feed(data)
        if configs:
            return configs[-1], received
