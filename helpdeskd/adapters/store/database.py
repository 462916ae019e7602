"""The connection: one `Database` per thread (SQLite connections are not shared between
threads), its transactions and the few calls every query goes through.

WAL lets readers run beside the writer. Every write goes through one lock per database file
(`write_lock`): a lock of the process's, then a lock of the file's (`flock` on `DB-writer`), so
the node's listener, worker and courier processes, the IMAP pollers and the commands queue up
and each goes as soon as the one before is done, instead of sleeping in SQLite's busy handler
(1, 2, 5, ... 100 ms a try: the three processes of a node lost most of their time there). The
busy timeout is left for programs that do not take it (the sqlite3 shell).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlite_utils

from helpdeskd.adapters.store.dialect import SQLITE
from helpdeskd.adapters.store.journal import Journal
from helpdeskd.adapters.store.migrations import migrations
from helpdeskd.database_url import looks_like_url, masked


class StoreUnavailable(Exception):
    """The database could not commit; the sender should retry later (SMTP 451, exit 75)."""


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class WriteLock:
    """A thread of this process holds the RLock, and the process holds the file's `flock`,
    taken at the outermost acquire. Re-entrant, so a thread that opens a second connection
    while it writes gets SQLite's own busy error, as before, rather than a deadlock."""

    WAIT = 0.0002, 0.002  # the first and the longest pause between two tries for the file

    def __init__(self, path: Path | None, timeout: float):
        self.path, self.timeout = path, timeout
        self.inner = threading.RLock()
        self.depth, self.fd = 0, -1

    def __enter__(self) -> WriteLock:
        self.inner.acquire()
        if self.depth == 0 and self.path is not None:
            try:
                self._lock_file()
            except BaseException:
                self.inner.release()
                raise
        self.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.inner.release()

    def _lock_file(self) -> None:
        """Tried without blocking, again and again for up to `timeout`: a process stuck while
        it writes makes the others fail as SQLite's busy time-out did (a 451), not hang."""
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline, pause = time.monotonic() + self.timeout, self.WAIT[0]
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, self.WAIT[1])


