"""The store: the only package that speaks SQL. Split by what it holds: the connection
(`database`), the schema (`migrations`), the spool, cases and their messages, the outbox, the
daemon's own state (`operations`), figures, the customer's side and the status page's sign-ins.
Everything a caller needs is importable from here."""

from __future__ import annotations

from helpdeskd.adapters.store.cases import CLOCK_COLUMNS, Cases, Conversations, case_row, row_case
from helpdeskd.adapters.store.customers import Ratings, SentOnce
from helpdeskd.adapters.store.database import (
    Database,
    StoreUnavailable,
    backup_to,
    integrity,
    iso,
    parse_iso,
    write_lock,
)
from helpdeskd.adapters.store.figures import OPEN_STATUSES, Figures
from helpdeskd.adapters.store.migrations import migrations
from helpdeskd.adapters.store.operations import Heartbeats, Incidents, MailboxState
from helpdeskd.adapters.store.outbox import ADMIN_KINDS, OutboxQueue, Queued
from helpdeskd.adapters.store.signins import Sessions, SignIns
from helpdeskd.adapters.store.spool import (
    Arrival,
    Spool,
    SpoolItem,
    dedup_key,
    head_of,
    purge_raw,
    raw_of,
    sniff_message_id,
    split_head,
)


class Store(Spool, Database):
    """A database with its spool: what every entrance, the worker and the CLI open."""


__all__ = [
    "ADMIN_KINDS",
    "CLOCK_COLUMNS",
    "OPEN_STATUSES",
    "Arrival",
    "Cases",
    "Conversations",
    "Database",
    "Figures",
    "Heartbeats",
    "Incidents",
    "MailboxState",
    "OutboxQueue",
    "Queued",
    "Ratings",
    "SentOnce",
    "Sessions",
    "SignIns",
    "Spool",
    "SpoolItem",
    "Store",
    "StoreUnavailable",
    "backup_to",
    "case_row",
    "dedup_key",
    "head_of",
    "integrity",
    "iso",
    "migrations",
    "parse_iso",
    "purge_raw",
    "raw_of",
    "row_case",
    "sniff_message_id",
    "split_head",
    "write_lock",
]
