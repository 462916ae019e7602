"""Retention: raw mail of cases closed long ago is removed; what the case says is kept.

The raw bytes (with their attachments) are the bulk of the database and the part most full of
personal data. The case history (messages as stored text, events, clocks) and so every report
figure stay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from helpdeskd.adapters.store import SearchIndex, Store, purge_raw

log = structlog.get_logger("helpdeskd.retention")


def purge(store: Store, older_than: timedelta, now: datetime) -> dict[str, int]:
    """Empty the raw mail of cases closed before `now - older_than`; returns the counts."""
    counts = purge_raw(store, now - older_than)
    with store.transaction():
        counts["search"] = SearchIndex(store).forget_attachments(now - older_than)
    if any(counts.values()):
        log.info("raw mail purged", closed_before=(now - older_than).isoformat(), **counts)
    return counts
