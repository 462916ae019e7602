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
    # search: the full-text index over search_texts (built once, by its migration), the table
    # a query reads to use it, and a condition on its body: contains the parameter, any case
    search_schema: tuple[str, ...] = ()
    search_table: str = "search_texts"
    search_contains: str = "body LIKE ?"
    search_row: str = "s.id"  # a text's id as the index reads it: newest first, bounds
    # said before each search, in its transaction: a plan for the query's own words
    search_setup: str = ""
    # an index that catches up after the commit that adds texts (SearchIndex.catch_up), not
    # in it: what its migration makes of search_schema; a condition on search_texts s, the
    # texts it has yet to take (a search reads those directly); and the statements that take
    # them up to the id given. None of it where the index follows every write itself.
    search_lag_schema: tuple[str, ...] = ()
    search_tail: str = ""
    search_catch_up: tuple[str, ...] = ()


# SQLite's texts its search index has yet to take (search_lag_schema below)
_NOT_INDEXED_YET = "s.id > (SELECT upto FROM search_indexed)"

SQLITE = Dialect(
    name="sqlite",
    recipient_listed="EXISTS (SELECT 1 FROM json_each(outbox.recipients) WHERE value = ?)",
    column_types={int: "INTEGER", str: "TEXT", bytes: "BLOB", float: "FLOAT"},
    for_update="",
    skip_locked="",
    # FTS5's trigram tokenizer finds any run of three characters, so Japanese and Chinese words
    # too; LIKE on the FTS5 table reads that index (case-insensitive: case_sensitive 0)
    search_schema=(
        "CREATE VIRTUAL TABLE search_index USING fts5(body, case_id UNINDEXED, "
        "content='search_texts', content_rowid='id', tokenize='trigram')",
        "CREATE TRIGGER search_texts_added AFTER INSERT ON search_texts BEGIN "
        "INSERT INTO search_index (rowid, body, case_id) VALUES (new.id, new.body, new.case_id); "
        "END",
        "CREATE TRIGGER search_texts_removed AFTER DELETE ON search_texts BEGIN "
        "INSERT INTO search_index (search_index, rowid, body, case_id) "
        "VALUES ('delete', old.id, old.body, old.case_id); END",
    ),
    search_table="search_index",
    search_contains="body LIKE ?",
    # FTS5 reads its matches in rowid order, so a LIMIT (or a bound) stops it early
    search_row="s.rowid",
    # indexing a mail's texts cost 13% of the worker's time, in the transaction every
    # acknowledgement waits for: the index holds the texts up to search_indexed.upto (all of
    # them at the upgrade) and the worker indexes the rest when idle. The triggers keep it to
    # exactly those: an FTS5 'delete' of a text never indexed corrupts the index, and a text
    # written under an id at or below `upto` (a person's erasure writes texts back, a deleted
    # newest text's id is given again) is indexed at once.
    search_lag_schema=(
        "DROP TRIGGER search_texts_added",
        "DROP TRIGGER search_texts_removed",
        "CREATE TABLE search_indexed (upto INTEGER NOT NULL)",
        "INSERT INTO search_indexed (upto) SELECT coalesce(max(id), 0) FROM search_texts",
        "CREATE TRIGGER search_texts_added AFTER INSERT ON search_texts "
        "WHEN new.id <= (SELECT upto FROM search_indexed) BEGIN "
        "INSERT INTO search_index (rowid, body, case_id) VALUES (new.id, new.body, new.case_id); "
        "END",
        "CREATE TRIGGER search_texts_removed AFTER DELETE ON search_texts "
        "WHEN old.id <= (SELECT upto FROM search_indexed) BEGIN "
        "INSERT INTO search_index (search_index, rowid, body, case_id) "
        "VALUES ('delete', old.id, old.body, old.case_id); END",
    ),
    search_tail=_NOT_INDEXED_YET,
    search_catch_up=(
        "INSERT INTO search_index (rowid, body, case_id) SELECT s.id, s.body, s.case_id "
        f"FROM search_texts s WHERE {_NOT_INDEXED_YET} AND s.id <= ?",
        "UPDATE search_indexed SET upto = ?",
    ),
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
    # pg_trgm's GIN index answers ILIKE '%word%' from trigrams, as FTS5's does LIKE
    search_schema=(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE INDEX idx_search_texts_trigrams ON search_texts USING gin (body gin_trgm_ops)",
    ),
    search_table="search_texts",
    search_contains="body ILIKE ?",
    # a prepared search (psycopg prepares at the fifth run) may otherwise get one plan for any
    # word, and the plan that reads a common word's newest texts reads all of them for a rare
    # one; planned with its words, a rare word goes through the trigram index instead
    search_setup="SET LOCAL plan_cache_mode = force_custom_plan",
)
