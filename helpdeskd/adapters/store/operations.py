"""The daemon's own state: incidents reported to admins once each, where each IMAP mailbox
was left, and when each periodic job last ran."""

from __future__ import annotations

from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso, parse_iso
from helpdeskd.adapters.store.persons import Found, Person, mask_rows, register


class Incidents:
    def __init__(self, store: Database):
        self.store = store

    def open(self, key: str, detail: str, now: datetime) -> bool:
        """Record an incident; True the first time, so it is reported once, not per retry."""
        if self.store.row("SELECT key FROM incidents WHERE key = ?", [key]):
            return False
        self.store.insert(
            "incidents",
            {"key": key, "opened_at": iso(now), "reported_at": iso(now), "detail": detail},
        )
        return True

    def close(self, key: str) -> bool:
        found = self.store.row("SELECT key FROM incidents WHERE key = ?", [key])
        if found:
            self.store.execute("DELETE FROM incidents WHERE key = ?", [key])
        return found is not None

    def reported_by(self, key: str, outbox_id: int) -> None:
        self.store.execute(
            "UPDATE incidents SET alert_outbox_id = ? WHERE key = ?", [outbox_id, key]
        )

    def alert_of(self, key: str) -> int | None:
        row = self.store.row("SELECT alert_outbox_id FROM incidents WHERE key = ?", [key])
        return row["alert_outbox_id"] if row else None

    def listing(self) -> list[dict]:
        """Open incidents, oldest first, with the state of the alert that reported each
        (`queued`, `sent`, `failed`, or None when no mail could be queued)."""
        return self.store.rows(
            "SELECT i.key, i.opened_at, o.state AS alert, i.detail FROM incidents i "
            "LEFT JOIN outbox o ON o.id = i.alert_outbox_id ORDER BY i.opened_at, i.key"
        )

    def close_older(self, prefix: str, current: str) -> None:
        """Close, without a word, the incidents of past windows of one kind (quarantine)."""
        self.store.execute(
            "DELETE FROM incidents WHERE key LIKE ? AND key < ?", [f"{prefix}%", current]
        )


class MailboxState:
    """Where an IMAP mailbox was left: UIDVALIDITY and the last UID spooled."""

    def __init__(self, store: Database):
        self.store = store

    def get(self, mailbox: str) -> tuple[int, int] | None:
        row = self.store.row("SELECT * FROM imap_state WHERE mailbox = ?", [mailbox])
        return (row["uidvalidity"], row["last_uid"]) if row else None

    def set(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO imap_state (mailbox, uidvalidity, last_uid) VALUES (?, ?, ?) "
                "ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
                "last_uid = excluded.last_uid",
                [mailbox, uidvalidity, last_uid],
            )


class Heartbeats:
    def __init__(self, store: Database):
        self.store = store

    def stamp(self, name: str, now: datetime) -> None:
        self.store.execute(
            "INSERT INTO heartbeats (name, at) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET at = excluded.at",
            [name, iso(now)],
        )

    def all(self) -> dict[str, datetime]:
        return {r["name"]: parse_iso(r["at"]) for r in self.store.rows("SELECT * FROM heartbeats")}


# -- a person's data (persons.py): an incident's detail may quote an address --


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    return {"incidents": mask_rows(store, person, "incidents", "key", ["detail"])}


register(("incidents",), lambda store, person: Found(), _erase_person)
