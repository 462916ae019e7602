"""Senders served as unknown although their address names a customer: `status` counts them, so
that a downgrade is never silent. Derived from what is stored already: the route reason of each
incoming message says `demoted:` (core/classify.py writes it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from helpdeskd.adapters.store import Store, iso

WINDOW = timedelta(days=7)
MARK = "% demoted: %"  # the route reason's words, as core/classify.demotion writes them


def count(store: Store, since: datetime) -> int:
    """Incoming messages since then whose sender was demoted."""
    where = "direction = 'in' AND at >= ? AND route_reason LIKE ?"
    return store.count("messages", where, [iso(since), MARK])


def figure(store: Store, now: datetime, warnings: list[str]) -> dict:
    """The count of the last WINDOW for `status`, with a warning while there are any."""
    found = count(store, now - WINDOW)
    if found:
        warnings.append(
            f"{found} message(s) in the last {WINDOW.days} days from a customer's address "
            "served as an unknown sender (demoted: see the route reason in show)"
        )
    return {"count": found, "days": WINDOW.days}
