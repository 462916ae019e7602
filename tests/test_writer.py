"""One writer per database in the process: the SMTP spool commit is never held up by the
worker's work on a message, only (briefly) by the worker's own commit."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd import pipeline
from helpdeskd.service import Service
from tests.support import free_port, mail, send, write_config


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
    loop = asyncio.new_event_loop()
    listener = threading.Thread(target=loop.run_forever, daemon=True)
    listener.start()
    try:
        asyncio.run_coroutine_threadsafe(service.start_listener(), loop).result(10)
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
        loop.call_soon_threadsafe(service.server.close)
        loop.call_soon_threadsafe(loop.stop)
        listener.join(10)
