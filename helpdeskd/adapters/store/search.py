"""The search index's texts, and the rows that hold every word of a query. The index itself is
each store's own (dialect.search_schema): FTS5 with trigrams, or pg_trgm."""

from __future__ import annotations

from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso
from helpdeskd.adapters.store.persons import Found, Person, register

CANDIDATES = 2000  # rows ranked per query at most: the newest cases' first


class SearchIndex:
    def __init__(self, store: Database):
        self.store = store

    def add(self, case_id: int, message_id: int | None, rows: list[tuple[str, str]]) -> None:
        """(part, text) rows of one message, in the transaction that applies it."""
        for part, body in rows:
            self.store.insert(
                "search_texts",
                {"case_id": case_id, "message_id": message_id, "part": part, "body": body},
            )

    def matching(
        self,
        words: list[str],
        *,
        customer: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = CANDIDATES,
    ) -> list[dict]:
        """Rows holding every word (any case), with their case, the newest texts first: from
        the index, and from the texts it has yet to take (dialect.search_tail), read directly."""
        dialect = self.store.dialect
        first = None
        if since is not None:
            first = self.first_since(since)
            if first is None:
                return []  # no case opened since: nothing to read
        filters = [
            # the index reads only the texts from there on, not every match of a common word
            ("{row} >= ?", first),
            ("c.customer = ?", customer),
            ("c.status = ?", status),
            ("c.opened_at >= ?", iso(since)),
        ]
        table, row = dialect.search_table, dialect.search_row
        parts = [_part(f"{table} s JOIN", row, dialect.search_contains, words, filters)]
        if dialect.search_tail:  # short: read by id first (CROSS JOIN keeps that order in
            # SQLite), not through a filter's index over every case of a customer, say
            tail = [(dialect.search_tail, True), *filters]
            parts.append(_part("search_texts s CROSS JOIN", "s.id", "body LIKE ?", words, tail))
        # each part is read newest first and the two merged: the LIMIT stops both early
        sql = " UNION ALL ".join(sql for sql, _ in parts) + " ORDER BY text_id DESC LIMIT ?"
        params = [value for _, values in parts for value in values]
        if not dialect.search_setup:  # SQLite: no transaction, whose write lock a read needs not
            return self.store.rows(sql, [*params, limit])
        with self.store.transaction():
            self.store.execute(dialect.search_setup)
            return self.store.rows(sql, [*params, limit])

    def catch_up(self, limit: int = 200) -> int:
        """Index the next `limit` texts the index has yet to take, in one short transaction;
        how many: 0 once it holds them all, and always where the index follows every write
        itself (PostgreSQL). The daemon's worker calls it when it has no mail in hand."""
        dialect = self.store.dialect
        if not dialect.search_catch_up or not self._behind():
            return 0
        # lazy: a commit a power cut takes leaves index and bound as they were, to be redone
        with self.store.lazy_commits(), self.store.transaction():
            taken = self.store.row(
                "SELECT count(*) AS n, max(id) AS last FROM (SELECT s.id FROM search_texts s "
                f"WHERE {dialect.search_tail} ORDER BY s.id LIMIT ?) AS next",
                [limit],
            )
            if taken["n"]:
                for statement in dialect.search_catch_up:
                    self.store.execute(statement, [taken["last"]])
        return taken["n"]

    def _behind(self) -> bool:
        """A read, without the write lock: after most mails of a steady pace, nothing is left."""
        tail = self.store.dialect.search_tail
        return (
            self.store.row(f"SELECT 1 AS behind FROM search_texts s WHERE {tail} LIMIT 1")
            is not None
        )

    def first_since(self, since: datetime) -> int | None:
        """A bound below every text of the cases opened since then; None when there is none.
        Those cases' ids are all at least the first one's, so the bound is read from the
        case_id index of their texts alone."""
        row = self.store.row(
            "SELECT min(id) AS first FROM search_texts WHERE case_id >= "
            "(SELECT min(id) FROM cases WHERE opened_at >= ?)",
            [iso(since)],
        )
        return row["first"] if row else None

    def forget_attachments(self, closed_before: datetime) -> int:
        """What retention purges (raw mail, so attachments) leaves the index with it."""
        return self.store.execute(
            "DELETE FROM search_texts WHERE part = 'attachment' AND case_id IN "
            "(SELECT id FROM cases WHERE status = 'closed' AND closed_at < ?)",
            [iso(closed_before)],
        ).rowcount


def _part(
    source: str, row: str, contains: str, words: list[str], filters: list[tuple[str, object]]
) -> tuple[str, list]:
    """One part of a search: the rows of `source` (texts joined to cases) holding every word,
    under each filter given a value (True: a condition without one), with their text's id."""
    where = [f"s.{contains}" for _ in words]
    params: list = [f"%{w}%" for w in words]
    for sql, value in filters:
        if value:
            where.append(sql.format(row=row))
            params += [] if value is True else [value]
    return (
        "SELECT s.body, c.reference, c.subject, c.status, c.customer, c.opened_at, "
        f"{row} AS text_id FROM {source} cases c ON c.id = s.case_id WHERE {' AND '.join(where)}",
        params,
    )


# -- a person's data (persons.py): the index holds their words and names --


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """Their own messages leave the index; other texts naming them are written again with the
    pseudonym. Deleted and inserted, never updated: SQLite's index follows inserts and
    deletes of search_texts alone."""
    own = store.rows_in(
        "SELECT id FROM search_texts WHERE message_id IN "
        "(SELECT id FROM messages WHERE spool_id IN ({marks}))",
        [*person.mail],
    )
    where = " OR ".join("lower(body) LIKE ?" for _ in person.words)
    named = store.rows(
        f"SELECT * FROM search_texts WHERE {where}", [f"%{w.lower()}%" for w in person.words]
    )
    gone = {r["id"] for r in own}
    kept = [r for r in named if r["id"] not in gone and person.mentioned(r["body"])]
    for row in [*own, *kept]:
        store.execute("DELETE FROM search_texts WHERE id = ?", [row["id"]])
    for row in kept:
        store.insert("search_texts", {**row, "body": person.masked(row["body"])})
    return {"search_texts (their words)": len(gone), "search_texts": len(kept)}


register(("search_texts",), lambda store, person: Found(), _erase_person)
