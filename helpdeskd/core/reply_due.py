"""A written reply owed to a customer who asked for escalation (XMPro §5: the dissatisfied client
mails the Client Services Manager and gets a written reply) (pure).

A customer's `#escalate` opens a marker in `case.notices` for the level's first address: it owes
the customer a reply on the case until that address writes on it. One reminder goes to it once
one working day has passed; the reminder's own key in `case.notices` keeps it to one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from helpdeskd.model import Case

MARKER = "reply_due:"  # "reply_due:<UTC instant> <address>"
REMINDED = "reply_due_reminded:"  # "reply_due_reminded:<address>"


@dataclass(frozen=True)
class Owed:
    address: str
    since: datetime


def owed(case: Case) -> list[Owed]:
    """The replies the case still owes, the oldest first."""
    found = []
    for notice in case.notices:
        if notice.startswith(MARKER):
            since, _, address = notice.removeprefix(MARKER).partition(" ")
            found.append(Owed(address, datetime.fromisoformat(since)))
    return sorted(found, key=lambda o: (o.since, o.address))


def opened(case: Case, address: str, stamp: str) -> Case:
    """`address` owes the customer a reply from `stamp` (one marker per address)."""
    if any(o.address == address for o in owed(case)):
        return case
    return replace(case, notices=case.notices | {f"{MARKER}{stamp} {address}"})


def answered(case: Case, address: str) -> Case | None:
    """The case once `address` wrote on it, its marker and reminder gone; None when it owed
    nothing."""
    gone = {n for n in case.notices if n.startswith(MARKER) and n.endswith(f" {address}")}
    if not gone:
        return None
    return replace(case, notices=case.notices - gone - {REMINDED + address})


def reminded(address: str) -> str:
    return REMINDED + address
