"""The store: the only package that speaks SQL. Split by what it holds: the connection
(`database`), the schema (`migrations`), the spool, cases and their messages, the outbox, the
daemon's own state (`operations`), figures, the customer's side and the status page's sign-ins.
Everything a caller needs is importable from here."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

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
from helpdeskd.adapters.store.dialect import POSTGRESQL, SQLITE, Dialect
from helpdeskd.adapters.store.figures import OPEN_STATUSES, Figures
from helpdeskd.adapters.store.integrations import Deliveries, Delivery, Tokens
from helpdeskd.adapters.store.leases import Leases, Nodes
from helpdeskd.adapters.store.merges import Merges
from helpdeskd.adapters.store.migrations import migrations
from helpdeskd.adapters.store.operations import Heartbeats, Incidents, MailboxState
from helpdeskd.adapters.store.outbox import ADMIN_KINDS, OutboxQueue, Queued
from helpdeskd.adapters.store.search import SearchIndex
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
from helpdeskd.adapters.store.teamwork import Pages, Reminders, TimeSpent
from helpdeskd.database_url import DatabaseUrl, looks_like_url


class Store(Spool, Database):
    """A database with its spool: what every entrance, the worker and the CLI open."""


def open_store(database: Path | str | DatabaseUrl, *, migrate: bool = True) -> Store:
    """The store the configured `[helpdesk] database` names: a PostgreSQL URL, else an SQLite
    file. With `migrate`, its schema is brought up to date first (once per process is enough:
    the threads that open their own store later pass False).

    Raises StoreUnavailable when a PostgreSQL server cannot be reached or refuses us (the
    URL shown masked); SQLite's own errors pass through, for the caller to judge the file."""
    if isinstance(database, str) and looks_like_url(database):
        database = DatabaseUrl(database)
    if isinstance(database, DatabaseUrl):
        return _open_postgres(database, migrate)
    store = Store(database)
    if migrate:
        store.migrate()
    return store


def _open_postgres(url: DatabaseUrl, migrate: bool) -> Store:
    import psycopg  # a tenth of a second of imports that SQLite set-ups never pay

    from helpdeskd.adapters.store.postgres import PostgresStore

    try:
        store = PostgresStore(url)
        if migrate:
            store.migrate()
    except (psycopg.Error, OSError) as exc:  # OSError: the password file
        # libpq's words span lines; one line names the URL, masked
        raise StoreUnavailable(" ".join(f"{url}: {exc}".split())) from exc
    return store


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database is busy or out of reach for now (try again later),
    rather than a fault: SQLite's lock, PostgreSQL's lost connection."""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc)
    psycopg = sys.modules.get("psycopg")  # imported only when PostgreSQL is in use
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


__all__ = [
    "ADMIN_KINDS",
    "CLOCK_COLUMNS",
    "OPEN_STATUSES",
    "POSTGRESQL",
    "SQLITE",
    "Arrival",
    "Cases",
    "Conversations",
    "Database",
    "DatabaseUrl",
    "Deliveries",
    "Delivery",
    "Dialect",
    "Figures",
    "Heartbeats",
    "Incidents",
    "Leases",
    "MailboxState",
    "Merges",
    "Nodes",
    "OutboxQueue",
    "Pages",
    "Queued",
    "Ratings",
    "Reminders",
    "SearchIndex",
    "SentOnce",
    "Sessions",
    "SignIns",
    "Spool",
    "SpoolItem",
    "Store",
    "StoreUnavailable",
    "TimeSpent",
    "Tokens",
    "backup_to",
    "case_row",
    "dedup_key",
    "head_of",
    "integrity",
    "iso",
    "migrations",
    "open_store",
    "parse_iso",
    "purge_raw",
    "raw_of",
    "row_case",
    "sniff_message_id",
    "split_head",
    "unavailable",
    "write_lock",
]
