"""SQLite through sqlite-utils: the only module that speaks SQL.

One `Store` per thread (SQLite connections are not shared between threads). WAL lets readers
run beside the writer. Inside the process every write goes through one lock per database file
(`write_lock`), so the SMTP listener, the IMAP pollers, the worker and the courier queue up in
Python instead of sleeping in SQLite's busy handler; the busy timeout is left for other
processes (`ingest`, the CLI).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from helpdeskd.core.parse import header_summary
from helpdeskd.model import CUSTOMER_THREAD, Case, Clock, Clocks

migrations = Migrations("helpdeskd")


class StoreUnavailable(Exception):
    """The database could not commit; the sender should retry later (SMTP 451, exit 75)."""


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@migrations()
def m001_spool(db: sqlite_utils.Database) -> None:
    db["spool"].create(
        {
            "id": int,
            "received_at": str,
            "source": str,
            "envelope_from": str,
            "recipients": str,
            "message_id": str,
            "dedup_key": str,
            "raw": bytes,
            "state": str,
            "attempts": int,
            "reason": str,
            "processed_at": str,
        },
        pk="id",
        not_null={"raw", "state", "dedup_key"},
        defaults={"state": "new", "attempts": 0},
    )
    db["spool"].create_index(["dedup_key"], unique=True)
    db["spool"].create_index(["state"])


@migrations()
def m002_cases(db: sqlite_utils.Database) -> None:
    db["sequences"].create({"prefix": str, "year": int, "last": int}, pk=("prefix", "year"))
    db["cases"].create(
        {
            "id": int,
            "reference": str,
            "status": str,
            "priority": str,
            "customer": str,
            "plan": str,
            "subject": str,
            "opener": str,
            "contacts": str,
            "assignee": str,
            "opened_at": str,
            "updated_at": str,
            "first_response_at": str,
            "closed_at": str,
            "escalation_level": int,
            "related": str,
        },
        pk="id",
        not_null={"reference", "status", "priority", "plan"},
        defaults={"escalation_level": 0},
    )
    db["cases"].create_index(["reference"], unique=True)
    db["cases"].create_index(["status"])
    db["messages"].create(
        {
            "id": int,
            "case_id": int,
            "direction": str,
            "kind": str,
            "from_addr": str,
            "to_addrs": str,
            "subject": str,
            "at": str,
            "message_id": str,
            "body": str,
            "elided": str,
            "attachments": str,
            "route_reason": str,
            "spool_id": int,
            "outbox_id": int,
            "status": str,
        },
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["messages"].create_index(["message_id"])
    db["messages"].create_index(["case_id"])
    db["events"].create(
        {"id": int, "case_id": int, "at": str, "kind": str, "detail": str},
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["events"].create_index(["case_id"])


@migrations()
def m003_outbox(db: sqlite_utils.Database) -> None:
    db["outbox"].create(
        {
            "id": int,
            "case_id": int,
            "kind": str,
            "message_id": str,
            "mail_from": str,
            "recipients": str,
            "raw": bytes,
            "state": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "automatic": int,
        },
        pk="id",
        not_null={"raw", "state"},
        defaults={"state": "queued", "attempts": 0},
    )
    db["outbox"].create_index(["state", "next_attempt_at"])
    db["outbox"].create_index(["created_at"])
    db["auto_sent"].create({"id": int, "recipient": str, "at": str}, pk="id")
    db["auto_sent"].create_index(["recipient", "at"])


@migrations()
def m004_imap(db: sqlite_utils.Database) -> None:
    db["imap_state"].create({"mailbox": str, "uidvalidity": int, "last_uid": int}, pk="mailbox")
    db["incidents"].create(
        {"key": str, "opened_at": str, "reported_at": str, "detail": str}, pk="key"
    )


@migrations()
def m005_clocks(db: sqlite_utils.Database) -> None:
    """SLA clocks as columns: the scheduler asks "what is due at now?" of one index."""
    cases = db["cases"]
    for column, kind in [
        ("fr_target", str),
        ("fr_deadline", str),
        ("fr_warn_at", str),
        ("fr_met_at", str),
        ("res_target", str),
        ("res_deadline", str),
        ("res_warn_at", str),
        ("res_met_at", str),
        ("clock_calendar", str),
        ("waiting_since", str),
        ("paused_minutes", int),
        ("notices", str),
        ("next_due", str),
    ]:
        cases.add_column(column, kind)
    cases.create_index(["next_due"])


@migrations()
def m006_spool_retry(db: sqlite_utils.Database) -> None:
    """A message that failed waits before its next try instead of burning its tries at once."""
    db["spool"].add_column("next_try_at", str)


@migrations()
def m007_mail_sent(db: sqlite_utils.Database) -> None:
    """Every mail to an outside address, not only automatic mail, counts against its limit."""
    db["mail_sent"].create({"id": int, "recipient": str, "at": str}, pk="id")
    db["mail_sent"].create_index(["recipient", "at"])


@migrations()
def m008_incident_alert(db: sqlite_utils.Database) -> None:
    """Which outbox message reported an incident: its "resolved" notice goes only after it."""
    db["incidents"].add_column("alert_outbox_id", int)


@migrations()
def m009_heartbeats(db: sqlite_utils.Database) -> None:
    """When the daemon last did each periodic job (the sweep, a mailbox poll), for `status`."""
    db["heartbeats"].create({"name": str, "at": str}, pk="name")


@migrations()
def m010_sender_authentication(db: sqlite_utils.Database) -> None:
    """Who connected (for SPF) and what helpdeskd's own check found, kept with the raw mail;
    each inbound message keeps the results `show` prints."""
    for column in ("peer_ip", "helo", "auth_results"):
        db["spool"].add_column(column, str)
    db["messages"].add_column("auth", str)


@migrations()
def m011_customer_service(db: sqlite_utils.Database) -> None:
    """Satisfaction ratings, one per case; and mail that goes once per key (a monthly report,
    the forward of an unauthorised sender's mail), recorded so it never goes twice."""
    db["ratings"].create(
        {"case_id": int, "score": int, "comment": str, "by_addr": str, "at": str},
        pk="case_id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["ratings"].create_index(["at"])
    db["sent_once"].create({"key": str, "at": str}, pk="key")


@migrations()
def m012_hot_path_indexes(db: sqlite_utils.Database) -> None:
    """Each delivery marks its message by `outbox_id`, and every new mail counts its sender's
    recent cases: without these both scan tables that grow by the year."""
    db["messages"].create_index(["outbox_id"])
    db["cases"].create_index(["opener", "opened_at"])


@migrations()
def m013_status_page(db: sqlite_utils.Database) -> None:
    """Sign-in links are kept as hashes: a copy of the database signs nobody in."""
    db["web_links"].create(
        {"token_hash": str, "address": str, "created_at": str, "expires_at": str, "used_at": str},
        pk="token_hash",
    )
    db["web_requests"].create({"id": int, "key": str, "at": str}, pk="id")
    db["web_requests"].create_index(["key", "at"])
    db["web_requests"].create_index(["at"])  # forgetting old counts reads no more than those
    db["web_links"].create_index(["expires_at"])
    # the status page lists a customer's cases (a contact's own use opener, opened_at)
    db["cases"].create_index(["customer"])


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


_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(path: Path | str) -> threading.RLock:
    """The process's one lock for writing to the database at `path`. Re-entrant, so a thread
    that opens a second connection while it writes gets SQLite's own busy error, as before,
    rather than a deadlock."""
    if str(path) == ":memory:":
        return threading.RLock()  # a private database: nobody to share with
    key = str(Path(path).resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


class Store:
    # How long a writer waits for another process before giving up: the SMTP client is then
    # told 451 and retries, which is better than holding its connection.
    BUSY_TIMEOUT = 5.0
    WAL_SIZE_LIMIT = 64 << 20
    # WAL frames left for the last checkpoint pass, which holds the write lock
    CHECKPOINT_TAIL = 256
    # ...and only once the WAL is this long (32 MiB): that pass costs a sync of the database
    # file, which every commit then waits for, so it comes every few seconds at most
    WAL_RESTART_FRAMES = 8192

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=self.BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a 250 promises the mail survives power loss
        self.db.execute("PRAGMA foreign_keys=ON")
        # a WAL that once grew (a long reader, a storm) is cut back when it starts over
        self.db.execute(f"PRAGMA journal_size_limit={self.WAL_SIZE_LIMIT}")
        self.lock = write_lock(path)
        self._depth = 0

    @classmethod
    def open(cls, path: Path | str) -> Store:
        store = cls(path)
        store.migrate()
        return store

    def migrate(self) -> None:
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def leave_checkpoints(self) -> Store:
        """This connection's commits stop copying the WAL into the database: on a large
        database a checkpoint takes hundreds of milliseconds, and it fell on whichever commit
        crossed the threshold, often one a 250 waited for. `checkpoint()` does it instead,
        from a thread of its own."""
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        return self

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database beside the writers (PASSIVE: no
        write lock, no waiting), then, once the WAL is long, the last few under the write
        lock: with no frame left behind, the next commit starts the WAL over from its
        beginning. Without that last pass, under a steady stream of commits the WAL never
        started over and grew by gigabytes."""
        for _ in range(3):
            _, frames, copied = self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames - copied <= self.CHECKPOINT_TAIL:
                break
        if frames >= self.WAL_RESTART_FRAMES:
            with self.lock:
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction, holding the process's write lock. A nested call is a savepoint of
        the outer one: when it fails, only its own writes are undone (a batch of messages
        committed together loses only the one that failed)."""
        if self._depth:
            savepoint = f"nested_{self._depth}"
            self.db.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                if self.db.conn.in_transaction:  # some errors end the whole transaction
                    self.db.execute(f"ROLLBACK TO {savepoint}")
                raise
            finally:
                self._depth -= 1
                if self.db.conn.in_transaction:
                    self.db.execute(f"RELEASE {savepoint}")
            return
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
            finally:
                self._depth = 0

    def insert(self, table: str, row: dict) -> int:
        """A plain INSERT for the hot path (sqlite-utils adds a savepoint and introspection
        to each of its inserts); returns the new rowid."""
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        return self.db.execute(sql, list(row.values())).lastrowid

    def rows(self, sql: str, params: Any = ()) -> list[dict]:
        """The rows as dicts, read directly: sqlite-utils' `query` wraps every statement in a
        savepoint of its own, two more statements for each read on the hot path."""
        cursor = self.db.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def row(self, sql: str, params: Any = ()) -> dict | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def rows_in(self, sql: str, values: list) -> list[dict]:
        """`sql` with `{marks}` where the placeholders of `values` go, run on chunks of them:
        SQLite allows so many parameters a statement."""
        found: list[dict] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            found += self.rows(sql.format(marks=", ".join("?" * len(chunk))), chunk)
        return found

    def count(self, table: str, where: str, params: Any = ()) -> int:
        return self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]

    # -- spool ------------------------------------------------------------------------------

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
        except sqlite3.Error as exc:
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
        another process (the daemon's worker, an `ingest`) got there first."""
        cursor = self.db.execute(
            "UPDATE spool SET state = 'done', processed_at = ? WHERE id = ? AND state = 'new'",
            [iso(now), spool_id],
        )
        return cursor.rowcount == 1

    def authenticated(self, spool_id: int, raw: bytes, results: str) -> None:
        """The raw mail with helpdeskd's Authentication-Results on top, in the transaction
        that processes it: what was decided stays with the message."""
        self.db.execute(
            "UPDATE spool SET raw = ?, auth_results = ? WHERE id = ?", [raw, results, spool_id]
        )

    def failed_attempt(self, spool_id: int, reason: str, now: datetime, max_attempts: int) -> str:
        """Count a failed try and schedule the next one (1, 3, 9, 27 minutes later: time for a
        full disk or a bad template to be fixed); after `max_attempts` the message is
        quarantined. Returns the new state."""
        with self.transaction():
            attempts = self.row("SELECT attempts FROM spool WHERE id = ?", [spool_id])["attempts"]
            retry_at = now + timedelta(minutes=3**attempts)
            self.db.execute(
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
            cursor = self.db.execute(
                "UPDATE spool SET state = 'new', attempts = 0, next_try_at = NULL, "
                f"processed_at = NULL WHERE {where}",
                params,
            )
        return cursor.rowcount

    def quarantine(self, spool_id: int, reason: str, now: datetime) -> None:
        with self.transaction():
            self.db.execute(
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


class MailboxState:
    """Where an IMAP mailbox was left: UIDVALIDITY and the last UID spooled."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, mailbox: str) -> tuple[int, int] | None:
        row = self.store.row("SELECT * FROM imap_state WHERE mailbox = ?", [mailbox])
        return (row["uidvalidity"], row["last_uid"]) if row else None

    def set(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        with self.store.transaction():
            self.store.db["imap_state"].upsert(
                {"mailbox": mailbox, "uidvalidity": uidvalidity, "last_uid": last_uid},
                pk="mailbox",
            )


# -- cases ----------------------------------------------------------------------------------

CLOCK_COLUMNS = {"first_response": "fr", "resolution": "res"}


def case_row(case: Case, next_due: datetime | None) -> dict:
    row = {
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
    }
    for clock in case.clocks or ():
        prefix = CLOCK_COLUMNS[clock.name]
        row.update(
            {
                f"{prefix}_target": clock.target,
                f"{prefix}_deadline": iso(clock.deadline),
                f"{prefix}_warn_at": iso(clock.warn_at),
                f"{prefix}_met_at": iso(clock.met_at),
                "clock_calendar": clock.calendar,
            }
        )
    return row


def row_case(row: dict) -> Case:
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
        clocks=_row_clocks(row),
        waiting_since=parse_iso(row["waiting_since"]),
        paused_minutes=row["paused_minutes"] or 0,
        notices=frozenset(json.loads(row["notices"] or "[]")),
    )


def _row_clocks(row: dict) -> Clocks | None:
    if not row["fr_deadline"]:
        return None
    clocks = [
        Clock(
            name,
            row[f"{p}_target"],
            row["clock_calendar"],
            parse_iso(row["opened_at"]),
            parse_iso(row[f"{p}_deadline"]),
            parse_iso(row[f"{p}_warn_at"]),
            parse_iso(row[f"{p}_met_at"]),
        )
        for name, p in CLOCK_COLUMNS.items()
    ]
    return Clocks(*clocks)


class Cases:
    """Cases, their messages and history, and the reference sequence."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def next_reference(self, prefix: str, year: int) -> str:
        """The sequence never repeats: it lives in the same transaction as the case."""
        self.db.execute(
            "INSERT INTO sequences (prefix, year, last) VALUES (?, ?, 1) "
            "ON CONFLICT (prefix, year) DO UPDATE SET last = last + 1",
            [prefix, year],
        )
        last = self.store.row(
            "SELECT last FROM sequences WHERE prefix = ? AND year = ?", [prefix, year]
        )["last"]
        return f"{prefix}-{year}-{last:05d}"

    def save(self, case: Case, next_due: datetime | None) -> Case:
        row = case_row(case, next_due)
        if case.id is None:
            return replace(case, id=self.store.insert("cases", row))
        columns = ", ".join(f"{column} = ?" for column in row)
        self.db.execute(f"UPDATE cases SET {columns} WHERE id = ?", [*row.values(), case.id])
        return case

    def get(self, reference: str) -> Case | None:
        row = self.store.row("SELECT * FROM cases WHERE reference = ?", [reference])
        return row_case(row) if row else None

    def by_id(self, case_id: int) -> Case:
        return row_case(self.store.row("SELECT * FROM cases WHERE id = ?", [case_id]))

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
                self.db.execute("UPDATE messages SET status = 'failed' WHERE id = ?", [row["id"]])
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
        return [row_case(r) for r in self.store.rows(sql + " ORDER BY id", params)]

    def opened_between(self, since: datetime | None, until: datetime | None) -> list[Case]:
        """Cases opened in [since, until); an end left None is open. Stored instants are UTC
        ISO strings of one form, so comparing the text compares the instants."""
        bounds = [
            (sql, iso(at)) for sql, at in (("opened_at >= ?", since), ("opened_at < ?", until))
        ]
        where = " AND ".join(sql for sql, at in bounds if at) or "1"
        params = [at for _, at in bounds if at]
        rows = self.store.rows(f"SELECT * FROM cases WHERE {where} ORDER BY id", params)
        return [row_case(r) for r in rows]

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
        return [row_case(r) for r in rows]

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

    def due(self, now: datetime, limit: int = 1000) -> list[Case]:
        rows = self.store.rows(
            "SELECT * FROM cases WHERE next_due <= ? ORDER BY next_due LIMIT ?", [iso(now), limit]
        )
        return [row_case(r) for r in rows]

    def customers(self) -> list[str]:
        """Every customer name on a case, former customers' too."""
        rows = self.store.rows("SELECT DISTINCT customer FROM cases WHERE customer IS NOT NULL")
        return [r["customer"] for r in rows]

    def of_customer(self, customer: str, limit: int = 500) -> list[Case]:
        rows = self.store.rows(
            "SELECT * FROM cases WHERE customer = ? ORDER BY id DESC LIMIT ?", [customer, limit]
        )
        return [row_case(r) for r in rows]

    def opened_by(self, address: str, limit: int = 500) -> list[Case]:
        rows = self.store.rows(
            "SELECT * FROM cases WHERE opener = ? ORDER BY id DESC LIMIT ?", [address, limit]
        )
        return [row_case(r) for r in rows]

    def in_statuses(self, statuses: tuple[str, ...]) -> list[Case]:
        marks = ", ".join("?" * len(statuses))
        rows = self.store.rows(f"SELECT * FROM cases WHERE status IN ({marks})", list(statuses))
        return [row_case(r) for r in rows]

    def message(self, case_id: int, message_id: int) -> dict | None:
        return self.store.row(
            "SELECT * FROM messages WHERE id = ? AND case_id = ?", [message_id, case_id]
        )


# -- outbox ---------------------------------------------------------------------------------


# Mail to [helpdesk] admins about the daemon's own trouble: sent before any other.
ADMIN_KINDS = ("admin_alert", "admin_recovered")
ADMIN_KINDS_SQL = "(" + ", ".join(f"'{k}'" for k in ADMIN_KINDS) + ")"


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

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

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
                "kind = ? AND created_at >= ? AND EXISTS "
                "(SELECT 1 FROM json_each(outbox.recipients) WHERE value = ?)",
                [kind, iso(since), recipient],
            )
        )

    def automatic_sent_since(self, recipient: str, since: datetime) -> int:
        return self.store.count("auto_sent", "recipient = ? AND at >= ?", [recipient, iso(since)])

    def due(self, now: datetime, limit: int = 100) -> list[Queued]:
        """Oldest first, but admin alerts before everything: a backlog must not delay them."""
        rows = self.store.rows(
            "SELECT * FROM outbox WHERE state = 'queued' AND next_attempt_at <= ? "
            f"ORDER BY kind NOT IN {ADMIN_KINDS_SQL}, id LIMIT ?",
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

    def claim(self, outbox_id: int, now: datetime, until: datetime) -> bool:
        """Take a due message for delivery until `until`: a second process flushing at the same
        time skips it, and a crash mid-delivery only delays it to `until`."""
        with self.store.transaction():
            cursor = self.db.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND state = 'queued' "
                "AND next_attempt_at <= ?",
                [iso(until), outbox_id, iso(now)],
            )
        return cursor.rowcount == 1

    def sent(self, outbox_id: int, now: datetime) -> None:
        with self.store.transaction():
            self.db.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                [iso(now), outbox_id],
            )
            self.db.execute("UPDATE messages SET status = 'sent' WHERE outbox_id = ?", [outbox_id])

    def retry(
        self, outbox_id: int, error: str, at: datetime, recipients: tuple[str, ...] | None = None
    ) -> None:
        """Try again at `at`; to `recipients` only, when the relay took the others already."""
        with self.store.transaction():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ?, recipients = coalesce(?, recipients) WHERE id = ?",
                [error, iso(at), json.dumps(list(recipients)) if recipients else None, outbox_id],
            )

    def give_up(self, outbox_id: int, error: str) -> None:
        with self.store.transaction():
            self.db.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, "
                "last_error = ? WHERE id = ?",
                [error, outbox_id],
            )
            self.db.execute(
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
        cursor = self.db.execute(
            "UPDATE outbox SET state = 'cancelled', last_error = ? "
            "WHERE id = ? AND state = 'queued'",
            [why, outbox_id],
        )
        return cursor.rowcount == 1

    def sent_by(self, outbox_id: int, route: str, now: datetime) -> None:
        """Delivered by another route than the outbound transport (an admin alert)."""
        self.sent(outbox_id, now)
        self.db.execute(
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
        cursor = self.db.execute(
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
            self.db.execute(
                f"UPDATE messages SET status = 'queued' WHERE outbox_id IN ({failed})", outbox_ids
            )
            cursor = self.db.execute(
                f"UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = ? "
                f"WHERE id IN ({failed})",
                [iso(now), *outbox_ids],
            )
        return cursor.rowcount

    def drop(self, outbox_ids: list[int]) -> int:
        """Unsent mail removed for good; the case's history keeps it, marked dropped."""
        marks = ", ".join("?" * len(outbox_ids))
        with self.store.transaction():
            self.db.execute(
                f"UPDATE messages SET status = 'dropped' WHERE outbox_id IN ({marks})", outbox_ids
            )
            cursor = self.db.execute(
                f"DELETE FROM outbox WHERE state != 'sent' AND id IN ({marks})", outbox_ids
            )
        return cursor.rowcount


# -- operational incidents, reported to admins once each --------------------------------------


class Incidents:
    def __init__(self, store: Store):
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
            self.store.db["incidents"].delete(key)
        return found is not None

    def reported_by(self, key: str, outbox_id: int) -> None:
        self.store.db["incidents"].update(key, {"alert_outbox_id": outbox_id})

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
        self.store.db.execute(
            "DELETE FROM incidents WHERE key LIKE ? AND key < ?", [f"{prefix}%", current]
        )


# -- conversations: the loop breaker's and the per-recipient limit's view ----------------------


class Conversations:
    def __init__(self, store: Store):
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
        self.store.db.conn.executemany(
            "INSERT INTO mail_sent (recipient, at) VALUES (?, ?)",
            [(r, iso(now)) for r in recipients],
        )

    def mail_sent_since(self, recipient: str, since: datetime) -> int:
        return self.store.count("mail_sent", "recipient = ? AND at >= ?", [recipient, iso(since)])


# -- operations: heartbeats, health figures, retention, backup -------------------------------

OPEN_STATUSES = ("new", "open", "waiting", "resolved")


class Heartbeats:
    def __init__(self, store: Store):
        self.store = store

    def stamp(self, name: str, now: datetime) -> None:
        self.store.db.execute(
            "INSERT INTO heartbeats (name, at) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET at = excluded.at",
            [name, iso(now)],
        )

    def all(self) -> dict[str, datetime]:
        return {r["name"]: parse_iso(r["at"]) for r in self.store.rows("SELECT * FROM heartbeats")}


class Figures:
    """Counts for `status` and the metrics endpoint; each one query on an index."""

    def __init__(self, store: Store):
        self.store = store

    def spool_backlog(self) -> tuple[int, datetime | None]:
        row = self.store.row(
            "SELECT count(*) AS n, min(received_at) AS oldest FROM spool WHERE state = 'new'"
        )
        return row["n"], parse_iso(row["oldest"])

    def outbox_backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Queued mail, and since when the oldest of it that is due has waited."""
        count = self.store.count("outbox", "state = 'queued'")
        row = self.store.row(
            "SELECT min(created_at) AS oldest FROM outbox WHERE state = 'queued' "
            "AND next_attempt_at <= ?",
            [iso(now)],
        )
        return count, parse_iso(row["oldest"])

    def dead_mail(self) -> dict[str, int]:
        return {
            "outbox_failed": self.store.count("outbox", "state = 'failed'"),
            "quarantined": self.store.count("spool", "state = 'quarantined'"),
        }

    def next_deadlines(self, limit: int = 5) -> list[dict]:
        return self.store.rows(
            "SELECT reference, status, priority, next_due FROM cases "
            "WHERE next_due IS NOT NULL ORDER BY next_due LIMIT ?",
            [limit],
        )

    def open_cases(self) -> list[dict]:
        marks = ", ".join("?" * len(OPEN_STATUSES))
        return self.store.rows(
            f"SELECT status, plan, count(*) AS n FROM cases WHERE status IN ({marks}) "
            "GROUP BY status, plan",
            list(OPEN_STATUSES),
        )


def purge_raw(store: Store, closed_before: datetime) -> dict[str, int]:
    """Empty the raw mail (attachments and all) of cases closed before `closed_before`: the
    inbound spool copies and the outbox copies already sent. Messages, events and clocks stay,
    so the case history and the report figures do not change."""
    old_cases = "SELECT id FROM cases WHERE status = 'closed' AND closed_at < :before"
    params = {"before": iso(closed_before)}
    with store.transaction():
        spool = store.db.execute(
            "UPDATE spool SET raw = x'' WHERE length(raw) > 0 AND id IN (SELECT spool_id FROM "
            f"messages WHERE spool_id IS NOT NULL AND case_id IN ({old_cases}))",
            params,
        ).rowcount
        sent = store.db.execute(
            "UPDATE outbox SET raw = x'' WHERE state = 'sent' AND length(raw) > 0 "
            f"AND case_id IN ({old_cases})",
            params,
        ).rowcount
    return {"spool": spool, "outbox": sent}


def backup_to(store: Store, dest: Path) -> str:
    """Copy the live database with SQLite's online backup API (consistent while others write:
    it restarts on a change made by another connection), then check the copy. Returns the
    copy's `PRAGMA integrity_check` answer, "ok" when sound."""
    target = sqlite3.connect(str(dest))
    try:
        # one step: a single read transaction, a snapshot that writers in WAL mode never block
        store.db.conn.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        return target.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        target.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# -- the customer's side: ratings and mail sent once ----------------------------------------


class Ratings:
    def __init__(self, store: Store):
        self.store = store

    def record(self, rating) -> None:
        """A `core.survey.Rating`, and a line in its case's history; a case's later rating
        replaces its earlier one. The one call for every way a rating comes in (mail, web)."""
        detail = f"{rating.score} of 5 by {rating.by}" + (
            " with a comment" if rating.comment else ""
        )
        Cases(self.store).add_event(rating.case_id, rating.at, "rating", detail)
        self.store.db["ratings"].upsert(
            {
                "case_id": rating.case_id,
                "score": rating.score,
                "comment": rating.comment,
                "by_addr": rating.by,
                "at": iso(rating.at),
            },
            pk="case_id",
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
    def __init__(self, store: Store):
        self.store = store

    def claim(self, key: str, now: datetime) -> bool:
        """True the first time a key is claimed; inside the transaction that queues the mail."""
        cursor = self.store.db.execute(
            "INSERT INTO sent_once (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            [key, iso(now)],
        )
        return cursor.rowcount == 1

    def sent(self, keys: list[str]) -> set[str]:
        """Those of the keys already claimed."""
        rows = self.store.rows_in("SELECT key FROM sent_once WHERE key IN ({marks})", keys)
        return {r["key"] for r in rows}


# -- the status page: single-use sign-in links and request counts ------------------------------


class SignIns:
    """Single-use sign-in links and the request counts that rate-limit them."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def issue(self, token_hash: str, address: str, now: datetime, expires: datetime) -> None:
        self.db["web_links"].insert(
            {
                "token_hash": token_hash,
                "address": address,
                "created_at": iso(now),
                "expires_at": iso(expires),
            }
        )

    def redeem(self, token_hash: str, now: datetime) -> str | None:
        """The address a link signs in, once: used or expired links give None."""
        with self.store.transaction():
            row = self.store.row(
                "SELECT address FROM web_links WHERE token_hash = ? AND used_at IS NULL "
                "AND expires_at > ?",
                [token_hash, iso(now)],
            )
            if row:
                self.db.execute(
                    "UPDATE web_links SET used_at = ? WHERE token_hash = ?", [iso(now), token_hash]
                )
        return row["address"] if row else None

    def count(self, key: str, since: datetime) -> int:
        return self.store.count("web_requests", "key = ? AND at >= ?", [key, iso(since)])

    def note(self, keys: list[str], now: datetime) -> None:
        self.db["web_requests"].insert_all([{"key": k, "at": iso(now)} for k in keys])

    def forget(self, before: datetime) -> None:
        """Old links and counts are of no use after their window."""
        self.db.execute("DELETE FROM web_links WHERE expires_at < ?", [iso(before)])
        self.db.execute("DELETE FROM web_requests WHERE at < ?", [iso(before)])


def raw_of(store: Store, message: dict) -> bytes | None:
    """The wire bytes behind a stored message (its spooled or sent copy), for attachments;
    None once purged."""
    if message.get("spool_id"):
        row = store.row("SELECT raw FROM spool WHERE id = ?", [message["spool_id"]])
    elif message.get("outbox_id"):
        row = store.row("SELECT raw FROM outbox WHERE id = ?", [message["outbox_id"]])
    else:
        return None
    return row["raw"] if row else None
