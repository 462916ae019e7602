"""A person's data, found for an export and erased on request. Each store module that holds
personal data registers its own step here (`register`), so a table added later is covered by
the step its module adds beside it; `export` and `erase` run every registered step.

Erasure keeps rows and replaces the person's address and names in them by a stable pseudonym,
so counts, clocks and the report stay what they were."""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from helpdeskd.adapters.store.database import Database

ERASED = "[erased]"  # what is left of the person's own words


@dataclass(frozen=True)
class Person:
    address: str  # lower case
    names: tuple[str, ...] = ()  # display names seen with the address
    cases: tuple[int, ...] = ()  # ids of the cases they opened or took part in
    mail: tuple[int, ...] = ()  # spool ids of the messages they wrote

    @classmethod
    def of(cls, address: str, names: tuple[str, ...] = ()) -> Person:
        kept = {n.strip() for n in names if len(n.strip()) > 1 and "@" not in n}
        return cls(address.strip().lower(), tuple(sorted(kept, key=len, reverse=True)))

    @property
    def pseudonym(self) -> str:
        """The same for the same address on every run, so a second request finds the first's
        rows; it names nobody, as `invalid` is a domain that never exists."""
        return f"erased-{hashlib.sha256(self.address.encode()).hexdigest()[:16]}@invalid"

    @property
    def words(self) -> tuple[str, ...]:
        """What names the person in text: the address, then each name (longest first)."""
        return (self.address, *self.names)

    @cached_property  # compiled once, used on every row
    def replacements(self) -> list[tuple[re.Pattern, str]]:
        """(what names them, what takes its place): the pseudonym for the address, its
        local part for a name; each whole, never inside another address or word."""
        alias = self.pseudonym
        address = rf"(?<![\w.+-]){re.escape(self.address)}(?![\w-]|\.\w)"
        found = [(address, alias)] + [
            (rf"(?<!\w){re.escape(n)}(?!\w)", alias.partition("@")[0]) for n in self.names
        ]
        return [(re.compile(pattern, re.I), by) for pattern, by in found]

    def masked(self, text: str | None) -> str | None:
        """`text` with the address and names replaced, whatever their case."""
        for pattern, by in self.replacements if text else ():
            text = pattern.sub(by, text)
        return text

    def masked_bytes(self, raw: bytes) -> bytes:
        """Raw mail with the address and names replaced where they are written as they are
        (headers, plain text; an encoded part carries none that a reader could search)."""
        text = raw.decode("utf-8", "surrogateescape")  # every byte kept, whatever the charset
        return self.masked(text).encode("utf-8", "surrogateescape")

    def mentioned(self, text: str | None) -> bool:
        return bool(text) and any(pattern.search(text) for pattern, _ in self.replacements)

    def listed(self, addresses: str | None) -> bool:
        """Whether a JSON list of addresses holds the person's."""
        return self.address in [a.lower() for a in json.loads(addresses or "[]")]


