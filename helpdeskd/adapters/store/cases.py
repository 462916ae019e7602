"""Cases, their messages and history, the reference sequence, and the conversations the
loop breaker and the per-recipient limit look at."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso, parse_iso
from helpdeskd.adapters.store.persons import ERASED, Found, Person, mask_rows, register
from helpdeskd.model import CUSTOMER_THREAD, Case, Clock, Clocks

# The columns older versions kept the two clocks in, read for a case saved by one of them.
CLOCK_COLUMNS = {"first_response": "fr", "resolution": "res"}
CHUNK = 500  # case ids per query for their clocks


def case_row(case: Case, next_due: datetime | None) -> dict:
    return {
        "reference": case.reference,
        "status": case.status,
        "priority": case.priority,
        "customer": case.customer,
        "plan": case.plan,
        "subject": case.subject,
        "opener": case.opener,
        "contacts": json.dumps(list(case.contacts)),
        "assignee": case.assignee,
        "opened_at": iso(case.opened_at),
        "updated_at": iso(case.updated_at),
        "first_response_at": iso(case.first_response_at),
        "closed_at": iso(case.closed_at),
        "escalation_level": case.escalation_level,
        "related": case.related,
        "waiting_since": iso(case.waiting_since),
        "paused_minutes": case.paused_minutes,
        "notices": json.dumps(sorted(case.notices)),
        "next_due": iso(next_due),
        "tier": case.tier,
        "followers": json.dumps(list(case.followers)),
        "participants": json.dumps(list(case.participants)),
        "merged_into": case.merged_into,
        "category": case.category,
    }


def clock_row(case_id: int, ordinal: int, clock: Clock) -> dict:
    return {
        "case_id": case_id,
        "name": clock.name,
        "ordinal": ordinal,
        "target": clock.target,
        "calendar": clock.calendar,
        "starts": clock.starts,
        "stops": clock.stops,
        "started_at": iso(clock.started_at),
        "deadline": iso(clock.deadline),
        "warn_at": iso(clock.warn_at),
        "met_at": iso(clock.met_at),
        "paused_minutes": clock.paused_minutes,
        "agreed_by": clock.agreed_by,
        "agreed_at": iso(clock.agreed_at),
    }


def row_clock(row: dict) -> Clock:
    return Clock(
        row["name"],
        row["target"],
        row["calendar"],
        parse_iso(row["started_at"]),
        parse_iso(row["deadline"]),
        parse_iso(row["warn_at"]),
        parse_iso(row["met_at"]),
        starts=row["starts"],
        stops=row["stops"],
        paused_minutes=row["paused_minutes"] or 0,
        agreed_by=row["agreed_by"],
        agreed_at=parse_iso(row["agreed_at"]),
    )


def row_case(row: dict, clocks: list[dict] | None = None) -> Case:
    """A case from its row and its clock rows; a case last saved by an older version, with no
    clock rows, has its two clocks in the row's fr_/res_ columns."""
    return Case(
        id=row["id"],
        reference=row["reference"],
        status=row["status"],
        priority=row["priority"],
        plan=row["plan"],
        customer=row["customer"],
        subject=row["subject"],
        opener=row["opener"],
        opened_at=parse_iso(row["opened_at"]),
        updated_at=parse_iso(row["updated_at"]),
        contacts=tuple(json.loads(row["contacts"] or "[]")),
        assignee=row["assignee"],
        first_response_at=parse_iso(row["first_response_at"]),
        closed_at=parse_iso(row["closed_at"]),
        escalation_level=row["escalation_level"] or 0,
        related=row["related"],
        clocks=Clocks(tuple(row_clock(c) for c in clocks)) if clocks else _older_clocks(row),
        waiting_since=parse_iso(row["waiting_since"]),
        paused_minutes=row["paused_minutes"] or 0,
        notices=frozenset(json.loads(row["notices"] or "[]")),
        tier=row.get("tier"),
        followers=tuple(json.loads(row.get("followers") or "[]")),
        participants=tuple(json.loads(row.get("participants") or "[]")),
        merged_into=row.get("merged_into"),
        category=row.get("category"),
    )


def _older_clocks(row: dict) -> Clocks | None:
    if not row["fr_deadline"]:
        return None
    return Clocks(
        tuple(
            Clock(
                name,
                row[f"{p}_target"],
                row["clock_calendar"],
                parse_iso(row["opened_at"]),
                parse_iso(row[f"{p}_deadline"]),
                parse_iso(row[f"{p}_warn_at"]),
                parse_iso(row[f"{p}_met_at"]),
                stops="reply" if name == "first_response" else "resolved",
                paused_minutes=row["paused_minutes"] or 0,
            )
            for name, p in CLOCK_COLUMNS.items()
        )
    )