_WRITE_LOCKS: dict[str, WriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(path: Path | str, timeout: float = 5.0) -> WriteLock:
    """The one lock for writing to the database at `path`, for this process and the others."""
    if str(path) == ":memory:":
        return WriteLock(None, timeout)  # a private database: nobody to share with
    key = str(Path(path).resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, WriteLock(Path(key + "-writer"), timeout))


class Database:
    # How long a writer waits for another process before giving up: the SMTP client is then
    # told 451 and retries, which is better than holding its connection.
    BUSY_TIMEOUT = 5.0
    WAL_SIZE_LIMIT = 64 << 20
    # WAL frames left for the last checkpoint pass, which holds the write lock
    CHECKPOINT_TAIL = 256
    # ...and only once the WAL is this long (32 MiB): that pass costs a sync of the database
    # file, which every commit then waits for, so it comes every few seconds at most
    WAL_RESTART_FRAMES = 8192
    # what the driver raises when the database cannot do what was asked
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    dialect = SQLITE

    def __init__(self, path: Path | str):
        if looks_like_url(str(path)):  # it would make a folder named "postgresql:"
            raise ValueError(f"{masked(str(path))} is a URL, not an SQLite file: use open_store")
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=self.BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a 250 promises the mail survives power loss
        self.db.execute("PRAGMA foreign_keys=ON")
        # a WAL that once grew (a long reader, a storm) is cut back when it starts over
        self.db.execute(f"PRAGMA journal_size_limit={self.WAL_SIZE_LIMIT}")
        self.lock = write_lock(path, self.BUSY_TIMEOUT)
        self._depth = 0

    @classmethod
    def open(cls, path: Path | str) -> Database:
        store = cls(path)
        store.migrate()
        return store

    def migrate(self, stop_before: str | None = None) -> None:
        migrations.apply(self.db, stop_before=stop_before)

    def close(self) -> None:
        self.db.conn.close()

    def leave_checkpoints(self) -> Database:
        """This connection's commits stop copying the WAL into the database: on a large
        database a checkpoint takes hundreds of milliseconds, and it fell on whichever commit
        crossed the threshold, often one a 250 waited for. `checkpoint()` does it instead,
        from a thread of its own."""
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        return self

    def large_cache(self) -> None:
        """A page cache of 32 MiB instead of SQLite's 2, for the connection that inserts into
        indexes of millions of random keys (Message-IDs): their upper levels stay in memory."""
        self.db.execute("PRAGMA cache_size = -32768")

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database beside the writers (PASSIVE: no
        write lock, no waiting), then, once the WAL is long, the last few under the write
        lock: with no frame left behind, the next commit starts the WAL over from its
        beginning. Without that last pass, under a steady stream of commits the WAL never
        started over and grew by gigabytes."""
        for _ in range(3):
            _, frames, copied = self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames - copied <= self.CHECKPOINT_TAIL:
                break
        if frames >= self.WAL_RESTART_FRAMES:
            with self.lock:
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def truncate_wal(self) -> bool:
        """Copy the whole WAL into the database and cut it to nothing, so that the space a WAL
        grown in trouble (a disk that was full) holds goes back to the filesystem. False when
        it could not finish: a reader still on an old snapshot, or no room yet for the copy."""
        try:
            with self.lock:
                busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except self.errors:
            return False
        return busy == 0

    @contextmanager
    def lazy_commits(self) -> Iterator[None]:
        """Commits meanwhile are not forced to disk (WAL with `synchronous=NORMAL`): they
        survive the process being killed, and only a power cut before the next sync (every
        other connection's next commit) loses them. For records whose loss repeats work and
        no more, at the cost of a sync each: a delivery recorded as sent."""
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction, holding the process's write lock. A nested call is a savepoint of
        the outer one: when it fails, only its own writes are undone (a batch of messages
        committed together loses only the one that failed)."""
        if self._depth:
            savepoint = f"nested_{self._depth}"
            self.db.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                if self.db.conn.in_transaction:  # some errors end the whole transaction
                    self.db.execute(f"ROLLBACK TO {savepoint}")
                raise
            finally:
                self._depth -= 1
                if self.db.conn.in_transaction:
                    self.db.execute(f"RELEASE {savepoint}")
            return
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
            finally:
                self._depth = 0

    @contextmanager
    def wiping(self) -> Iterator[None]:
        """Writes meanwhile leave no copy of what they delete or overwrite in the file's free
        space (`secure_delete`), and the WAL that held the old pages is emptied afterwards: an
        erasure leaves nothing behind for someone who reads the file's bytes."""
        self.db.execute("PRAGMA secure_delete=ON")
        try:
            yield
        finally:
            self.db.execute("PRAGMA secure_delete=OFF")
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def journal(self, name: str) -> Journal | None:
        """The journal `name` beside the database file (journal.py): records kept at once
        without the write lock, and taken in later. None for a private database in memory."""
        if str(self.path) == ":memory:":
            return None
        return Journal(Path(f"{self._resolved}-{name}"))

    @cached_property
    def _resolved(self) -> Path:
        return self.path.resolve()  # one name for the file, however a process reached it

    def exclusive(self, name: str) -> None:
        """Inside a transaction: no other transaction that asks for `name` runs until this one
        ends. SQLite's write transactions already run one at a time."""

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """One statement; every query of the store goes through here (or the calls below)."""
        return self.db.execute(sql, params)

    def executemany(self, sql: str, rows: list) -> None:
        self.db.conn.executemany(sql, rows)

    def insert(self, table: str, row: dict) -> int:
        """A plain INSERT for the hot path (sqlite-utils adds a savepoint and introspection
        to each of its inserts); returns the new rowid."""
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        return self.execute(sql, list(row.values())).lastrowid

    def rows(self, sql: str, params: Any = ()) -> list[dict]:
        """The rows as dicts, read directly: sqlite-utils' `query` wraps every statement in a
        savepoint of its own, two more statements for each read on the hot path."""
        cursor = self.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def row(self, sql: str, params: Any = ()) -> dict | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def rows_in(self, sql: str, values: list) -> list[dict]:
        """`sql` with `{marks}` where the placeholders of `values` go, run on chunks of them:
        SQLite allows so many parameters a statement."""
        found: list[dict] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            found += self.rows(sql.format(marks=", ".join("?" * len(chunk))), chunk)
        return found

    def count(self, table: str, where: str, params: Any = ()) -> int:
        return self.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]

    def tables(self) -> list[str]:
        """helpdeskd's tables, without the migrations' own record nor the search index (an
        FTS5 table, its shadow tables and how far it goes: built from search_texts, never
        copied)."""
        rows = self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT IN (?, ?, ?) AND substr(name, 1, ?) != ? ORDER BY name",
            [migrations.migrations_table, "search_index", "search_indexed", 13, "search_index_"],
        )
        return [r["name"] for r in rows]


def backup_to(store: Database, dest: Path) -> str:
    """Copy the live database with SQLite's online backup API (consistent while others write:
    it restarts on a change made by another connection), then check the copy. Returns the
    copy's `PRAGMA integrity_check` answer, "ok" when sound."""
    target = sqlite3.connect(str(dest))
    try:
        # one step: a single read transaction, a snapshot that writers in WAL mode never block
        store.db.conn.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        return target.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        target.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
