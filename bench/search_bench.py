"""`helpdeskd search` over 100,000 cases: the time of each query, on SQLite or PostgreSQL.

    .venv/bin/python -m bench.search_bench [--cases 100000] [--postgres]

Seeds cases with three indexed texts each (the opening mail, an engineer's reply and, for one
case in ten, an attached log): about 330,000 rows of 150-250 characters, English with a
Japanese case in twenty, written through the store's own search table so the index is built
as the daemon builds it (on SQLite, caught up after the seed's commit). Then runs each query
five times through the command's own code (`commands.search.find`) and prints the median and
the worst, with how many cases it found.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from argparse import Namespace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.intake_bench import database
from helpdeskd import config as configuration
from helpdeskd.adapters.store import SearchIndex, open_store
from helpdeskd.commands.search import find
from helpdeskd.core import search
from tests import support

WORDS = [
    "report",
    "export",
    "invoice",
    "login",
    "password",
    "printer",
    "network",
    "timeout",
    "server",
    "database",
    "backup",
    "upgrade",
    "license",
    "error",
    "warning",
    "crash",
    "slow",
    "page",
    "screen",
    "email",
    "calendar",
    "sync",
    "certificate",
    "proxy",
    "firewall",
    "disk",
    "memory",
    "queue",
    "invoice",
    "customer",
    "account",
    "billing",
    "order",
    "shipment",
]
JAPANESE = ["ログインできません", "認証エラーが出ます", "請求書が届きません", "印刷が遅いです"]
CUSTOMERS = ["Acme", "Globex", None]
QUERIES = [
    ("a rare word (10 cases)", ["kerberos"], {}),
    ("a common word", ["invoice"], {}),
    ("two common words", ["printer", "timeout"], {}),
    ("a word in attached logs only", ["segfault"], {}),
    ("a Japanese word", ["認証エラー"], {}),
    ("a common word, one customer", ["invoice"], {"customer": "acme.test"}),
    ("a common word, since a date", ["invoice"], {"since": date(2026, 4, 1)}),
    ("a word found nowhere", ["zyxwvut"], {}),
    ("a common word, since after all", ["invoice"], {"since": date(2026, 6, 1)}),
]


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def seed(store, cases: int) -> None:
    rng = random.Random(1)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    case_rows, texts = [], []
    for i in range(1, cases + 1):
        opened = (start + timedelta(minutes=7 * i)).isoformat()
        subject = text(rng, 4)
        case_rows.append(
            (i, f"HD-2026-{i:06d}", "open", "P3", "standard", CUSTOMERS[i % 3], subject,
             "x@acme.test", "[]", opened, opened)
        )  # fmt: skip
        body = rng.choice(JAPANESE) if i % 20 == 0 else text(rng, 30)
        body += " kerberos" if i % (cases // 10) == 0 else ""
        texts.append((i, "message", f"{subject}\n{body}"))
        texts.append((i, "message", text(rng, 25)))
        if i % 10 == 0:
            texts.append((i, "attachment", f"app.log\n{text(rng, 20)} segfault in worker"))
    with store.transaction():
        store.executemany(
            "INSERT INTO cases (id, reference, status, priority, plan, customer, subject, "
            "opener, contacts, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            case_rows,
        )
        store.executemany("INSERT INTO search_texts (case_id, part, body) VALUES (?, ?, ?)", texts)
    while SearchIndex(store).catch_up(5000):  # SQLite's index, as the idle daemon takes them
        pass
    print(f"seeded {cases} cases, {len(texts)} indexed texts")


def timed(store, config, words: list[str], filters: dict) -> tuple[list[float], int]:
    args = Namespace(**{"customer": None, "status": None, "since": None, "limit": 20, **filters})
    times, found = [], 0
    for _ in range(5):
        began = time.perf_counter()
        found = len(find(store, config, args, search.words(" ".join(words))))
        times.append(time.perf_counter() - began)
    return times, found


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--cases", type=int, default=100_000)
    args.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL")
    args.add_argument(
        "--unanalyzed",
        action="store_true",
        help="query before the planner has statistics (PostgreSQL: as before autovacuum runs)",
    )
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(Path(folder), options.postgres) as db:
        config = configuration.load(support.write_config(Path(folder)))
        store = open_store(db)
        began = time.perf_counter()
        seed(store, options.cases)
        if options.postgres and not options.unanalyzed:
            # as `helpdeskd migrate` leaves what it copied, and autovacuum a table within a
            # minute of growing by a tenth: the planner knows how common a word is
            store.execute("ANALYZE")
        print(f"seed and index: {time.perf_counter() - began:.1f} s")
        print(f"{'query':<32} {'cases':>5} {'median ms':>10} {'worst ms':>9}")
        for name, words, filters in QUERIES:
            times, found = timed(store, config, words, filters)
            median, worst = statistics.median(times) * 1000, max(times) * 1000
            print(f"{name:<32} {found:>5} {median:>10.1f} {worst:>9.1f}")


if __name__ == "__main__":
    main()
