"""How fast one flush hands queued mail to a relay on 127.0.0.1 and records it as sent.

    .venv/bin/python -m bench.courier_bench               # 500 mails, 3 runs
    .venv/bin/python -m bench.courier_bench --mails 2000 --runs 5

Each run queues the mails in a fresh database (WAL, `synchronous=FULL`, as the daemon opens it),
then times `outbox.flush` to an aiosmtpd sink. See bench/README.md for what it printed.
"""

from __future__ import annotations

import argparse
import email.policy
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd import logs
from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import OutboxQueue, Store
from tests.support import Sink, mail, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def one_run(folder: Path, sink: Sink, mails: int) -> float:
    """Seconds for one flush of `mails` queued mails."""
    config = configuration.load(write_config(folder, relay_port=sink.port))
    store = Store.open(folder / "helpdesk.db").leave_checkpoints()
    queue = OutboxQueue(store)
    with store.transaction():
        for n in range(mails):
            raw = mail("support@helpdesk.test", f"Mail {n}", "x" * 800, to=f"c{n}@acme.test")
            queue.enqueue(
                case_id=None,
                kind="acknowledgement",
                message_id=f"m{n}@helpdesk.test",
                mail_from="",
                recipients=(f"c{n}@acme.test",),
                raw=raw.as_bytes(policy=email.policy.SMTP),
                automatic=True,
                now=NOW,
            )
    started = time.perf_counter()
    result = outbox.flush(store, config.outbound, NOW, limit=mails)
    spent = time.perf_counter() - started
    assert len(result.sent) == mails, f"{len(result.sent)} of {mails} sent"
    store.close()
    return spent


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--mails", type=int, default=500)
    args.add_argument("--runs", type=int, default=3)
    options = args.parse_args()
    # the daemon's JSON log lines, written where they cost what they cost but clutter nothing
    logs.configure("INFO", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
    rates = []
    with Sink() as sink:
        for run in range(options.runs):
            with tempfile.TemporaryDirectory() as folder:
                spent = one_run(Path(folder), sink, options.mails)
            rates.append(options.mails / spent)
            print(f"run {run + 1}: {options.mails} mails in {spent:.2f} s, {rates[-1]:.0f}/s")
    print(f"RESULT courier mails={options.mails} median={statistics.median(rates):.0f}/s")


if __name__ == "__main__":
    main()
