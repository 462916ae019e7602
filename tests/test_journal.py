"""The journal of deliveries (store/journal.py): the courier records each delivery at once
without the database's write lock, and the records reach the outbox a batch at a time."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import OutboxQueue, Store
from helpdeskd.adapters.store.journal import Journal
from tests.support import ROOT, Sink, write_config
from tests.test_outbox import queue

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

HOLDER = """
import sys
from helpdeskd.adapters.store import Store
store = Store(sys.argv[1])
sys.stdin.readline()
with store.transaction():
    print("held", flush=True)
    sys.stdin.readline()
"""


class LockingSink(Sink):
    """A relay that, before answering the first mail, has another process take the
    database's write lock, and keep it."""

    def __init__(self, holder: subprocess.Popen):
        super().__init__()
        self.holder = holder

    async def handle_DATA(self, server, session, envelope):
        if not self.received:
            self.holder.stdin.write("take\n")
            self.holder.stdin.flush()
            assert self.holder.stdout.readline() == "held\n"
        return await super().handle_DATA(server, session, envelope)


def test_the_courier_goes_on_delivering_while_another_process_writes(tmp_path: Path):
    """The worker's group transactions used to hold the courier between two mails; now the
    deliveries are journaled, and recorded as sent once the lock is free."""
    store = Store.open(tmp_path / "helpdesk.db")
    for n in range(10):
        queue(store, f"person{n}@acme.test", n)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "helpdesk.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    with LockingSink(holder) as sink:
        config = configuration.load(write_config(tmp_path, relay_port=sink.port))
        flushing = threading.Thread(target=outbox.flush, args=(store, config.outbound, NOW))
        flushing.start()
        try:
            assert sink.wait_for(lambda m: str(m["Subject"]) == "Mail 9", 10)
            assert len(sink.received) == 10  # all of them while the lock is held
            assert store.count("outbox", "state = 'sent'") == 0
        finally:
            holder.communicate("release\n", timeout=10)
        flushing.join(10)
    assert store.count("outbox", "state = 'sent' AND attempts = 1") == 10
    assert not Path(f"{tmp_path / 'helpdesk.db'}-sent").exists()


def test_a_fold_killed_before_its_end_is_folded_again_once(tmp_path: Path):
    store = Store.open(tmp_path / "helpdesk.db")
    ids = [queue(store, "jane@acme.test", n) for n in range(3)]
    journal = store.journal("sent")
    for outbox_id in ids[:2]:
        journal.append(f"{outbox_id} 2026-11-18T15:00:00+00:00")

    def killed(lines):
        OutboxQueue(store)._fold(lines)  # committed, then the process died
        raise SystemExit

    with contextlib.suppress(SystemExit):
        journal.fold(killed)
    assert journal.folding.exists()
    journal.append(f"{ids[2]} 2026-11-18T15:00:01+00:00")
    assert OutboxQueue(store).fold_deliveries() == 2  # the one left half-done first
    assert OutboxQueue(store).fold_deliveries() == 1
    rows = store.rows("SELECT state, attempts, sent_at FROM outbox ORDER BY id")
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 1)] * 3
    assert rows[0]["sent_at"] == "2026-11-18T15:00:00+00:00"


def test_lines_appended_while_folds_go_on_are_all_folded_once(tmp_path: Path):
    journal = Journal(tmp_path / "db-sent")
    folded: list[str] = []

    def append(worker: int) -> None:
        for n in range(300):
            journal.append(f"{worker} {n}")

    writers = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for writer in writers:
        writer.start()
    while any(w.is_alive() for w in writers):
        journal.fold(folded.extend)
    journal.fold(folded.extend)
    assert sorted(folded) == sorted(f"{w} {n}" for w in range(4) for n in range(300))
