"""Outgoing mail, queued in the transaction of the change that caused it, and its
deliveries' states."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso
from helpdeskd.adapters.store.persons import Found, Person, mask_rows, plain, register

# Mail to [helpdesk] admins about the daemon's own trouble: sent before any other.
ADMIN_KINDS = ("admin_alert", "admin_recovered")
ADMIN_KINDS_SQL = "(" + ", ".join(f"'{k}'" for k in ADMIN_KINDS) + ")"
DELIVERIES = "sent"  # the journal of deliveries not yet recorded in the outbox


@dataclass(frozen=True)
class Queued:
    id: int
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    attempts: int
    kind: str
    case_id: int | None


class OutboxQueue:
    """Outgoing mail, written in the transaction of the change that caused it."""

    def __init__(self, store: Database):
        self.store = store

    def enqueue(
        self,
        *,
        case_id: int | None,
        kind: str,
        message_id: str,
        mail_from: str,
        recipients: tuple[str, ...],
        raw: bytes,
        automatic: bool,
        now: datetime,
    ) -> int:
        row = {
            "case_id": case_id,
            "kind": kind,
            "message_id": message_id,
            "mail_from": mail_from,
            "recipients": json.dumps(list(recipients)),
            "raw": raw,
            "state": "queued",
            "attempts": 0,
            "next_attempt_at": iso(now),
            "created_at": iso(now),
            "automatic": int(automatic),
        }
        outbox_id = self.store.insert("outbox", row)
        if automatic:
            for recipient in recipients:
                self.store.insert("auto_sent", {"recipient": recipient, "at": iso(now)})
        return outbox_id

    def kind_sent_since(self, kind: str, recipient: str, since: datetime) -> bool:
        """Whether mail of this kind was queued for this recipient since then."""
        return bool(
            self.store.count(
                "outbox",
                f"kind = ? AND created_at >= ? AND {self.store.dialect.recipient_listed}",
                [kind, iso(since), recipient],
            )
        )

    def automatic_sent_since(self, recipient: str, since: datetime) -> int:
        return self.store.count("auto_sent", "recipient = ? AND at >= ?", [recipient, iso(since)])

    def due(self, now: datetime, limit: int = 100) -> list[Queued]:
        """Oldest first, but admin alerts before everything (a backlog must not delay them),
        then acknowledgements: the reference number promised at once does not wait behind a
        notification forwarding a large attachment. An acknowledgement is its case's first
        mail, so no case's mail is reordered by it."""
        rows = self.store.rows(
            "SELECT * FROM outbox WHERE state = 'queued' AND next_attempt_at <= ? "
            f"ORDER BY kind NOT IN {ADMIN_KINDS_SQL}, kind <> 'acknowledgement', id LIMIT ?",
            [iso(now), limit],
        )
        return [
            Queued(
                r["id"],
                r["mail_from"],
                tuple(json.loads(r["recipients"])),
                r["raw"],
                r["attempts"],
                r["kind"],
                r["case_id"],
            )
            for r in rows
        ]

    def claim(
        self, outbox_id: int, now: datetime, until: datetime, owner: str | None = None
    ) -> bool:
        """Take a due message for delivery until `until`: a second process flushing at the same
        time (another node's courier too) skips it, and a crash mid-delivery delays it to
        `until` at most (a courier that restarts takes back what `owner`, its dead
        predecessor, held: `release`)."""
        with self.store.transaction():
            cursor = self.store.execute(
                "UPDATE outbox SET next_attempt_at = ?, leased_by = ? WHERE id = (SELECT id "
                "FROM outbox WHERE id = ? AND state = 'queued' AND next_attempt_at <= ?"
                f"{self.store.dialect.skip_locked})",
                [iso(until), owner, outbox_id, iso(now)],
            )
        return cursor.rowcount == 1

    def lease_holders(self) -> list[str]:
        """Who holds mail in hand for delivery now."""
        rows = self.store.rows(
            "SELECT DISTINCT leased_by FROM outbox WHERE state = 'queued' AND leased_by IS NOT NULL"
        )
        return [r["leased_by"] for r in rows]

    def release(self, owner: str, now: datetime) -> int:
        """What `owner` held is due at `now` again; returns how many messages."""
        with self.store.transaction():
            cursor = self.store.execute(
                "UPDATE outbox SET next_attempt_at = ?, leased_by = NULL "
                "WHERE state = 'queued' AND leased_by = ?",
                [iso(now), owner],
            )
        return cursor.rowcount

    def sent(self, outbox_id: int, now: datetime) -> None:
        with self.store.transaction():
            self._sent(outbox_id, iso(now))

    def _sent(self, outbox_id: int, at: str) -> None:
        """Once: a journal folded again after a fold that was killed changes nothing."""
        self.store.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "leased_by = NULL WHERE id = ? AND state <> 'sent'",
            [at, outbox_id],
        )
        self.store.execute("UPDATE messages SET status = 'sent' WHERE outbox_id = ?", [outbox_id])

    def delivered(self, outbox_id: int, now: datetime) -> None:
        """The relay took it: recorded at once, in the store's journal of deliveries if it
        has one (SQLite: journal.py), which `fold_deliveries` takes in as sent."""
        journal = self.store.journal(DELIVERIES)
        if journal is None:
            self.sent(outbox_id, now)
        else:
            journal.append(f"{outbox_id} {iso(now)}")

    def fold_deliveries(self) -> int:
        """The deliveries journaled so far, recorded as sent in one transaction; how many."""
        journal = self.store.journal(DELIVERIES)
        if journal is None:
            return 0
        with self.store.lock:  # one fold at a time, the journal's and the database's
            return journal.fold(self._fold)

    def _fold(self, lines: list[str]) -> None:
        with self.store.transaction():
            for line in lines:
                outbox_id, at = line.split(" ", 1)
                self._sent(int(outbox_id), at)

    def retry(
        self, outbox_id: int, error: str, at: datetime, recipients: tuple[str, ...] | None = None
    ) -> None:
        """Try again at `at`; to `recipients` only, when the relay took the others already."""
        with self.store.transaction():
            self.store.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, leased_by = NULL, "
                "next_attempt_at = ?, recipients = coalesce(?, recipients) WHERE id = ?",
                [error, iso(at), json.dumps(list(recipients)) if recipients else None, outbox_id],
            )

    def give_up(self, outbox_id: int, error: str) -> None:
        with self.store.transaction():
            self.store.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, "
                "last_error = ?, leased_by = NULL WHERE id = ?",
                [error, outbox_id],
            )
            self.store.execute(
                "UPDATE messages SET status = 'failed' WHERE outbox_id = ?", [outbox_id]
            )

    def newest(self, kind: str) -> int | None:
        """The last message of `kind` queued: inside a transaction, the one just queued."""
        row = self.store.row("SELECT max(id) AS id FROM outbox WHERE kind = ?", [kind])
        return row["id"] if row else None

    def state(self, outbox_id: int) -> str | None:
        row = self.store.row("SELECT state FROM outbox WHERE id = ?", [outbox_id])
        return row["state"] if row else None

    def last_error(self, outbox_id: int) -> str | None:
        row = self.store.row("SELECT last_error FROM outbox WHERE id = ?", [outbox_id])
        return row["last_error"] if row else None

    def cancel(self, outbox_id: int, why: str) -> bool:
        """Not to be sent after all, if it was not sent yet; True when it was cancelled."""
        cursor = self.store.execute(
            "UPDATE outbox SET state = 'cancelled', last_error = ? "
            "WHERE id = ? AND state = 'queued'",
            [why, outbox_id],
        )
        return cursor.rowcount == 1

    def sent_by(self, outbox_id: int, route: str, now: datetime) -> None:
        """Delivered by another route than the outbound transport (an admin alert)."""
        self.sent(outbox_id, now)
        self.store.execute(
            "UPDATE outbox SET last_error = ? WHERE id = ?", [f"sent by {route}", outbox_id]
        )

    def undelivered_alerts(self) -> list[dict]:
        return self.store.rows(
            "SELECT id, kind, state, attempts, created_at, last_error FROM outbox "
            f"WHERE kind IN {ADMIN_KINDS_SQL} AND state IN ('failed', 'cancelled') ORDER BY id"
        )

    def waiting(self) -> list[dict]:
        return self.store.rows(
            "SELECT o.id, o.kind, o.recipients, o.state, o.attempts, "
            "o.next_attempt_at, o.last_error, c.reference FROM outbox o "
            "LEFT JOIN cases c ON c.id = o.case_id WHERE o.state != 'sent' "
            "ORDER BY o.id"
        )

    # -- the admin's hand: `helpdeskd outbox --retry-now / --retry ID / --drop ID` ----------

    def states(self, outbox_ids: list[int]) -> dict[int, str]:
        """queued, sent or failed, for each id that exists."""
        rows = self.store.rows_in("SELECT id, state FROM outbox WHERE id IN ({marks})", outbox_ids)
        return {r["id"]: r["state"] for r in rows}

    def hasten(self, now: datetime, outbox_ids: list[int] | None = None) -> int:
        """Mail waiting out its back-off after a failed try is due at `now` (all of it with
        None). Mail not yet tried is left alone: it may be in the courier's hands."""
        where, params = "", []
        if outbox_ids is not None:
            where = f" AND id IN ({', '.join('?' * len(outbox_ids))})"
            params = list(outbox_ids)
        cursor = self.store.execute(
            "UPDATE outbox SET next_attempt_at = ? WHERE state = 'queued' AND attempts > 0 "
            f"AND next_attempt_at > ?{where}",
            [iso(now), iso(now), *params],
        )
        return cursor.rowcount

    def revive(self, outbox_ids: list[int], now: datetime) -> int:
        """Mail given up on is queued again with every try ahead of it."""
        marks = ", ".join("?" * len(outbox_ids))
        failed = f"SELECT id FROM outbox WHERE state = 'failed' AND id IN ({marks})"
        with self.store.transaction():
            self.store.execute(
                f"UPDATE messages SET status = 'queued' WHERE outbox_id IN ({failed})", outbox_ids
            )
            cursor = self.store.execute(
                f"UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = ? "
                f"WHERE id IN ({failed})",
                [iso(now), *outbox_ids],
            )
        return cursor.rowcount

    def drop(self, outbox_ids: list[int]) -> int:
        """Unsent mail removed for good; the case's history keeps it, marked dropped."""
        marks = ", ".join("?" * len(outbox_ids))
        with self.store.transaction():
            self.store.execute(
                f"UPDATE messages SET status = 'dropped' WHERE outbox_id IN ({marks})", outbox_ids
            )
            cursor = self.store.execute(
                f"DELETE FROM outbox WHERE state != 'sent' AND id IN ({marks})", outbox_ids
            )
        return cursor.rowcount


