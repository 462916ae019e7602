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
        """Rows holding every word (any case), with their case, the newest texts first."""
        dialect = self.store.dialect
        where = [f"s.{dialect.search_contains}" for _ in words]
        params: list = [f"%{w}%" for w in words]
        if since is not None:
            first = self.first_since(since)
            if first is None:
                return []  # no case opened since: nothing to read
            # the index reads only the texts from there on, not every match of a common word
            where.append(f"{dialect.search_row} >= ?")
            params.append(first)
        for sql, value in (
            ("c.customer = ?", customer),
            ("c.status = ?", status),
            ("c.opened_at >= ?", iso(since)),
        ):
            if value:
                where.append(sql)
                params.append(value)
        sql = (
            "SELECT s.body, c.reference, c.subject, c.status, c.customer, c.opened_at "
            f"FROM {dialect.search_table} s JOIN cases c ON c.id = s.case_id "
            f"WHERE {' AND '.join(where)} ORDER BY {dialect.search_row} DESC LIMIT ?"
        )
        if not dialect.search_setup:  # SQLite: no transaction, whose write lock a read needs not
            return self.store.rows(sql, [*params, limit])
        with self.store.transaction():
            self.store.execute(dialect.search_setup)
            return self.store.rows(sql, [*params, limit])

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
