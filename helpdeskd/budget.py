"""The work budget of one message: none holds the worker longer than `[policy] processing_budget`,
and none costs more than a few times its size in memory.

Parsing is the only step whose cost follows the size of the raw message: everything after it
sees the bounded Inbound made here, whose text, header values and address lists are cut to
fixed sizes (the raw message stays whole in the spool, and the case says the text was cut).

- `parse_within` parses a message of at most INLINE_BYTES itself: the parser is linear, so
  that takes milliseconds. The daemon's worker uses it for the group it applies, and has the
  messages waiting behind that group parsed in the child meanwhile (`Ahead`).
- Any other message is parsed in a child process (`python -m helpdeskd.budget`), and the worker
  waits at most the budget for its answer. Before each message the child lowers its own
  RLIMIT_CPU and RLIMIT_AS to that message's share, so the kernel stops a runaway parse even if
  the worker waiting for it were gone. Past the budget, or when the child runs out of memory or
  dies, the child is killed and the message is quarantined with the reason (OverBudget). A
  child is a fresh interpreter, not a fork of the threaded daemon (which could copy a lock
  another thread holds, and would count the daemon's memory against the child's limit). It
  serves one message after another, so a large message costs its parse and not an interpreter
  start (some 80 ms of CPU); a child whose heap a large message left grown retires after
  answering, and a new one takes its place.

So one message delays the message behind it by at most the budget, plus the bounded work on the
cut Inbound, which is well under a second.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import resource
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from helpdeskd.core.parse import ParseError, parse
from helpdeskd.model import Inbound

INLINE_BYTES = 256 * 1024  # parsed in the worker; larger messages are parsed in a child
TEXT_KEPT = 256 * 1024  # characters of body text kept on the case, split and forwarded
HEADER_KEPT = 8 * 1024  # characters kept of each header value
ADDRESSES_KEPT = 1000  # recipients kept per field; message ids kept in References
MEMORY_BASE = 256 * 1024 * 1024  # the child's address space: the interpreter and its libraries,
MEMORY_PER_BYTE = 12  # plus this many bytes per byte of message (copies, decoded text, objects)
MiB = 1024 * 1024
RETIRE_AT = 128 * MiB  # a child whose address space a message left larger than this retires
RETIRE_AFTER = 1000  # and every child after this many messages, whatever it has left behind
LENGTH_BYTES = 8


class OverBudget(Exception):
    """The message could not be parsed within the budget; str(error) is the quarantine reason."""


def parse_within(raw: bytes, envelope_from: str | None, budget: float) -> Inbound:
    """The bounded Inbound of a message, or ParseError, or OverBudget."""
    if len(raw) <= INLINE_BYTES:
        return bounded(parse(raw, envelope_from=envelope_from))
    return _parse_in_child(raw, envelope_from, budget)


def bounded(inbound: Inbound) -> Inbound:
    """The Inbound cut to the sizes the rest of the pipeline is built for."""
    defects = list(inbound.defects)
    text = inbound.text
    if len(text) > TEXT_KEPT:
        defects.append(f"text of {len(text)} characters cut to {TEXT_KEPT}")
        text = (
            text[:TEXT_KEPT] + f"\n\n[helpdeskd: the text was cut here; it has {len(text)} "
            "characters in all, and the whole message is kept as it came]"
        )
    headers = tuple((name, value[:HEADER_KEPT]) for name, value in inbound.headers)
    if headers != inbound.headers:
        defects.append(f"header values longer than {HEADER_KEPT} characters cut")
    return replace(
        inbound,
        text=text,
        html=inbound.html[:TEXT_KEPT] if inbound.html else inbound.html,
        subject=inbound.subject[:HEADER_KEPT],
        headers=headers,
        to=inbound.to[:ADDRESSES_KEPT],
        cc=inbound.cc[:ADDRESSES_KEPT],
        reply_to=inbound.reply_to[:ADDRESSES_KEPT],
        references=inbound.references[-ADDRESSES_KEPT:],
        in_reply_to=inbound.in_reply_to[:ADDRESSES_KEPT],
        defects=tuple(dict.fromkeys(defects)),
    )


def memory_limit(size: int) -> int:
    return MEMORY_BASE + MEMORY_PER_BYTE * size


class _Child:
    """One parse child: a message is a JSON head line and the raw bytes; the answer is a
    pickled (kind, value, last) triple after its length."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ask(self, head: dict, raw: bytes, budget: float) -> tuple[str, object, bool]:
        """(kind, value, last): `last` when the child ends after this answer."""
        deadline = time.monotonic() + budget
        try:
            self.proc.stdin.write(json.dumps({**head, "size": len(raw)}).encode() + b"\n")
            self.proc.stdin.write(raw)
            self.proc.stdin.flush()
            size = int.from_bytes(self._read(LENGTH_BYTES, deadline), "big")
            return pickle.loads(self._read(size, deadline))
        except (BrokenPipeError, EOFError):
            self.end()
            if self.proc.returncode == 0:  # it had ended itself: not this message's doing
                raise _Gone from None
            raise OverBudget(
                f"the parse died within its limits (exit code {self.proc.returncode})"
            ) from None
        except TimeoutError:
            self.end()
            raise OverBudget(f"still parsing after the budget of {budget:g} s") from None

    def _read(self, size: int, deadline: float) -> bytes:
        chunks, fd = [], self.proc.stdout.fileno()
        while size:
            if not select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise TimeoutError
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def end(self, grace: float = 0) -> None:
        """Wait `grace` seconds for it to end by itself, then kill it."""
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):  # what is left in the buffer has no reader
                pipe.close()


