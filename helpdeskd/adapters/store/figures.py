"""Counts for `status` and the metrics endpoint; each one query on an index."""

from __future__ import annotations

from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso, parse_iso

OPEN_STATUSES = ("new", "open", "waiting", "pending_close", "resolved")


class Figures:
    """Counts for `status` and the metrics endpoint; each one query on an index."""

    def __init__(self, store: Database):
        self.store = store

    def spool_backlog(self) -> tuple[int, datetime | None]:
        row = self.store.row(
            "SELECT count(*) AS n, min(received_at) AS oldest FROM spool WHERE state = 'new'"
        )
        return row["n"], parse_iso(row["oldest"])

    def outbox_backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Queued mail, and since when the oldest of it that is due has waited."""
        count = self.store.count("outbox", "state = 'queued'")
        row = self.store.row(
            "SELECT min(created_at) AS oldest FROM outbox WHERE state = 'queued' "
            "AND next_attempt_at <= ?",
            [iso(now)],
        )
        return count, parse_iso(row["oldest"])

    def dead_mail(self) -> dict[str, int]:
        return {
            "outbox_failed": self.store.count("outbox", "state = 'failed'"),
            "quarantined": self.store.count("spool", "state = 'quarantined'"),
        }

    def next_deadlines(self, limit: int = 5) -> list[dict]:
        return self.store.rows(
            "SELECT reference, status, priority, next_due FROM cases "
            "WHERE next_due IS NOT NULL ORDER BY next_due LIMIT ?",
            [limit],
        )

    def open_cases(self) -> list[dict]:
        marks = ", ".join("?" * len(OPEN_STATUSES))
        return self.store.rows(
            f"SELECT status, plan, count(*) AS n FROM cases WHERE status IN ({marks}) "
            "GROUP BY status, plan",
            list(OPEN_STATUSES),
        )
