"""One writer per database in the process: the SMTP spool commit is never held up by the
worker's work on a message, only (briefly) by the worker's own commit."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd import pipeline
from helpdeskd.adapters.store import Store
from helpdeskd.service import Service, bind_listener
from tests.support import free_port, mail, send, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def test_a_slow_worker_does_not_delay_the_250(tmp_path: Path, monkeypatch):
    port = free_port()
    config = configuration.load(write_config(tmp_path, smtp_port=port))
    working, finish = threading.Event(), threading.Event()
    classify = pipeline.classify

    def slow_classify(*args, **kwargs):
        working.set()
        finish.wait(30)  # the worker is busy with the first mail until the test says so
        return classify(*args, **kwargs)

    monkeypatch.setattr(pipeline, "classify", slow_classify)
    service = Service(config)
    sockets = bind_listener(config)
    loop = asyncio.new_event_loop()
    listener = threading.Thread(target=loop.run_forever, daemon=True)
    listener.start()
    try:
        spawned = service.spawn("listener", sockets)  # its own process, as in the daemon
        service.listener = asyncio.run_coroutine_threadsafe(spawned, loop).result(60)
        service.worker.start()
        send(port, mail("jane@acme.test", "First", "The worker is slow with this one."))
        assert working.wait(10)
        started = time.monotonic()
        send(port, mail("joe@acme.test", "Second", "Answered while the worker works."))
        waited = time.monotonic() - started
        assert not finish.is_set() and waited < 2.0, waited  # generous: it takes milliseconds
        finish.set()
        deadline = time.monotonic() + 20
        while service.store.count("spool", "state = 'new'") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c["subject"] for c in service.store.rows("SELECT subject FROM cases")] == [
            "First",
            "Second",
        ]
    finally:
        finish.set()
        service.worker.stop()
        service.worker.join(10)
        if service.listener is not None:
            service.listener.stop(10)
        for sock in sockets:
            sock.close()
        loop.call_soon_threadsafe(loop.stop)
        listener.join(10)


def test_a_message_failing_in_a_group_commit_is_undone_alone(tmp_path: Path, monkeypatch):
    """Messages spooled together share one commit; one that fails after writing leaves
    nothing behind, and the others are kept."""
    config = configuration.load(write_config(tmp_path))
    service = Service(config)
    for sender, subject in [("jane@acme.test", "Fine"), ("joe@acme.test", "Poison")]:
        service.store.spool(mail(sender, subject, "x").as_bytes(), source="smtp", now=NOW)
    handle = pipeline.handle

    def handle_then_fail(store, config, inbound, *args, **options):
        done = handle(store, config, inbound, *args, **options)  # the case and its mail...
        if inbound.subject == "Poison":
            raise RuntimeError("a bug after the writes")  # ...and must be undone
        return done

    monkeypatch.setattr(pipeline, "handle", handle_then_fail)
    service.clock = lambda: NOW
    service.work()
    assert [c["subject"] for c in service.store.rows("SELECT subject FROM cases")] == ["Fine"]
    assert service.store.count("outbox", "1") == 2  # the acknowledgement and notification of one
    poison = service.store.row("SELECT state, attempts, reason FROM spool WHERE id = 2")
    assert poison == {
        "state": "new",
        "attempts": 1,
        "reason": "RuntimeError: a bug after the writes",
    }


def test_the_daemons_commits_leave_checkpoints_to_their_thread(tmp_path: Path, monkeypatch):
    """A checkpoint on a big database is slow: the daemon's writers never run one in their
    commits, and the checkpoint thread copies what they wrote."""
    config = configuration.load(write_config(tmp_path))
    service = Service(config)
    writer = service.open_store()
    assert writer.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for n in range(300):  # more than SQLite's default threshold of 1,000 pages
        raw = mail("jane@acme.test", f"Mail {n}", "x" * 20_000).as_bytes()
        writer.spool(raw, source="smtp", now=NOW)
    wal = tmp_path / "helpdesk.db-wal"
    grown = wal.stat().st_size
    assert grown > 1000 * 4096  # past SQLite's default threshold: nobody had checkpointed
    monkeypatch.setattr(Store, "WAL_RESTART_FRAMES", 1000)  # 32 MiB in the daemon
    service.checkpoint()
    writer.spool(mail("joe@acme.test", "After", "x").as_bytes(), source="smtp", now=NOW)
    _, frames, _ = writer.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert frames < 10  # the WAL started over after the checkpoint instead of growing on
