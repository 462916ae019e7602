"""`helpdeskd migrate --to postgresql://...`: a helpdesk moved from its SQLite file into an empty
PostgreSQL database, while the daemon is stopped.

Table by table, parents before the tables that refer to them, each in id order, in one
PostgreSQL transaction: a move that fails leaves the target as empty as it was. The SQLite file
is held with its write lock the whole time (an `ingest` meanwhile waits, then is told to retry),
and it is left as it was: it is the way back. Before the commit, every table's count is compared
and a sample of rows column by column.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from helpdeskd import database_url
from helpdeskd.adapters.store import SQLITE, Store
from helpdeskd.config import Config

BATCH = 200  # rows per round trip; a row may hold a 25 MB mail
SAMPLE = 50  # rows per table compared column by column, spread over the table


class MoveRefused(Exception):
    """The move cannot start: the daemon runs, or the target already holds a helpdesk."""


@dataclass(frozen=True)
class Moved:
    counts: dict[str, int]  # rows copied, per table
    compared: int  # rows read back and compared column by column


def unusable(config: Config, to: str) -> str | None:
    """Why the move cannot be asked for (the helpdesk or the target), or None."""
    if not isinstance(config.helpdesk.database, Path):
        return f"the helpdesk is on {config.helpdesk.database} already"
    if not database_url.looks_like_url(to):
        return "not a postgresql:// URL"
    return database_url.problem(to)


def listener_answers(config: Config) -> bool:
    """Whether something listens on the configured SMTP port: the daemon, most likely."""
    if not config.smtp.enabled:
        return False
    host = "127.0.0.1" if config.smtp.host in ("0.0.0.0", "::", "") else config.smtp.host
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, config.smtp.port)) == 0


def move(source: Store, target: Store) -> Moved:
    """Copy every row of `source` (SQLite) into `target` (an empty, migrated PostgreSQL)."""
    if source.dialect is not SQLITE or target.dialect is SQLITE:
        raise MoveRefused("a move goes from an SQLite file to a PostgreSQL database")
    tables = parents_first(source, source.tables())
    refuse_unless_empty(target, tables)
    with source.transaction(), target.transaction():
        counts = {table: copy_table(source, target, table) for table in tables}
        restart_identities(target)
        compared = sum(compare(source, target, table) for table in tables)
        # the planner's statistics, with the rows: until autovacuum gets to tables filled in
        # one go it plans them as empty, and a common word's search sorts every match
        target.execute("ANALYZE")
    return Moved(counts, compared)


def refuse_unless_empty(target: Store, tables: list[str]) -> None:
    missing = sorted(set(tables) - set(target.tables()))
    if missing:
        raise MoveRefused(
            f"{target.url} lacks the tables {', '.join(missing)}: is this helpdeskd older "
            "than the one that made the SQLite file?"
        )
    full = [t for t in tables if target.row(f"SELECT 1 AS found FROM {t} LIMIT 1")]
    if full:
        raise MoveRefused(
            f"{target.url} already holds a helpdesk ({', '.join(full)} have rows): "
            "move into an empty database"
        )


def parents_first(source: Store, tables: list[str]) -> list[str]:
    """A table after the tables its foreign keys point to."""
    parents = {
        t: {r["table"] for r in source.rows(f"PRAGMA foreign_key_list({t})")} - {t} for t in tables
    }
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise MoveRefused(f"foreign keys in a circle among {', '.join(tables)}")
        ordered += ready
    return ordered


def copy_table(source: Store, target: Store, table: str) -> int:
    cursor = source.execute(f"SELECT * FROM {table} ORDER BY {key_order(source, table)}")
    names = [column[0] for column in cursor.description]
    insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    copied = 0
    while batch := cursor.fetchmany(BATCH):
        target.executemany(insert, batch)
        copied += len(batch)
    return copied


def key_order(source: Store, table: str) -> str:
    return ", ".join(primary_key(source, table)) or "rowid"


def primary_key(source: Store, table: str) -> list[str]:
    columns = [r for r in source.rows(f"PRAGMA table_info({table})") if r["pk"]]
    return [r["name"] for r in sorted(columns, key=lambda r: r["pk"])]


def restart_identities(target: Store) -> None:
    """Each id sequence goes on after the highest id copied, or the next case collides."""
    for table in sorted(target.identity_tables()):
        target.execute(
            f"SELECT setval(pg_get_serial_sequence(?, 'id'), "
            f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)",
            [table],
        )


def compare(source: Store, target: Store, table: str) -> int:
    """The table's count, and a sample of its rows read back from the target and compared
    column by column; raises MoveRefused at the first difference (the copy is then undone)."""
    count = source.count(table, "1 = 1")
    if target.count(table, "1 = 1") != count:
        raise MoveRefused(f"{table}: {count} rows in the file, another count copied")
    step = max(1, count // SAMPLE)
    sample = source.rows(
        f"SELECT * FROM {table} WHERE rowid % ? = 0 OR rowid = (SELECT max(rowid) FROM {table})",
        [step],
    )
    key = primary_key(source, table)
    where = " AND ".join(f"{column} = ?" for column in key)
    for row in sample:
        copied = target.row(f"SELECT * FROM {table} WHERE {where}", [row[c] for c in key])
        if copied != row:
            raise MoveRefused(f"{table}: the row {[row[c] for c in key]} differs once copied")
    return len(sample)


def summary(moved: Moved, target: Store, config: Config) -> str:
    """What was copied, what was checked, and what to change in the configuration."""
    width = max(map(len, moved.counts))
    lines = [f"copied into {target.url}:"]
    lines += [f"  {table:<{width}}  {n:>9,}" for table, n in moved.counts.items()]
    lines += [
        f"checked: every table's count, and {moved.compared} rows compared column by column",
        f"next: in {config.path} set",
        "  [helpdesk]",
        f'  database = "{target.url}"',
        "  (the password in database_password_file or PGPASSFILE, not in the URL),",
        f"then start helpdeskd; keep {config.helpdesk.database} as it is: it is the way back",
    ]
    return "\n".join(lines)
