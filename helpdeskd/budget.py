"""The work budget of one message: none holds the worker longer than `[policy] processing_budget`,
and none costs more than a few times its size in memory.

Parsing is the only step whose cost follows the size of the raw message: everything after it
sees the bounded Inbound made here, whose text, header values and address lists are cut to
fixed sizes (the raw message stays whole in the spool, and the case says the text was cut).

- A message of at most INLINE_BYTES is parsed in the worker itself. The parser is linear, so
  that takes milliseconds; ordinary mail pays no process start.
- A larger one is parsed in a child process with RLIMIT_CPU and RLIMIT_AS set, and the worker
  waits at most the budget for its answer. Past it, or when the child runs out of memory or
  dies, the child is killed and the message is quarantined with the reason (OverBudget). The
  children are forked by multiprocessing's fork server, a small single-threaded process started
  once: forking the threaded daemon itself could copy a lock another thread holds, and would
  count the daemon's memory against the child's limit.

So one message delays the message behind it by at most the budget, plus the bounded work on the
cut Inbound, which is well under a second.
"""

from __future__ import annotations

import math
import multiprocessing
import resource
from dataclasses import replace
from multiprocessing.connection import Connection

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


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # each child starts with the parser imported
    return context


def warm_up() -> None:
    """Start the fork server now, so that the first large message does not pay for it."""
    _context()
    multiprocessing.forkserver.ensure_running()


def _parse_in_child(
    raw: bytes, envelope_from: str | None, budget: float, memory: int | None = None
) -> Inbound:
    context = _context()
    receiving, sending = context.Pipe(duplex=False)
    limits = (math.ceil(budget) + 1, memory or memory_limit(len(raw)))
    child = context.Process(
        target=_child, args=(raw, envelope_from, limits, sending), name="parse", daemon=True
    )
    child.start()
    sending.close()
    try:
        if not receiving.poll(budget):
            raise OverBudget(f"still parsing after the budget of {budget:g} s")
        kind, value = receiving.recv()
    except EOFError:
        child.join(1)
        raise OverBudget(f"the parse died (exit code {child.exitcode}) within its limits") from None
    finally:
        receiving.close()
        child.kill()
        child.join()
    if kind == "unparseable":
        raise ParseError(value)
    if kind == "over-budget":
        raise OverBudget(value)
    return value


def _child(
    raw: bytes, envelope_from: str | None, limits: tuple[int, int], sending: Connection
) -> None:
    """In the child: the kernel ends it past its CPU seconds, and refuses memory past its
    limit, even if the worker waiting for it were gone."""
    seconds, memory = limits
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        result = ("inbound", bounded(parse(raw, envelope_from=envelope_from)))
    except ParseError as exc:
        result = ("unparseable", str(exc))
    except MemoryError:
        result = ("over-budget", f"needs more than {memory // MiB} MiB to parse")
    except RecursionError:
        result = ("over-budget", "nested too deeply to parse")
    sending.send(result)
    sending.close()
