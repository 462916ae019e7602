"""Delivery of the outbox to a real aiosmtpd relay: retries with backoff, permanent refusals,
and the admins told once while mail is being given up on."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import OutboxQueue, Store
from helpdeskd.service import Service
from tests.support import Sink, free_port, mail, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


class RefusingSink(Sink):
    """A relay that refuses some recipients for good, as a real one does for unknown users."""

    refused = ("gone@acme.test",)

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refused:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def sink():
    with RefusingSink() as running:
        yield running


def queue(store: Store, to: str, n: int = 0) -> int:
    raw = mail("support@helpdesk.test", f"Mail {n}", "x", to=to).as_bytes()
    return OutboxQueue(store).enqueue(
        case_id=None,
        kind="relay",
        message_id=f"m{n}@helpdesk.test",
        mail_from="support@helpdesk.test",
        recipients=(to,),
        raw=raw,
        automatic=False,
        now=NOW,
    )


def test_a_relay_that_is_down_is_retried_with_backoff_then_given_up(tmp_path: Path):
    config = configuration.load(write_config(tmp_path, relay_port=free_port()))  # nobody there
    outbound = replace(config.outbound, max_attempts=3, backoff=60, backoff_max=600)
    store = Store.open(tmp_path / "db")
    queue(store, "jane@acme.test")
    rng = random.Random(1)
    first = outbox.flush(store, outbound, NOW, rng=rng)
    row = store.row("SELECT * FROM outbox")
    assert (len(first.retried), row["state"], row["attempts"]) == (1, "queued", 1)
    retry_at = datetime.fromisoformat(row["next_attempt_at"])
    assert NOW + timedelta(seconds=48) <= retry_at <= NOW + timedelta(seconds=72)
    assert outbox.flush(store, outbound, NOW + timedelta(seconds=30), rng=rng).retried == ()
    outbox.flush(store, outbound, NOW + timedelta(minutes=2), rng=rng)
    last = outbox.flush(store, outbound, NOW + timedelta(minutes=10), rng=rng)
    assert len(last.failed) == 1
    assert store.row("SELECT state FROM outbox")["state"] == "failed"


def test_a_permanent_refusal_is_not_retried(tmp_path: Path, sink: Sink):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    store = Store.open(tmp_path / "db")
    queue(store, "gone@acme.test")
    result = outbox.flush(store, config.outbound, NOW)
    assert len(result.failed) == 1
    assert "550" in store.row("SELECT last_error FROM outbox")["last_error"]


def test_admins_hear_once_while_mail_is_given_up_on_and_once_when_it_flows(
    tmp_path: Path, sink: Sink
):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    service = Service(config, clock=lambda: NOW)
    for n in range(2):
        queue(service.store, "gone@acme.test", n)
        service.deliver()
        service.deliver()  # the alert itself goes out on the next pass
    queue(service.store, "jane@acme.test", 9)
    service.deliver()
    service.deliver()
    to_admins = [str(m["Subject"]) for m in sink.received if "ops@helpdesk.test" in str(m["To"])]
    assert to_admins == [
        "[helpdeskd] outgoing mail given up on",
        "[helpdeskd] Resolved: outgoing mail given up on",
    ]


def test_two_flushes_at_once_send_each_message_once(tmp_path: Path, sink: Sink):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    first, second = Store.open(tmp_path / "db"), Store(tmp_path / "db")
    queue(first, "jane@acme.test")
    due = OutboxQueue(first).due(NOW)  # both flushers saw it due...
    assert OutboxQueue(first).claim(due[0].id, NOW, NOW + outbox.LEASE)
    assert not OutboxQueue(second).claim(due[0].id, NOW, NOW + outbox.LEASE)  # ...one takes it
    assert outbox.flush(second, config.outbound, NOW).sent == ()
    assert len(outbox.flush(first, config.outbound, NOW + outbox.LEASE).sent) == 1
    assert len(sink.received) == 1


class DeferringSink(Sink):
    """A relay that defers one recipient for a while, as a greylisting one does."""

    deferred = frozenset({"later@acme.test"})

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.deferred:
            return "450 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_only_the_deferred_recipients_are_tried_again(tmp_path: Path):
    with DeferringSink() as relay:
        config = configuration.load(write_config(tmp_path, relay_port=relay.port))
        store = Store.open(tmp_path / "db")
        raw = mail("support@helpdesk.test", "Two", "x", to="now@acme.test").as_bytes()
        OutboxQueue(store).enqueue(
            case_id=None,
            kind="relay",
            message_id="m@helpdesk.test",
            mail_from="support@helpdesk.test",
            recipients=("now@acme.test", "later@acme.test"),
            raw=raw,
            automatic=False,
            now=NOW,
        )
        assert len(outbox.flush(store, config.outbound, NOW).retried) == 1
        relay.deferred = frozenset()
        assert len(outbox.flush(store, config.outbound, NOW + timedelta(hours=1)).sent) == 1
    assert relay.envelopes == [
        ("support@helpdesk.test", ["now@acme.test"]),
        ("support@helpdesk.test", ["later@acme.test"]),
    ]
