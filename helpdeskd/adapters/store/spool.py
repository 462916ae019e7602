"""The spool: raw inbound mail, committed durably before any acknowledgement; each message
goes new -> done | quarantined. And the raw copies behind stored messages."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from helpdeskd.adapters.store.database import Database, StoreUnavailable, iso, parse_iso
from helpdeskd.adapters.store.persons import Found, Person, mask_rows, plain, register
from helpdeskd.core.parse import header_summary

BLANK_LINE = re.compile(rb"\r?\n\r?\n|\r\r")
MESSAGE_ID = re.compile(
    rb"(?:\A|[\r\n])message-id:[ \t]*(?:(?:\r\n|\r|\n)[ \t]+)?<?([^>\s]+)>?", re.I
)


def split_head(raw: bytes) -> tuple[bytes, bytes | None]:
    """The header block and the body, at the first blank line (CRLF, LF or CR-only mail)."""
    blank = BLANK_LINE.search(raw)
    return (raw[: blank.start()], raw[blank.end() :]) if blank else (raw, None)


def head_of(raw: bytes) -> bytes:
    """The header block alone, without copying the body."""
    blank = BLANK_LINE.search(raw)
    return raw[: blank.start()] if blank else raw


LINE_END = re.compile(rb"[ \t]*(\r\n|\r|\n)")
BLANK_BEFORE_LINE_END = (b" \r", b" \n", b"\t\r", b"\t\n")


def dedup_key(raw: bytes, message_id: str | None) -> str:
    """Message-ID plus a hash of the body: the same mail relayed twice (other Received
    headers, another mailbox) is one message; another mail reusing a Message-ID is not."""
    _, body = split_head(raw)
    content = body if body is not None and message_id else raw
    return f"{message_id or ''}|{hashlib.sha256(normalised_lines(content)).hexdigest()}"


def normalised_lines(content: bytes) -> bytes:
    """Line ends made LF and blanks at line ends dropped (relays differ in both). Most mail
    has no blank at a line end, and then two byte replacements do what the regex does at a
    fraction of its cost on megabytes of attachments."""
    if any(blank in content for blank in BLANK_BEFORE_LINE_END):
        return LINE_END.sub(b"\n", content).rstrip()
    return content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip()


def sniff_message_id(raw: bytes) -> str | None:
    """The Message-ID, read cheaply from the header block, without parsing MIME."""
    match = MESSAGE_ID.search(head_of(raw))
    return match.group(1).decode("ascii", "replace") if match else None


@dataclass(frozen=True)
class Arrival:
    """Raw mail as an entrance received it, before the spool commit."""

    raw: bytes
    source: str
    now: datetime
    envelope_from: str | None = None
    recipients: tuple[str, ...] = ()
    peer_ip: str | None = None  # the listener's client and its greeting, for SPF
    helo: str | None = None


@dataclass(frozen=True)
class SpoolItem:
    id: int
    raw: bytes
    source: str
    envelope_from: str | None
    recipients: tuple[str, ...]
    received_at: datetime
    attempts: int
    peer_ip: str | None = None  # the connecting client, when the listener took the mail
    helo: str | None = None


class Spool:
    """The spool's queries, part of every `Store`."""

    def spool(
        self,
        raw: bytes,
        *,
        source: str,
        now: datetime,
        envelope_from: str | None = None,
        recipients: tuple[str, ...] = (),
        peer_ip: str | None = None,
        helo: str | None = None,
    ) -> tuple[int, bool]:
        """Commit the raw bytes durably. Returns (spool id, True if new, False if a duplicate).

        Raises StoreUnavailable when the database cannot commit: the caller must not
        acknowledge the message then.
        """
        arrival = Arrival(raw, source, now, envelope_from, recipients, peer_ip, helo)
        return self.spool_all([arrival])[0]

    def spool_all(self, arrivals: list[Arrival]) -> list[tuple[int, bool]]:
        """Commit several arrivals in one transaction (one fsync for mail that came in
        together); one (spool id, new) per arrival. Raises StoreUnavailable for all of them:
        none may be acknowledged then."""
        keyed = [(a, sniff_message_id(a.raw)) for a in arrivals]
        keyed = [(a, message_id, dedup_key(a.raw, message_id)) for a, message_id in keyed]
        try:
            with self.transaction():
                return [self._spool_one(a, message_id, key) for a, message_id, key in keyed]
        except self.errors as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _spool_one(self, arrival: Arrival, message_id: str | None, key: str) -> tuple[int, bool]:
        known = self.row("SELECT id, state FROM spool WHERE dedup_key = ?", [key])
        if known and known["state"] == "quarantined":
            # delivering a quarantined message again is the admin's way to retry it
            return known["id"], self.requeue([known["id"]]) == 1
        if known:
            return known["id"], False
        row = {
            "received_at": iso(arrival.now),
            "source": arrival.source,
            "envelope_from": arrival.envelope_from,
            "recipients": json.dumps(list(arrival.recipients)),
            "message_id": message_id,
            "dedup_key": key,
            "raw": arrival.raw,
            "state": "new",
            "attempts": 0,
        }
        if arrival.peer_ip or arrival.helo:  # the listener's mail
            row |= {"peer_ip": arrival.peer_ip, "helo": arrival.helo}
        return self.insert("spool", row), True

    def pending(self, now: datetime | None = None, limit: int = 100) -> list[SpoolItem]:
        """New messages, oldest first; one that failed waits for its next try."""
        rows = self.rows(
            "SELECT * FROM spool WHERE state = 'new' AND (next_try_at IS NULL OR next_try_at <= ?)"
            " ORDER BY id LIMIT ?",
            [iso(now) or "9999", limit],
        )
        return [_spool_item(r) for r in rows]

    def spool_item(self, spool_id: int) -> SpoolItem | None:
        row = self.row("SELECT * FROM spool WHERE id = ?", [spool_id])
        return _spool_item(row) if row else None

    def claim(self, spool_id: int, now: datetime) -> bool:
        """Mark a new message done, inside the transaction that processes it. False when
        another process (the daemon's worker, an `ingest`, another node) got there first."""
        # a row another node's worker holds is passed over, not waited for: that worker
        # applies it, or, if it dies first, leaves it new for the next pass
        cursor = self.execute(
            "UPDATE spool SET state = 'done', processed_at = ? WHERE id = (SELECT id FROM spool "
            f"WHERE id = ? AND state = 'new'{self.dialect.skip_locked})",
            [iso(now), spool_id],
        )
        return cursor.rowcount == 1

    def authenticated(self, spool_id: int, raw: bytes, results: str) -> None:
        """The raw mail with helpdeskd's Authentication-Results on top, in the transaction
        that processes it: what was decided stays with the message."""
        self.execute(
            "UPDATE spool SET raw = ?, auth_results = ? WHERE id = ?", [raw, results, spool_id]
        )

    def failed_attempt(self, spool_id: int, reason: str, now: datetime, max_attempts: int) -> str:
        """Count a failed try and schedule the next one (1, 3, 9, 27 minutes later: time for a
        full disk or a bad template to be fixed); after `max_attempts` the message is
        quarantined. Returns the new state."""
        with self.transaction():
            attempts = self.row("SELECT attempts FROM spool WHERE id = ?", [spool_id])["attempts"]
            retry_at = now + timedelta(minutes=3**attempts)
            self.execute(
                "UPDATE spool SET attempts = attempts + 1, reason = ?, next_try_at = ? "
                "WHERE id = ?",
                [reason, iso(retry_at), spool_id],
            )
            if attempts + 1 >= max_attempts:
                self.quarantine(spool_id, reason, now)
                return "quarantined"
        return "new"

    def requeue(self, spool_ids: list[int] | None = None) -> int:
        """Quarantined messages back to the worker (all of them with None), once the cause is
        fixed; returns how many."""
        where, params = "state = 'quarantined'", []
        if spool_ids is not None:
            where += f" AND id IN ({', '.join('?' * len(spool_ids))})"
            params = list(spool_ids)
        with self.transaction():
            cursor = self.execute(
                "UPDATE spool SET state = 'new', attempts = 0, next_try_at = NULL, "
                f"processed_at = NULL WHERE {where}",
                params,
            )
        return cursor.rowcount

    def quarantine(self, spool_id: int, reason: str, now: datetime) -> None:
        with self.transaction():
            self.execute(
                "UPDATE spool SET state = 'quarantined', reason = ?, processed_at = ? "
                "WHERE id = ? AND state = 'new'",
                [reason, iso(now), spool_id],
            )

    def quarantined(self) -> list[dict]:
        """What an admin needs to decide on each: sender, subject, size, reason, when."""
        rows = self.rows(f"{QUARANTINED} WHERE state = 'quarantined' ORDER BY id")
        return [_quarantined(row) for row in rows]

    def quarantined_entry(self, spool_id: int) -> dict | None:
        row = self.row(f"{QUARANTINED} WHERE state = 'quarantined' AND id = ?", [spool_id])
        return _quarantined(row) if row else None


