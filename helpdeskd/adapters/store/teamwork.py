"""Engineers' reminders on cases and the time they spent on them."""

from __future__ import annotations

import json
from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso
from helpdeskd.adapters.store.persons import Found, Person, mask_rows, register


class Reminders:
    def __init__(self, store: Database):
        self.store = store

    def add(self, case_id: int, reminder, now: datetime) -> None:
        """A `core.teamwork.Reminder`, in the transaction that applies the mail asking it."""
        self.store.insert(
            "reminders",
            {
                "case_id": case_id,
                "recipient": reminder.recipient,
                "due_at": iso(reminder.due_at),
                "set_by": reminder.set_by,
                "set_at": iso(now),
            },
        )

    def due(self, now: datetime, limit: int = 500) -> list[dict]:
        return self.store.rows(
            "SELECT * FROM reminders WHERE sent_at IS NULL AND due_at <= ? "
            "ORDER BY due_at, id LIMIT ?",
            [iso(now), limit],
        )

    def claim(self, reminder_id: int, now: datetime) -> bool:
        """True once per reminder: a second sweep, or a second node, sends nothing again."""
        cursor = self.store.execute(
            "UPDATE reminders SET sent_at = ? WHERE id = ? AND sent_at IS NULL",
            [iso(now), reminder_id],
        )
        return cursor.rowcount == 1

    def pending(self, case_id: int) -> list[dict]:
        return self.store.rows(
            "SELECT * FROM reminders WHERE case_id = ? AND sent_at IS NULL ORDER BY due_at, id",
            [case_id],
        )


class TimeSpent:
    def __init__(self, store: Database):
        self.store = store

    def add(self, case_id: int, engineer: str, minutes: int, now: datetime) -> None:
        self.store.insert(
            "time_spent",
            {"case_id": case_id, "engineer": engineer, "minutes": minutes, "at": iso(now)},
        )

    def per_engineer(self, case_id: int) -> dict[str, int]:
        rows = self.store.rows(
            "SELECT engineer, SUM(minutes) AS minutes FROM time_spent WHERE case_id = ? "
            "GROUP BY engineer ORDER BY engineer",
            [case_id],
        )
        return {r["engineer"]: int(r["minutes"]) for r in rows}

    def between(self, since: datetime | None, until: datetime | None) -> list[dict]:
        """Time recorded in [since, until) (an end left None is open), each entry with its
        case's customer, plan and priority."""
        bounds = [(sql, iso(at)) for sql, at in (("t.at >= ?", since), ("t.at < ?", until)) if at]
        where = " AND ".join(sql for sql, _ in bounds) or "1 = 1"
        return self.store.rows(
            "SELECT t.engineer, t.minutes, t.at, c.reference, c.customer, c.plan, c.priority "
            f"FROM time_spent t JOIN cases c ON c.id = t.case_id WHERE {where} ORDER BY t.id",
            [at for _, at in bounds],
        )


class Pages:
    """On-call pages and their answers."""

    def __init__(self, store: Database):
        self.store = store

    def add(
        self,
        case_id: int,
        person: str,
        step: int,
        now: datetime,
        ack_by: datetime,
        command: tuple[str, ...] = (),
    ) -> None:
        """`command`: the page_command's arguments for this page, run once after the commit."""
        self.store.insert(
            "pages",
            {
                "case_id": case_id,
                "person": person,
                "step": step,
                "paged_at": iso(now),
                "ack_by": iso(ack_by),
                "command": json.dumps(command) if command else None,
                "command_state": "due" if command else None,
            },
        )

    def commands_due(self) -> list[dict]:
        return self.store.rows(
            "SELECT p.id, p.case_id, p.person, p.command, c.reference FROM pages p "
            "JOIN cases c ON c.id = p.case_id WHERE p.command_state = 'due' ORDER BY p.id"
        )

    def take_command(self, page_id: int) -> bool:
        """True once per page: its command runs once, whichever process (or node) gets it,
        and not again after a crash half-way (a gateway may have sent its message)."""
        return (
            self.store.execute(
                "UPDATE pages SET command_state = 'running' WHERE id = ? AND command_state = 'due'",
                [page_id],
            ).rowcount
            == 1
        )

    def command_done(self, page_id: int, failure: str | None) -> None:
        self.store.execute(
            "UPDATE pages SET command_state = ?, command_result = ? WHERE id = ?",
            ["failed" if failure else "ran", failure, page_id],
        )

    def ack(self, case_id: int, now: datetime) -> int:
        """Someone answered the case: its open pages are answered."""
        return self.store.execute(
            "UPDATE pages SET acked_at = ? WHERE case_id = ? AND acked_at IS NULL "
            "AND settled_at IS NULL",
            [iso(now), case_id],
        ).rowcount

    def unanswered(self, now: datetime) -> list[dict]:
        return self.store.rows(
            "SELECT * FROM pages WHERE settled_at IS NULL AND acked_at IS NULL AND ack_by <= ? "
            "ORDER BY ack_by, id",
            [iso(now)],
        )

    def settle(self, page_id: int, now: datetime) -> bool:
        """True once: a second sweep pages nobody again."""
        return (
            self.store.execute(
                "UPDATE pages SET settled_at = ? WHERE id = ? AND settled_at IS NULL "
                "AND acked_at IS NULL",
                [iso(now), page_id],
            ).rowcount
            == 1
        )

    def of_case(self, case_id: int) -> list[dict]:
        return self.store.rows("SELECT * FROM pages WHERE case_id = ? ORDER BY id", [case_id])


# -- a person's data (persons.py): engineers named by reminders, time and pages --


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    return {
        "reminders": mask_rows(store, person, "reminders", "id", ["recipient", "set_by"]),
        "time_spent": mask_rows(store, person, "time_spent", "id", ["engineer"]),
        "pages": mask_rows(store, person, "pages", "id", ["person", "command", "command_result"]),
    }


register(("reminders", "time_spent", "pages"), lambda store, person: Found(), _erase_person)