class Cases:
    """Cases, their messages and history, and the reference sequence."""

    def __init__(self, store: Database):
        self.store = store

    def next_reference(self, prefix: str, year: int) -> str:
        """The sequence never repeats: it lives in the same transaction as the case."""
        self.store.execute(
            "INSERT INTO sequences (prefix, year, last) VALUES (?, ?, 1) "
            "ON CONFLICT (prefix, year) DO UPDATE SET last = sequences.last + 1",
            [prefix, year],
        )
        last = self.store.row(
            "SELECT last FROM sequences WHERE prefix = ? AND year = ?", [prefix, year]
        )["last"]
        return f"{prefix}-{year}-{last:05d}"

    def save(self, case: Case, next_due: datetime | None) -> Case:
        row = case_row(case, next_due)
        if case.id is None:
            case = replace(case, id=self.store.insert("cases", row))
        else:
            columns = ", ".join(f"{column} = ?" for column in row)
            self.store.execute(f"UPDATE cases SET {columns} WHERE id = ?", [*row.values(), case.id])
            self.store.execute("DELETE FROM case_clocks WHERE case_id = ?", [case.id])
        for ordinal, clock in enumerate(case.clocks or ()):
            self.store.insert("case_clocks", clock_row(case.id, ordinal, clock))
        return case

    def _cases(self, rows: list[dict]) -> list[Case]:
        """Cases from their rows, their clocks read in a few queries."""
        clocks: dict[int, list[dict]] = {r["id"]: [] for r in rows}
        ids = list(clocks)
        for at in range(0, len(ids), CHUNK):
            chunk = ids[at : at + CHUNK]
            for c in self.store.rows(
                f"SELECT * FROM case_clocks WHERE case_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY case_id, ordinal",
                chunk,
            ):
                clocks[c["case_id"]].append(c)
        return [row_case(r, clocks[r["id"]]) for r in rows]

    def _case(self, row: dict | None) -> Case | None:
        return self._cases([row])[0] if row else None

    # Read inside a transaction, a case is that transaction's until it ends: a sweep on one
    # node and a reply on another change it one after the other, each seeing the other's work.
    def get(self, reference: str) -> Case | None:
        locked = self.store.dialect.for_update
        return self._case(
            self.store.row(f"SELECT * FROM cases WHERE reference = ?{locked}", [reference])
        )

    def by_id(self, case_id: int) -> Case:
        locked = self.store.dialect.for_update
        return self._case(self.store.row(f"SELECT * FROM cases WHERE id = ?{locked}", [case_id]))

    def by_message_ids(self, ids: tuple[str, ...]) -> tuple[Case, str] | None:
        """The case a message threads onto: the newest of its ids that we know wins."""
        for message_id in reversed(ids):
            row = self.store.row(
                "SELECT case_id FROM messages WHERE message_id = ? AND case_id IS NOT NULL "
                "ORDER BY id DESC LIMIT 1",
                [message_id],
            )
            if row:
                return self.by_id(row["case_id"]), message_id
        return None

    def new_cases_since(self, opener: str, since: datetime) -> int:
        return self.store.count("cases", "opener = ? AND opened_at >= ?", [opener, iso(since)])

    def add_message(self, row: dict) -> int:
        return self.store.insert("messages", row)

    def add_event(self, case_id: int, at: datetime, kind: str, detail: str) -> None:
        self.store.insert(
            "events", {"case_id": case_id, "at": iso(at), "kind": kind, "detail": detail}
        )

    def thread_ids(self, case_id: int) -> list[str]:
        """Message-IDs of the conversation, oldest first, for In-Reply-To and References."""
        kinds = sorted(CUSTOMER_THREAD)
        rows = self.store.rows(
            "SELECT message_id FROM messages WHERE case_id = ? AND message_id IS NOT NULL "
            f"AND kind IN ({', '.join('?' * len(kinds))}) ORDER BY id",
            [case_id, *kinds],
        )
        return [r["message_id"] for r in rows]

    def mark_bounced(self, message_ids: tuple[str, ...]) -> list[int]:
        """Our outgoing messages that came back undeliverable; returns their case ids."""
        cases = []
        for message_id in message_ids:
            for row in self.store.rows(
                "SELECT id, case_id FROM messages WHERE message_id = ? AND direction = 'out'",
                [message_id],
            ):
                self.store.execute(
                    "UPDATE messages SET status = 'failed' WHERE id = ?", [row["id"]]
                )
                cases.append(row["case_id"])
        return cases

    def list(self, status: str | None = None, customer: str | None = None) -> list[Case]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if customer:
            where.append("customer = ?")
            params.append(customer)
        sql = "SELECT * FROM cases" + (" WHERE " + " AND ".join(where) if where else "")
        return self._cases(self.store.rows(sql + " ORDER BY id", params))

    def opened_between(self, since: datetime | None, until: datetime | None) -> list[Case]:
        """Cases opened in [since, until); an end left None is open. Stored instants are UTC
        ISO strings of one form, so comparing the text compares the instants."""
        bounds = [
            (sql, iso(at)) for sql, at in (("opened_at >= ?", since), ("opened_at < ?", until))
        ]
        where = " AND ".join(sql for sql, at in bounds if at) or "1 = 1"
        params = [at for _, at in bounds if at]
        rows = self.store.rows(f"SELECT * FROM cases WHERE {where} ORDER BY id", params)
        return self._cases(rows)

    def opened_per_customer(self, since: datetime) -> tuple[dict[str, int], dict[str, str]]:
        """New cases per customer since `since`, and the plan each was served by: what fair
        use is judged on, counted by the database rather than read case by case."""
        rows = self.store.rows(
            "SELECT customer, MAX(plan) AS plan, COUNT(*) AS opened FROM cases "
            "WHERE opened_at >= ? AND customer IS NOT NULL GROUP BY customer",
            [iso(since)],
        )
        return {r["customer"]: r["opened"] for r in rows}, {r["customer"]: r["plan"] for r in rows}

    def last_mail_to_failed(self, address: str) -> bool:
        """Whether the last mail a case sent to `address` came back undeliverable."""
        row = self.store.row(
            "SELECT status FROM messages WHERE direction = 'out' AND to_addrs LIKE ? "
            "ORDER BY id DESC LIMIT 1",
            [f'%"{address}"%'],
        )
        return row is not None and row["status"] == "failed"

    def auto_reply_from_since(self, address: str, since: datetime) -> bool:
        """Whether `address` itself sent auto-generated mail (an out-of-office) since `since`."""
        row = self.store.row(
            "SELECT 1 FROM messages WHERE direction = 'in' AND kind = 'auto' AND from_addr = ? "
            "AND at >= ? LIMIT 1",
            [address, iso(since)],
        )
        return row is not None

    def any_opened_before(self, until: datetime) -> bool:
        """Cases go in by time, so the first rows answer this at once once there are some."""
        return (
            self.store.row("SELECT 1 FROM cases WHERE opened_at < ? LIMIT 1", [iso(until)])
            is not None
        )

    def closed_between(self, since: datetime, until: datetime) -> list[Case]:
        rows = self.store.rows(
            "SELECT * FROM cases WHERE closed_at >= ? AND closed_at < ? ORDER BY id",
            [iso(since), iso(until)],
        )
        return self._cases(rows)

    def messages(self, case_id: int) -> list[dict]:
        """With the entrance each inbound message came through (smtp, imap, ingest, web)."""
        return self.store.rows(
            "SELECT m.*, s.source AS entrance FROM messages m "
            "LEFT JOIN spool s ON s.id = m.spool_id WHERE m.case_id = ? ORDER BY m.id",
            [case_id],
        )

    def events(self, case_id: int) -> list[dict]:
        return self.store.rows("SELECT * FROM events WHERE case_id = ? ORDER BY id", [case_id])

    def unrouted(self) -> list[dict]:
        return self.store.rows(
            "SELECT id, at, from_addr, subject, kind, route_reason FROM "
            "messages WHERE case_id IS NULL ORDER BY id"
        )

    def due(self, now: datetime, limit: int | None = 1000) -> list[Case]:
        """The first `limit` cases due (all of them with None)."""
        sql = "SELECT * FROM cases WHERE next_due <= ? ORDER BY next_due"
        if limit is None:
            rows = self.store.rows(sql, [iso(now)])
        else:
            rows = self.store.rows(f"{sql} LIMIT ?", [iso(now), limit])
        return self._cases(rows)

    def customers(self) -> list[str]:
        """Every customer name on a case, former customers' too."""
        rows = self.store.rows("SELECT DISTINCT customer FROM cases WHERE customer IS NOT NULL")
        return [r["customer"] for r in rows]

    def of_customer(self, customer: str, limit: int = 500) -> list[Case]:
        rows = self.store.rows(
            "SELECT * FROM cases WHERE customer = ? ORDER BY id DESC LIMIT ?", [customer, limit]
        )
        return self._cases(rows)

    def of_person(self, address: str, limit: int = 500) -> list[Case]:
        """Cases `address` opened, or is a contact or participant of, newest first. The lists
        are JSON text: the address is looked for as JSON writes it, quotes included."""
        quoted = json.dumps(address)
        listed = "%" + re.sub(r"([%_\\])", r"\\\1", quoted) + "%"
        rows = self.store.rows(
            "SELECT * FROM cases WHERE opener = ? OR contacts LIKE ? ESCAPE '\\' "
            "OR participants LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
            [address, listed, listed, limit],
        )
        return self._cases(rows)

    def in_statuses(self, statuses: tuple[str, ...]) -> list[Case]:
        marks = ", ".join("?" * len(statuses))
        rows = self.store.rows(f"SELECT * FROM cases WHERE status IN ({marks})", list(statuses))
        return self._cases(rows)

    def message(self, case_id: int, message_id: int) -> dict | None:
        return self.store.row(
            "SELECT * FROM messages WHERE id = ? AND case_id = ?", [message_id, case_id]
        )