HEAD_BYTES = 64 * 1024  # enough for the header block of any mail worth reading
QUARANTINED = (
    "SELECT id, received_at, source, message_id, reason, envelope_from, length(raw) AS size, "
    f"substr(raw, 1, {HEAD_BYTES}) AS head FROM spool"
)


def _quarantined(row: dict) -> dict:
    sender, subject = header_summary(row.pop("head") or b"")
    envelope = row.pop("envelope_from")
    return {**row, "from": sender or envelope or "", "subject": subject}


def _spool_item(row: dict) -> SpoolItem:
    return SpoolItem(
        id=row["id"],
        raw=row["raw"],
        source=row["source"],
        envelope_from=row["envelope_from"],
        recipients=tuple(json.loads(row["recipients"] or "[]")),
        received_at=parse_iso(row["received_at"]),
        attempts=row["attempts"],
        peer_ip=row.get("peer_ip"),
        helo=row.get("helo"),
    )


def purge_raw(store: Database, closed_before: datetime) -> dict[str, int]:
    """Empty the raw mail (attachments and all) of cases closed before `closed_before`: the
    inbound spool copies and the outbox copies already sent. Messages, events and clocks stay,
    so the case history and the report figures do not change."""
    old_cases = "SELECT id FROM cases WHERE status = 'closed' AND closed_at < ?"
    before, empty = iso(closed_before), b""
    with store.transaction():
        spool = store.execute(
            "UPDATE spool SET raw = ? WHERE length(raw) > 0 AND id IN (SELECT spool_id FROM "
            f"messages WHERE spool_id IS NOT NULL AND case_id IN ({old_cases}))",
            [empty, before],
        ).rowcount
        sent = store.execute(
            "UPDATE outbox SET raw = ? WHERE state = 'sent' AND length(raw) > 0 "
            f"AND case_id IN ({old_cases})",
            [empty, before],
        ).rowcount
    return {"spool": spool, "outbox": sent}