# -- a person's data (persons.py): the mail sent to them and the mail that names them --


def _raw_of_person(store: Database, person: Person) -> tuple[list[dict], list[dict]]:
    """(mail to them, other mail of their cases that names them), with the raw."""
    listed = f"%{json.dumps(person.address)}%"
    to_them = store.rows("SELECT * FROM outbox WHERE lower(recipients) LIKE ?", [listed])
    theirs = {r["id"] for r in to_them}
    linked = store.rows_in("SELECT * FROM outbox WHERE case_id IN ({marks})", [*person.cases])
    others = [
        r
        for r in linked
        if r["id"] not in theirs and person.masked_bytes(bytes(r["raw"])) != bytes(r["raw"])
    ]
    return to_them, others


def _export_person(store: Database, person: Person) -> Found:
    to_them, _ = _raw_of_person(store, person)
    files = {f"mail/outbound-{r['id']}.eml": bytes(r["raw"]) for r in to_them if r["raw"]}
    return Found({"outbound_mail": [plain(r) for r in to_them]}, files)


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """Mail to them is emptied (what still waited is cancelled: it must not go now); the
    team's mail that names them keeps the pseudonym in its place."""
    to_them, others = _raw_of_person(store, person)
    for row in to_them:
        store.execute(
            "UPDATE outbox SET raw = ?, state = CASE WHEN state = 'queued' THEN 'cancelled' "
            "ELSE state END WHERE id = ?",
            [b"", row["id"]],
        )
    for row in others:
        raw = person.masked_bytes(bytes(row["raw"]))
        store.execute("UPDATE outbox SET raw = ? WHERE id = ?", [raw, row["id"]])
    text = ["mail_from", "recipients", "last_error"]
    return {
        "outbox (mail to them emptied)": len(to_them),
        "outbox (mail naming them)": len(others),
        "outbox": mask_rows(store, person, "outbox", "id", text),
        "auto_sent": mask_rows(store, person, "auto_sent", "id", ["recipient"]),
        "mail_sent": mask_rows(store, person, "mail_sent", "id", ["recipient"]),
    }


register(("outbox", "auto_sent", "mail_sent"), _export_person, _erase_person)