@dataclass
class Found:
    """What a step found: JSON records by kind, and files (raw mail) by their archive name."""

    records: dict[str, list[dict]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def add(self, other: Found) -> None:
        for kind, rows in other.records.items():
            self.records.setdefault(kind, []).extend(rows)
        self.files.update(other.files)


@dataclass(frozen=True)
class Holding:
    tables: tuple[str, ...]  # what the step covers
    export: Callable[[Database, Person], Found]
    # changes the rows inside the caller's transaction; how many changed, by table
    erase: Callable[[Database, Person], dict[str, int]]


HOLDINGS: list[Holding] = []
# Tables that hold nothing about a person; any other table is covered by a step
NO_PERSONAL_DATA = frozenset(
    {"sequences", "imap_state", "heartbeats", "nodes", "leases", "api_tokens"}
)


def register(tables: tuple[str, ...], export: Callable, erase: Callable) -> None:
    HOLDINGS.append(Holding(tables, export, erase))


def export(store: Database, person: Person) -> Found:
    found = Found()
    for holding in HOLDINGS:
        found.add(holding.export(store, person))
    return found


class _DryRun(Exception):
    pass


def erase(store: Database, person: Person, *, dry_run: bool = False) -> dict[str, int]:
    """Every step in one transaction; with `dry_run` the same work, rolled back, so what it
    would change is counted exactly. Deleted and rewritten bytes are overwritten on disk."""
    done: dict[str, int] = {}
    try:
        with store.wiping(), store.transaction():
            for holding in HOLDINGS:
                for table, count in holding.erase(store, person).items():
                    done[table] = done.get(table, 0) + count
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return {table: count for table, count in done.items() if count}


def mask_rows(store: Database, person: Person, table: str, key: str, columns: list[str]) -> int:
    """Replace the person's address and names in these text columns of every row that holds
    them (a scan: erasure is rare, and a name can be anywhere in a text)."""
    keys = key.split(",")
    where = " OR ".join(f"lower({c}) LIKE ?" for c in columns for _ in person.words)
    params = [f"%{w.lower()}%" for _ in columns for w in person.words]
    rows = store.rows(f"SELECT {key}, {', '.join(columns)} FROM {table} WHERE {where}", params)
    changed = 0
    for row in rows:
        new = {c: person.masked(row[c]) for c in columns if person.mentioned(row[c])}
        if new:
            sets = ", ".join(f"{c} = ?" for c in new)
            match = " AND ".join(f"{k} = ?" for k in keys)
            store.execute(
                f"UPDATE {table} SET {sets} WHERE {match}",
                [*new.values(), *(row[k] for k in keys)],
            )
            changed += 1
    return changed


def plain(row: dict) -> dict:
    """A row for JSON: bytes columns left out (raw mail goes into files of its own)."""
    return {k: v for k, v in row.items() if not isinstance(v, bytes | memoryview)}


def find(store: Database, address: str, names: tuple[str, ...] = ()) -> Person:
    """The person at `address`, with the display names their mail shows and the cases they
    opened, are a contact or a participant of, or wrote or were sent a message in."""
    person = Person.of(address, names)
    seen = _display_names(store, person.address)
    like = f"%{_quoted(person.address)}%"
    rows = store.rows(
        "SELECT id FROM cases WHERE lower(opener) = ? OR lower(contacts) LIKE ? "
        "OR lower(participants) LIKE ? "
        "UNION SELECT case_id FROM messages WHERE case_id IS NOT NULL "
        "AND (lower(from_addr) = ? OR lower(to_addrs) LIKE ?)",
        [person.address, like, like, person.address, like],
    )
    mail = store.rows(
        "SELECT spool_id FROM messages WHERE spool_id IS NOT NULL AND lower(from_addr) = ?",
        [person.address],
    )
    found = Person.of(person.address, (*person.names, *seen))
    cases, spool_ids = sorted(r["id"] for r in rows), sorted(r["spool_id"] for r in mail)
    return Person(found.address, found.names, tuple(cases), tuple(spool_ids))


def _quoted(address: str) -> str:
    return json.dumps(address)  # as a JSON list holds it: no other address ends in it


def _display_names(store: Database, address: str) -> set[str]:
    """The names written beside the address in the headers of mail from or to it."""
    # spool.py registers its step here: imported when first used
    from helpdeskd.adapters.store.spool import HEAD_BYTES, head_of

    head = f"substr(raw, 1, {HEAD_BYTES}) AS raw"  # not the attachments
    rows = store.rows(
        f"SELECT {head} FROM spool WHERE lower(envelope_from) = ? UNION ALL "
        f"SELECT substr(s.raw, 1, {HEAD_BYTES}) AS raw FROM spool s "
        "JOIN messages m ON m.spool_id = s.id WHERE lower(m.from_addr) = ?",
        [address, address],
    )
    rows += store.rows(
        f"SELECT {head} FROM outbox WHERE lower(recipients) LIKE ?", [f"%{_quoted(address)}%"]
    )
    names = set()
    for row in rows:
        # purged mail is empty, and SQLite's substr() of an empty blob is NULL
        head = head_of(bytes(row["raw"] or b"")).decode("utf-8", "replace")
        message = email.message_from_string(head, policy=email.policy.default)
        values = [str(v) for h in ("from", "to", "cc", "reply-to") for v in message.get_all(h, [])]
        names |= {n for n, a in email.utils.getaddresses(values) if n and a.lower() == address}
    return names
