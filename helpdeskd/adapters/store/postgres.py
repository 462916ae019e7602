"""The PostgreSQL backend: the same `Database` calls over psycopg 3, for a helpdesk whose state
lives in a server (several nodes, a managed database). Queries are written once, with SQLite's
`?` placeholders, and translated here; connections come from one pool per database and process.

No process-wide write lock: PostgreSQL's row locks let the listener, the worker and the courier
write at once, and other nodes with them.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from helpdeskd.adapters.store import Store, postgres_schema
from helpdeskd.adapters.store.database import Database
from helpdeskd.adapters.store.dialect import POSTGRESQL
from helpdeskd.adapters.store.migrations import migrations
from helpdeskd.database_url import DatabaseUrl

# Connections one process may hold: each long-lived thread (worker, courier, each mailbox)
# keeps one, the status page and the metrics take one per request.
POOL_SIZE = 32
CONNECT_TIMEOUT = 10  # seconds; then the caller hears the server is unreachable
POOL_TIMEOUT = 30.0  # seconds to wait for a free connection when all are in use

_POOLS: dict[tuple[str, str], ConnectionPool] = {}
_POOLS_GUARD = threading.Lock()
_IDENTITY_TABLES: dict[str, frozenset[str]] = {}


def pool(url: DatabaseUrl) -> ConnectionPool:
    """The process's pool for `url`. The first connection is made here, directly, so that a
    wrong password or an unreachable server is said in libpq's words, not as a pool time-out."""
    key = (url.url, str(url.password_file))
    with _POOLS_GUARD:
        found = _POOLS.get(key)
        if found is None:
            options = {"connect_timeout": CONNECT_TIMEOUT, **url.connect_options()}
            psycopg.connect(url.url, **options).close()
            found = ConnectionPool(
                url.url,
                kwargs={"autocommit": True, **options},
                min_size=0,
                max_size=POOL_SIZE,
                timeout=POOL_TIMEOUT,
                check=ConnectionPool.check_connection,  # a server restart costs no request
                name="helpdeskd",
                open=True,
            )
            _POOLS[key] = found
    return found


@atexit.register
def close_pools() -> None:
    """Close every pool of the process (at exit; tests between databases)."""
    with _POOLS_GUARD:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for each in pools:
        each.close()


@functools.lru_cache(maxsize=2048)
def placeholders(sql: str) -> str:
    """SQLite's `?` as psycopg's `%s`, a literal `%` doubled. The store's SQL has no `?` inside
    a string literal; values always travel as parameters."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    errors: tuple[type[Exception], ...] = (psycopg.Error,)
    dialect = POSTGRESQL

    def __init__(self, url: DatabaseUrl):
        self.url = url
        self.path = None  # no file: `backup` and the file checks say so
        self.pool = pool(url)
        self.conn = self.pool.getconn()
        self._depth = 0  # transactions open on this store, nested ones included
        # threads sharing this store take turns, as they do on SQLite: one connection holds
        # one transaction, and another thread's statements would land in it
        self.lock = threading.RLock()

    def journal(self, name: str) -> None:
        """None: writers take the rows they write, not the whole database, so a record goes
        straight in."""
        return None

    def migrate(self, stop_before: str | None = None) -> None:
        postgres_schema.apply(self, migrations, stop_before)
        _IDENTITY_TABLES.pop(self.url.url, None)  # new tables may have come

    def close(self) -> None:
        if self.conn is not None:
            self.pool.putconn(self.conn)
            self.conn = None

    def leave_checkpoints(self) -> PostgresDatabase:
        return self  # the server checkpoints on its own

    def checkpoint(self) -> None:
        pass

    def large_cache(self) -> None:
        pass  # shared_buffers is the server's to set

    @contextmanager
    def lazy_commits(self) -> Iterator[None]:
        """As on SQLite: commits meanwhile do not wait for the server's WAL flush; they
        survive this process being killed, and only a crash of the server loses them."""
        self.execute("SET synchronous_commit = off")
        try:
            yield
        finally:
            self.execute("RESET synchronous_commit")

    def connection(self) -> psycopg.Connection:
        """The store's connection, a new one when the server dropped it (a restart, a
        fail-over): the statement that found it dropped failed, the next ones need not.
        Inside a transaction the failure stands: its earlier statements are lost with it."""
        if self.conn.broken and not self._depth:
            self.pool.putconn(self.conn)  # the pool throws a broken one away
            self.conn = self.pool.getconn()
        return self.conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT; a nested call is a savepoint, undone alone when it fails."""
        with self.lock, self.connection().transaction():
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    @contextmanager
    def wiping(self) -> Iterator[None]:
        """The old row versions are the server's to reclaim (autovacuum, or `VACUUM FULL`,
        docs/privacy.md): nothing to set for one transaction."""
        yield

    def exclusive(self, name: str) -> None:
        """Inside a transaction: other transactions asking for `name` (in this process or on
        another node) wait until this one ends; PostgreSQL's transactions otherwise run side
        by side."""
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [name])

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor:
        return self.connection().execute(placeholders(sql), list(params))

    def executemany(self, sql: str, rows: list) -> None:
        with self.connection().cursor() as cursor:
            cursor.executemany(placeholders(sql), rows)

    def insert(self, table: str, row: dict) -> int:
        """The new row's id, for the tables that have one (0 for the others)."""
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        if table not in self.identity_tables():
            self.execute(sql, list(row.values()))
            return 0
        return self.execute(f"{sql} RETURNING id", list(row.values())).fetchone()[0]

    def identity_tables(self) -> frozenset[str]:
        found = _IDENTITY_TABLES.get(self.url.url)
        if found is None:
            rows = self.rows(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' "
                "AND is_identity = 'YES' AND table_schema = current_schema()"
            )
            found = _IDENTITY_TABLES[self.url.url] = frozenset(r["table_name"] for r in rows)
        return found

    def tables(self) -> list[str]:
        """helpdeskd's tables in this database's schema."""
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE' AND table_name != ? ORDER BY 1",
            [postgres_schema.APPLIED_TABLE],
        )
        return [r["table_name"] for r in rows]


class PostgresStore(Store, PostgresDatabase):
    """`Store` on PostgreSQL: what `open_store` gives for a postgresql:// URL. PostgresDatabase
    comes before Database among its bases, so its calls are the ones made."""
