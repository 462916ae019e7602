"""Cases folded into one another (`#merge`, `#unmerge`) and messages made cases of their own
(`#split`): what moved, kept so that it can be moved back."""

from __future__ import annotations

import json
from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso, parse_iso
from helpdeskd.adapters.store.persons import Found, Person, mask_rows, register


class Merges:
    def __init__(self, store: Database):
        self.store = store

    def fold(self, folded_id: int, surviving_id: int, by: str, added: dict, now: datetime) -> None:
        """Move the folded case's messages and history onto the surviving case, and record
        what moved; `added`: the contacts and participants the surviving case gained."""
        moved = {
            "messages": self._ids("messages", folded_id),
            "events": self._ids("events", folded_id),
            **added,
        }
        for table in ("messages", "events"):
            self._move(table, moved[table], surviving_id)
        self.store.insert(
            "merges",
            {
                "folded_id": folded_id,
                "surviving_id": surviving_id,
                "at": iso(now),
                "by_addr": by,
                "moved": json.dumps(moved),
            },
        )

    def last(self, surviving_id: int, since: datetime) -> dict | None:
        """The latest merge into this case since then that is not undone, `moved` read."""
        row = self.store.row(
            "SELECT * FROM merges WHERE surviving_id = ? AND at >= ? AND undone_at IS NULL "
            "ORDER BY id DESC LIMIT 1",
            [surviving_id, iso(since)],
        )
        if row:
            row = {**row, "moved": json.loads(row["moved"]), "at": parse_iso(row["at"])}
        return row

    def unfold(self, merge: dict, now: datetime) -> None:
        """Put back what the merge moved; what the surviving case got since stays there."""
        for table in ("messages", "events"):
            self._move(table, merge["moved"][table], merge["folded_id"])
        self.store.execute("UPDATE merges SET undone_at = ? WHERE id = ?", [iso(now), merge["id"]])

    def move_message(self, message_id: int, case_id: int) -> None:
        self._move("messages", [message_id], case_id)

    def _ids(self, table: str, case_id: int) -> list[int]:
        rows = self.store.rows(f"SELECT id FROM {table} WHERE case_id = ? ORDER BY id", [case_id])
        return [r["id"] for r in rows]

    def _move(self, table: str, ids: list[int], case_id: int) -> None:
        self.store.executemany(
            f"UPDATE {table} SET case_id = ? WHERE id = ?", [(case_id, i) for i in ids]
        )


# -- a person's data (persons.py): a merge keeps the contacts and participants it added --


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    return {"merges": mask_rows(store, person, "merges", "id", ["by_addr", "moved"])}


register(("merges",), lambda store, person: Found(), _erase_person)
