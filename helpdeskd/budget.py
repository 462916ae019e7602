"""The work budget of one message: none holds the worker longer than `[policy] processing_budget`,
and none costs more than a few times its size in memory.

Parsing is the only step whose cost follows the size of the raw message: everything after it
sees the bounded Inbound made here, whose text, header values and address lists are cut to
fixed sizes (the raw message stays whole in the spool, and the case says the text was cut).

- A message of at most INLINE_BYTES is parsed in the worker itself. The parser is linear, so
  that takes milliseconds; ordinary mail pays no process start.
- A larger one is parsed in a child process (`python -m helpdeskd.budget`) that sets its own
  RLIMIT_CPU and RLIMIT_AS before it reads the message, and the worker waits at most the
  budget for its answer. Past it, or when the child runs out of memory or dies, the child is
  killed and the message is quarantined with the reason (OverBudget). A child is a fresh
  interpreter, not a fork of the threaded daemon (which could copy a lock another thread holds,
  and would count the daemon's memory against the child's limit); one is kept started and
  waiting, so the worker does not wait for an interpreter to start.

So one message delays the message behind it by at most the budget, plus the bounded work on the
cut Inbound, which is well under a second.
"""

from __future__ import annotations

import json
import math
import pickle
import resource
import subprocess
import sys
import threading
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


class _Spare:
    """One child started ahead, waiting for a message on its standard input."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: subprocess.Popen | None = None

    def take(self) -> subprocess.Popen:
        with self.lock:
            child = self.waiting if self.waiting and self.waiting.poll() is None else _start()
            self.waiting = _start()
            return child


def _start() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


_SPARE = _Spare()


def warm_up() -> None:
    """Start a child now, so that the first large message does not wait for one."""
    with _SPARE.lock:
        if _SPARE.waiting is None:
            _SPARE.waiting = _start()


def _parse_in_child(
    raw: bytes, envelope_from: str | None, budget: float, memory: int | None = None
) -> Inbound:
    head = {
        "cpu": math.ceil(budget) + 1,
        "memory": memory or memory_limit(len(raw)),
        "envelope_from": envelope_from,
    }
    child = _SPARE.take()
    try:
        answer, _ = child.communicate(json.dumps(head).encode() + b"\n" + raw, budget)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise OverBudget(f"still parsing after the budget of {budget:g} s") from None
    if child.returncode != 0 or not answer:
        raise OverBudget(f"the parse died within its limits (exit code {child.returncode})")
    kind, value = pickle.loads(answer)
    if kind == "unparseable":
        raise ParseError(value)
    if kind == "over-budget":
        raise OverBudget(value)
    return value


def _serve() -> None:
    """In the child: the kernel ends it past its CPU seconds and refuses memory past its limit,
    even if the worker waiting for it were gone."""
    head = sys.stdin.buffer.readline()
    if not head:
        return  # the daemon stopped without needing this spare
    limits = json.loads(head)
    cpu, memory = limits["cpu"], limits["memory"]
    used = math.ceil(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + cpu, used + cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        raw = sys.stdin.buffer.read()
        result = ("inbound", bounded(parse(raw, envelope_from=limits["envelope_from"])))
    except ParseError as exc:
        result = ("unparseable", str(exc))
    except MemoryError:
        result = ("over-budget", f"needs more than {memory // MiB} MiB to parse")
    except RecursionError:
        result = ("over-budget", "nested too deeply to parse")
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    _serve()