class Conversations:
    def __init__(self, store: Database):
        self.store = store

    def bodies_from(self, case_id: int, address: str, since: datetime, limit: int) -> list[str]:
        """The last `limit` texts one address wrote on one case since then, oldest first."""
        rows = self.store.rows(
            "SELECT body FROM messages WHERE case_id = ? AND direction = 'in' "
            "AND from_addr = ? AND at >= ? ORDER BY id DESC LIMIT ?",
            [case_id, address, iso(since), limit],
        )
        return [r["body"] or "" for r in reversed(rows)]

    def answers_mail_since(
        self, case_id: int, message_ids: tuple[str, ...], since: datetime
    ) -> bool:
        """Whether one of these Message-IDs is of mail we sent on the case since then."""
        if not message_ids:
            return False
        marks = ", ".join("?" * len(message_ids))
        return bool(
            self.store.row(
                "SELECT 1 FROM messages WHERE case_id = ? AND direction = 'out' AND at >= ? "
                f"AND message_id IN ({marks}) LIMIT 1",
                [case_id, iso(since), *message_ids],
            )
        )

    def last_event_at(self, case_id: int, kind: str) -> datetime | None:
        row = self.store.row(
            "SELECT at FROM events WHERE case_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
            [case_id, kind],
        )
        return parse_iso(row["at"]) if row else None

    def mail_sent(self, recipients: tuple[str, ...], now: datetime) -> None:
        self.store.executemany(
            "INSERT INTO mail_sent (recipient, at) VALUES (?, ?)",
            [(r, iso(now)) for r in recipients],
        )

    def mail_sent_since(self, recipient: str, since: datetime) -> int:
        return self.store.count("mail_sent", "recipient = ? AND at >= ?", [recipient, iso(since)])


