"""A mail storm against the running daemon: how fast the SMTP listener answers 250 (the spool
commit) and how fast the worker turns spooled mail into cases.

    .venv/bin/python -m bench.intake_bench               # 1,000 mails over 4 connections
    .venv/bin/python -m bench.intake_bench --mails 5000 --connections 8

Everything runs on 127.0.0.1: the daemon as a subprocess on a free port, outgoing mail written
to a Maildir in a temporary folder. See bench/README.md for what it printed.
"""

from __future__ import annotations

import argparse
import smtplib
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

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


def wait_processed(db: Path, expected: int, timeout: float = 900) -> float:
    """Seconds until the worker has turned every spooled mail into its case."""
    started = time.perf_counter()
    with sqlite3.connect(db, timeout=30) as conn:
        while time.perf_counter() - started < timeout:
            done = conn.execute("SELECT count(*) FROM spool WHERE state != 'new'").fetchone()[0]
            if done >= expected:
                return time.perf_counter() - started
            time.sleep(0.2)
    raise TimeoutError(f"only {done} of {expected} processed")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--mails", type=int, default=1000)
    args.add_argument("--connections", type=int, default=4)
    options = args.parse_args()
    mails = options.mails - options.mails % options.connections
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        config = write_config(Path(folder), smtp_port=port, auto_limit=1_000_000)
        with Daemon(config, port):
            sent = storm(port, mails, options.connections)
            print(
                f"{mails} mails accepted (250 after the spool commit) in {sent:.1f} s: "
                f"{mails / sent:.0f} mails/s over {options.connections} connections"
            )
            processed = wait_processed(Path(folder) / "helpdesk.db", mails)
        total = sent + processed
        print(
            f"all {mails} turned into cases with acknowledgements {processed:.1f} s after the "
            f"last 250: {mails / total:.0f} cases/s end to end"
        )


if __name__ == "__main__":
    main()
