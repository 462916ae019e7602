"""A mail storm against the running daemon: how fast the SMTP listener answers 250 (the spool
commit) and how fast the worker turns spooled mail into cases.

    .venv/bin/python -m bench.intake_bench               # 1,000 mails over 4 connections
    .venv/bin/python -m bench.intake_bench --mails 5000 --connections 8
    .venv/bin/python -m bench.intake_bench --postgres    # the same on a throwaway PostgreSQL

Everything runs on 127.0.0.1: the daemon as a subprocess on a free port, outgoing mail written
to a Maildir in a temporary folder. See bench/README.md for what it printed.
"""

from __future__ import annotations

import argparse
import contextlib
import smtplib
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from helpdeskd.adapters.store import open_store
from tests import support
from tests.support import Daemon, free_port, mail, write_config


def storm(port: int, mails: int, connections: int) -> float:
    """Send `mails` over `connections` parallel SMTP sessions; seconds until the last 250."""
    per_connection = mails // connections

    def sender(worker: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            for n in range(per_connection):
                body = f"Storm mail {worker}-{n}.\n" + "Some log output line.\n" * 40
                smtp.send_message(mail(f"user{worker}-{n}@acme.test", f"Storm {worker}-{n}", body))

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def wait_processed(database: Path | str, expected: int, timeout: float = 900) -> float:
    """Seconds until the worker has turned every spooled mail into its case."""
    started = time.perf_counter()
    store = open_store(database, migrate=False)
    while time.perf_counter() - started < timeout:
        done = store.count("spool", "state != 'new'")
        if done >= expected:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise TimeoutError(f"only {done} of {expected} processed")


@contextlib.contextmanager
def database(folder: Path, postgres: bool) -> Iterator[Path | str]:
    """The SQLite file in `folder`, or a database on a throwaway PostgreSQL cluster (the
    tests' own, tests/postgres.py, with fsync on: every 250 waits for the disk, as on SQLite)."""
    if not postgres:
        yield folder / "helpdesk.db"
        return
    from tests.postgres import running_cluster

    with running_cluster(fsync=True) as cluster:
        support.DATABASE = cluster.url(cluster.database())
        yield support.DATABASE


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--mails", type=int, default=1000)
    args.add_argument("--connections", type=int, default=4)
    args.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL")
    options = args.parse_args()
    mails = options.mails - options.mails % options.connections
    with tempfile.TemporaryDirectory() as folder, database(Path(folder), options.postgres) as db:
        port = free_port()
        config = write_config(Path(folder), smtp_port=port, auto_limit=1_000_000)
        with Daemon(config, port):
            sent = storm(port, mails, options.connections)
            print(
                f"{mails} mails accepted (250 after the spool commit) in {sent:.1f} s: "
                f"{mails / sent:.0f} mails/s over {options.connections} connections"
            )
            processed = wait_processed(db, mails)
        total = sent + processed
        print(
            f"all {mails} turned into cases with acknowledgements {processed:.1f} s after the "
            f"last 250: {mails / total:.0f} cases/s end to end"
        )


if __name__ == "__main__":
    main()
