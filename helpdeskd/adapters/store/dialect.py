"""What the two databases spell differently: every query is written once, in SQLite's words,
and the few that differ take their words from the store's `dialect`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    # a condition: the JSON list of addresses in outbox.recipients holds the parameter
    recipient_listed: str
    # the column types of the migrations' Python types (sqlite-utils maps them for SQLite)
    column_types: dict[type, str]
    # after a SELECT inside a transaction: its rows stay this transaction's until it ends
    for_update: str
    # ...and rows another transaction holds are passed over rather than waited for: nodes
    # claiming from one queue each take their own (SQLite has one writer: nothing to skip)
    skip_locked: str


SQLITE = Dialect(
    name="sqlite",
    recipient_listed="EXISTS (SELECT 1 FROM json_each(outbox.recipients) WHERE value = ?)",
    column_types={int: "INTEGER", str: "TEXT", bytes: "BLOB", float: "FLOAT"},
    for_update="",
    skip_locked="",
)

POSTGRESQL = Dialect(
    name="postgresql",
    recipient_listed=(
        "EXISTS (SELECT 1 FROM jsonb_array_elements_text(outbox.recipients::jsonb) AS r(value) "
        "WHERE r.value = ?)"
    ),
    # byte order, as SQLite compares text: the stored instants are ISO strings compared as
    # text, and a locale's collation would put "9999" or a "+" elsewhere
    column_types={
        int: "BIGINT",
        str: 'TEXT COLLATE "C"',
        bytes: "BYTEA",
        float: "DOUBLE PRECISION",
    },
    for_update=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
)