# -- a person's data (persons.py): the cases they took part in, their messages and history --


def _export_person(store: Database, person: Person) -> Found:
    cases = store.rows_in("SELECT * FROM cases WHERE id IN ({marks})", [*person.cases])
    messages = [
        m
        for m in store.rows_in("SELECT * FROM messages WHERE case_id IN ({marks})", [*person.cases])
        if (m["from_addr"] or "").lower() == person.address or person.listed(m["to_addrs"])
    ]
    events = store.rows_in("SELECT * FROM events WHERE case_id IN ({marks})", [*person.cases])
    return Found({"cases": cases, "messages": messages, "events": events})


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """Their own words go; their address and names elsewhere become the pseudonym."""
    own = store.execute(
        "UPDATE messages SET body = ?, elided = NULL, attachments = ? WHERE lower(from_addr) = ?",
        [ERASED, "[]", person.address],
    ).rowcount
    return {
        "messages (their words)": own,
        "cases": mask_rows(store, person, "cases", "id", CASE_TEXT),
        "messages": mask_rows(store, person, "messages", "id", MESSAGE_TEXT),
        "events": mask_rows(store, person, "events", "id", ["detail"]),
        "case_clocks": mask_rows(store, person, "case_clocks", "case_id,name", ["agreed_by"]),
    }


CASE_TEXT = ["subject", "opener", "contacts", "participants", "assignee", "followers"]
MESSAGE_TEXT = ["from_addr", "to_addrs", "subject", "body", "elided", "attachments"]
MESSAGE_TEXT += ["auth", "route_reason"]
register(("cases", "messages", "events", "case_clocks"), _export_person, _erase_person)