class _Gone(Exception):
    """The child had ended itself before it read the message: another one takes it."""


class _Children:
    """Idle children, one started ahead; a caller takes one for a message and gives it back
    if it is still serving. Taking the last idle one starts its spare at once: an interpreter
    takes a quarter of a second to start on a busy machine, and a large message that found no
    child ready held the mail behind it that long."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Child] = []

    def take(self) -> _Child:
        with self.lock:
            while self.idle:
                child = self.idle.pop()
                if child.alive():
                    if not self.idle:
                        self.idle.append(_Child())
                    return child
                child.end()
        return _Child()

    def give_back(self, child: _Child) -> None:
        if not child.alive():
            child.end()
            return
        with self.lock:
            self.idle.append(child)

    def warm_up(self) -> None:
        with self.lock:
            if not self.idle:
                self.idle.append(_Child())


_CHILDREN = _Children()


class Ahead:
    """The daemon's worker parses ahead of itself: the messages waiting behind the group it
    applies go, in order, to a parse child from a thread of their own, and the worker takes
    each answer when it comes to that message. The child parses on the other core while the
    worker applies, and the worker's interpreter is spared those parses."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, "parse")

    def submit(self, raw: bytes, envelope_from: str | None, budget: float) -> Future[Inbound]:
        return self.pool.submit(_parse_in_child, raw, envelope_from, budget)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def warm_up() -> None:
    """Start a child now, so that the first large message does not wait for one."""
    _CHILDREN.warm_up()


def _parse_in_child(
    raw: bytes, envelope_from: str | None, budget: float, memory: int | None = None
) -> Inbound:
    head = {
        "cpu": math.ceil(budget) + 1,
        "memory": memory or memory_limit(len(raw)),
        "envelope_from": envelope_from,
        "retire_at": RETIRE_AT,
        "retire_after": RETIRE_AFTER,
    }
    kind, value = _ask_a_child(head, raw, budget)
    if kind == "unparseable":
        raise ParseError(value)
    if kind == "over-budget":
        raise OverBudget(value)
    return value


def _ask_a_child(head: dict, raw: bytes, budget: float) -> tuple[str, object]:
    for _ in range(2):  # a child found gone is replaced once; OverBudget ends the child
        child = _CHILDREN.take()
        try:
            kind, value, last = child.ask(head, raw, budget)
        except _Gone:
            continue
        if last:
            child.end(grace=5)  # it says it ends now: nothing may be sent to it any more
            _CHILDREN.warm_up()  # and its successor starts before the next message
        else:
            _CHILDREN.give_back(child)
        return kind, value
    raise OverBudget("no parse child could be started")


def _serve() -> None:
    """In the child: messages one after another until the daemon closes the pipe (or goes),
    or until it has served its `retire_after` messages or a message left it grown past its
    `retire_at`. It says so in its last answer, so the daemon never sends it another."""
    served = 0
    while head := sys.stdin.buffer.readline():
        limits = json.loads(head)
        raw = sys.stdin.buffer.read(limits["size"])
        kind, value = _limited_parse(raw, limits)
        served += 1
        last = served >= limits["retire_after"] or _address_space() > limits["retire_at"]
        answer = pickle.dumps((kind, value, last), protocol=pickle.HIGHEST_PROTOCOL)
        sys.stdout.buffer.write(len(answer).to_bytes(LENGTH_BYTES, "big") + answer)
        sys.stdout.buffer.flush()
        if last:
            return


def _limited_parse(raw: bytes, limits: dict) -> tuple[str, object]:
    """The kernel ends this process past its CPU seconds (SIGXCPU) and refuses memory past its
    limit; both are soft limits, raised again for the next message."""
    cpu, memory = limits["cpu"], limits["memory"]
    used = math.ceil(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
    _soft_limit(resource.RLIMIT_CPU, used + cpu)
    _soft_limit(resource.RLIMIT_AS, memory)
    try:
        return ("inbound", bounded(parse(raw, envelope_from=limits["envelope_from"])))
    except ParseError as exc:
        return ("unparseable", str(exc))
    except MemoryError:
        return ("over-budget", f"needs more than {memory // MiB} MiB to parse")
    except RecursionError:
        return ("over-budget", "nested too deeply to parse")
    finally:
        _soft_limit(resource.RLIMIT_AS, resource.RLIM_INFINITY)
        _soft_limit(resource.RLIMIT_CPU, resource.RLIM_INFINITY)


def _soft_limit(limit: int, soft: int) -> None:
    """Set the soft limit, lower or higher, never above the hard one the child started with."""
    hard = resource.getrlimit(limit)[1]
    if hard != resource.RLIM_INFINITY:
        soft = hard if soft == resource.RLIM_INFINITY else min(soft, hard)
    resource.setrlimit(limit, (soft, hard))


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


if __name__ == "__main__":
    _serve()
