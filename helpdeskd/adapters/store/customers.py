"""The customer's side: satisfaction ratings, and mail that goes once per key."""

from __future__ import annotations

from datetime import datetime

from helpdeskd.adapters.store.cases import Cases
from helpdeskd.adapters.store.database import Database, iso
from helpdeskd.adapters.store.persons import ERASED, Found, Person, mask_rows, register


class Ratings:
    def __init__(self, store: Database):
        self.store = store

    def record(self, rating) -> None:
        """A `core.survey.Rating`, and a line in its case's history; a case's later rating
        replaces its earlier one. The one call for every way a rating comes in (mail, web)."""
        detail = f"{rating.score} of 5 by {rating.by}" + (
            " with a comment" if rating.comment else ""
        )
        Cases(self.store).add_event(rating.case_id, rating.at, "rating", detail)
        self.store.execute(
            "INSERT INTO ratings (case_id, score, comment, by_addr, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (case_id) DO UPDATE SET score = excluded.score, "
            "comment = excluded.comment, by_addr = excluded.by_addr, at = excluded.at",
            [rating.case_id, rating.score, rating.comment, rating.by, iso(rating.at)],
        )

    def between(self, since: datetime, until: datetime) -> list[dict]:
        """Ratings given in [since, until), each with its case's customer, plan and assignee."""
        return self.store.rows(
            "SELECT r.*, c.customer, c.plan, c.assignee, c.reference FROM ratings r "
            "JOIN cases c ON c.id = r.case_id WHERE r.at >= ? AND r.at < ? ORDER BY r.at",
            [iso(since), iso(until)],
        )

    def of_cases(self, case_ids: list[int]) -> dict[int, dict]:
        """The ratings of these cases, by case id."""
        rows = self.store.rows_in("SELECT * FROM ratings WHERE case_id IN ({marks})", case_ids)
        return {r["case_id"]: r for r in rows}


class SentOnce:
    def __init__(self, store: Database):
        self.store = store

    def claim(self, key: str, now: datetime) -> bool:
        """True the first time a key is claimed; inside the transaction that queues the mail."""
        cursor = self.store.execute(
            "INSERT INTO sent_once (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            [key, iso(now)],
        )
        return cursor.rowcount == 1

    def sent(self, keys: list[str]) -> set[str]:
        """Those of the keys already claimed."""
        rows = self.store.rows_in("SELECT key FROM sent_once WHERE key IN ({marks})", keys)
        return {r["key"] for r in rows}


# -- a person's data (persons.py): their ratings, and mail sent once to them --


def _export_person(store: Database, person: Person) -> Found:
    ratings = store.rows(
        "SELECT r.*, c.reference FROM ratings r JOIN cases c ON c.id = r.case_id "
        "WHERE lower(r.by_addr) = ?",
        [person.address],
    )
    return Found({"ratings": ratings})


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """The score stays for the figures; the comment was their words."""
    store.execute(
        "UPDATE ratings SET comment = ? WHERE lower(by_addr) = ? AND comment != ''",
        [ERASED, person.address],
    )
    return {
        "ratings": mask_rows(store, person, "ratings", "case_id", ["by_addr", "comment"]),
        "sent_once": mask_rows(store, person, "sent_once", "key", ["key"]),
    }


register(("ratings", "sent_once"), _export_person, _erase_person)
