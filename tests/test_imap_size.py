"""A message over `[smtp] max_message_size` in an IMAP mailbox (a real Dovecot): never fetched
whole, never spooled, set aside where it is, and the admins told once."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from helpdeskd.adapters.imap import TOO_LARGE
from helpdeskd.adapters.store import MailboxState
from tests.dovecot import dovecot  # noqa: F401 - the fixture
from tests.support import Daemon, Sink, free_port, run_in_process, write_config
from tests.test_imap import Harness, message
from tests.test_imap_daemon import imap_table

pytestmark = [pytest.mark.dovecot, pytest.mark.timeout(90)]

LIMIT = 1_000_000


class NoticingAlerts:
    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []

    def trouble(self, key, summary, detail, now):
        self.calls.append(("trouble", key, detail))

    def recovered(self, key, summary, now):
        self.calls.append(("recovered", key, ""))

    def notice(self, key, summary, detail, now):
        self.calls.append(("notice", key, detail))


@pytest.fixture
def harness(dovecot, tmp_path):  # noqa: F811 - the fixture imported above
    h = Harness(dovecot, tmp_path)
    h.alerts = NoticingAlerts()
    yield h
    h.store.close()


@pytest.mark.parametrize("processed_folder", ["Processed", None])
def test_an_oversize_message_is_not_fetched_nor_spooled_and_told_once(
    harness,
    dovecot,  # noqa: F811
    processed_folder,
):
    dovecot.append("alice", message(1))
    dovecot.append("alice", message(2, size=5 * LIMIT))
    dovecot.append("alice", message(3))
    box = harness.mailbox(processed_folder=processed_folder)
    poller = harness.poller(box, max_message_size=LIMIT)

    tracemalloc.start()
    try:
        assert poller.poll_once() == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * LIMIT  # the 5 MB message was never read into memory
    assert poller.poll_once() == 0
    MailboxState(harness.store).set("alice", 1, 0)  # a rescan (UIDVALIDITY changed)
    assert poller.poll_once() == 0
    poller.close()

    spooled = sorted(r["message_id"] for r in harness.spooled())
    assert spooled == ["request-1@example.com", "request-3@example.com"]
    [(kind, key, detail)] = harness.alerts.calls
    assert (kind, key) == ("notice", "imap:alice:too-large")
    assert "UID 2" in detail and "Subject: request 2" in detail and "customer2@" in detail
    set_aside = [f for f in dovecot.flags("alice") if TOO_LARGE in f]
    assert len(set_aside) == 1 and b"\\Flagged" in set_aside[0]


def test_the_daemon_tells_the_admins_once_and_keeps_the_rest_flowing(
    dovecot,  # noqa: F811
    tmp_path: Path,
):
    secret = tmp_path / "imap-password"
    secret.write_text("alice-secret\n")
    dovecot.append("alice", message(1, size=60_000))
    dovecot.append("alice", message(2))
    port = free_port()
    with Sink() as sink:
        config = write_config(
            tmp_path, smtp_port=port, relay_port=sink.port, extra=imap_table(dovecot, secret)
        )
        config.write_text(
            config.read_text().replace("[smtp]\n", "[smtp]\nmax_message_size = 20000\n")
        )
        with Daemon(config, port) as daemon:
            told = sink.wait_for(lambda m: "over the size limit" in str(m["Subject"]), timeout=30)
            assert sink.wait_for(lambda m: "customer2@example.com" in str(m["To"]), timeout=30)
            dovecot.append("alice", message(3))  # the mailbox is read again: still one notice
            assert sink.wait_for(lambda m: "customer3@example.com" in str(m["To"]), timeout=30)
            cases = json.loads(run_in_process(daemon.config, "cases", "--json"))
            received = [m for m in sink.received if "over the size limit" in str(m["Subject"])]
    assert len(told) == len(received) == 1
    assert "ops@helpdesk.test" in str(told[0]["To"])
    assert "request 1" in told[0].get_content()
    assert "resolved" not in told[0].get_content()
    assert [c["subject"] for c in cases] == ["request 2", "request 3"]
    assert len(dovecot.messages("alice", "INBOX")) == 1  # set aside where it was