def raw_of(store: Database, message: dict) -> bytes | None:
    """The wire bytes behind a stored message (its spooled or sent copy), for attachments;
    None once purged."""
    if message.get("spool_id"):
        row = store.row("SELECT raw FROM spool WHERE id = ?", [message["spool_id"]])
    elif message.get("outbox_id"):
        row = store.row("SELECT raw FROM outbox WHERE id = ?", [message["outbox_id"]])
    else:
        return None
    return row["raw"] if row else None


# -- a person's data (persons.py): the raw mail from them and the mail that names them --


def _raw_of_person(store: Database, person: Person) -> tuple[list[dict], list[dict]]:
    """(their own mail, other mail of their cases or addressed to them), with the raw."""
    own = store.rows("SELECT * FROM spool WHERE lower(envelope_from) = ?", [person.address])
    own += store.rows_in("SELECT * FROM spool WHERE id IN ({marks})", [*person.mail])
    own = list({r["id"]: r for r in own}.values())
    mine = {r["id"] for r in own}
    linked = store.rows_in(
        "SELECT * FROM spool WHERE id IN (SELECT spool_id FROM messages WHERE case_id IN "
        "({marks}))",
        [*person.cases],
    )
    listed = store.rows(
        "SELECT * FROM spool WHERE lower(recipients) LIKE ?", [f"%{json.dumps(person.address)}%"]
    )
    others = {r["id"]: r for r in linked + listed if r["id"] not in mine}
    return own, [r for r in others.values() if person.masked_bytes(bytes(r["raw"])) != r["raw"]]


def _export_person(store: Database, person: Person) -> Found:
    own, others = _raw_of_person(store, person)
    rows = sorted(own + others, key=lambda r: r["id"])
    files = {f"mail/inbound-{r['id']}.eml": bytes(r["raw"]) for r in rows if r["raw"]}
    return Found({"inbound_mail": [plain(r) for r in rows]}, files)


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """Their mail, attachments and all, is emptied; others' mail that names them is kept
    with the pseudonym written in its place."""
    own, others = _raw_of_person(store, person)
    for row in own:
        store.execute("UPDATE spool SET raw = ? WHERE id = ?", [b"", row["id"]])
    for row in others:
        raw = person.masked_bytes(bytes(row["raw"]))
        store.execute("UPDATE spool SET raw = ? WHERE id = ?", [raw, row["id"]])
    text = ["envelope_from", "recipients", "reason", "auth_results"]
    return {
        "spool (their mail emptied)": len(own),
        "spool (mail naming them)": len(others),
        "spool": mask_rows(store, person, "spool", "id", text),
    }


register(("spool",), _export_person, _erase_person)
