"""A database at ten years' volume: a million cases, each with its history, to measure intake,
the sweep and memory at scale.

    .venv/bin/python -m bench.million_seed DIR [--cases 1000000] [--due 1000]
        [--body-bytes 1000] [--raw-bytes 1500]

Writes DIR/helpdesk.db (migrated by the daemon's own code) and DIR/helpdeskd.toml (the sweep
bench's configuration). The cases are the sweep bench's shapes (`bench/sweep_bench.py`: the
first `--due` of them due at its Monday 11:00, the others not); each gets the history such a
case has in real life: the customer's mail, the acknowledgement and the engineers'
notification, both sent, with their outbox rows (raw kept) and the automatic-mail ledger.
Bulk inserts in large transactions with `synchronous=OFF`: this builds a fixture, it is not
the daemon's write path. See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from bench.sweep_bench import rows, write_config
from helpdeskd import config as configuration
from helpdeskd.adapters.store import Store

CHUNK = 20_000


def history(case_id: int, case: dict, body: str, raw: bytes):
    """The inbound message, and per outgoing mail its outbox row, message row and ledger row."""
    opener, at, reference = case["opener"], case["opened_at"], case["reference"]
    inbound = (case_id, "in", "customer", opener, '["support@helpdesk.test"]', case["subject"])
    yield "in", (*inbound, at, f"cust.{case_id}@customer.example", body, "new case")
    for kind, to in (("acknowledgement", opener), ("notification", "alice@helpdesk.test")):
        message_id = f"{reference}.{kind[:4]}{case_id}@helpdesk.test"
        yield "out", (case_id, kind, message_id, json.dumps([to]), raw, at, to, body)


def build(folder: Path, total: int, due: int, body_bytes: int, raw_bytes: int) -> None:
    config = configuration.load(write_config(folder))
    store = Store.open(config.helpdesk.database)
    db = store.db.conn
    db.execute("PRAGMA synchronous=OFF")
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40
    body, raw = filler[:body_bytes], (filler * 2).encode()[:raw_bytes]
    case_rows = rows(config, total, due)
    next_id = 1
    while chunk := list(itertools.islice(case_rows, CHUNK)):
        db.execute("BEGIN")
        store.db["cases"].insert_all(chunk, batch_size=2000)
        for case_id, case in enumerate(chunk, start=next_id):
            for kind, values in history(case_id, case, body, raw):
                insert(db, kind, values)
        db.execute("COMMIT")
        next_id += len(chunk)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()


def insert(db, kind: str, values: tuple) -> None:
    if kind == "in":
        db.execute(
            "INSERT INTO messages (case_id, direction, kind, from_addr, to_addrs, subject, at, "
            "message_id, body, route_reason, attachments) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]')",
            values,
        )
        return
    case_id, mail_kind, message_id, recipients, raw, at, to, body = values
    outbox_id = db.execute(
        "INSERT INTO outbox (case_id, kind, message_id, mail_from, recipients, raw, state, "
        "attempts, next_attempt_at, created_at, sent_at, automatic) VALUES "
        "(?, ?, ?, '', ?, ?, 'sent', 1, ?, ?, ?, 1)",
        [case_id, mail_kind, message_id, recipients, raw, at, at, at],
    ).lastrowid
    db.execute(
        "INSERT INTO messages (case_id, direction, kind, from_addr, to_addrs, at, message_id, "
        "body, outbox_id, status) VALUES (?, 'out', ?, 'Bench Support <support@helpdesk.test>', "
        "?, ?, ?, ?, ?, 'sent')",
        [case_id, mail_kind, recipients, at, message_id, body, outbox_id],
    )
    db.execute("INSERT INTO auto_sent (recipient, at) VALUES (?, ?)", [to, at])


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("folder", type=Path, help="an empty folder for the database")
    args.add_argument("--cases", type=int, default=1_000_000)
    args.add_argument("--due", type=int, default=1_000, help="due at the sweep bench's NOW")
    args.add_argument("--body-bytes", type=int, default=1000, help="each message's text")
    args.add_argument("--raw-bytes", type=int, default=1500, help="each outbox row's raw mail")
    options = args.parse_args()
    options.folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    build(options.folder, options.cases, options.due, options.body_bytes, options.raw_bytes)
    size = (options.folder / "helpdesk.db").stat().st_size
    print(
        f"built {options.cases} cases with {3 * options.cases} messages and "
        f"{2 * options.cases} outbox rows in {time.perf_counter() - started:.0f} s "
        f"({size / 1e9:.1f} GB)"
    )


if __name__ == "__main__":
    main()
