"""Delivery of the outbox to a real aiosmtpd relay: retries with backoff, permanent refusals,
and the admins told once while mail is being given up on. The courier's own bookkeeping runs
on SQLite and on PostgreSQL (the `store` and `database` fixtures)."""

from __future__ import annotations

import random
import shutil
import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import OutboxQueue, Store, open_store
from helpdeskd.service import Service
from tests.support import Sink, free_port, mail, self_signed_certificate, write_config

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


def queue(store: Store, to: str, n: int = 0, automatic: bool = False, kind: str = "") -> int:
    """A mail from an engineer, or (automatic) an acknowledgement with the null sender, or
    another automatic `kind`."""
    raw = mail("support@helpdesk.test", f"Mail {n}", "x", to=to).as_bytes()
    return OutboxQueue(store).enqueue(
        case_id=None,
        kind=kind or ("acknowledgement" if automatic else "relay"),
        message_id=f"m{n}@helpdesk.test",
        mail_from="" if automatic else "support@helpdesk.test",
        recipients=(to,),
        raw=raw,
        automatic=automatic,
        now=NOW,
    )


def test_a_relay_that_is_down_is_retried_with_backoff_then_given_up(tmp_path: Path, store):
    config = configuration.load(write_config(tmp_path, relay_port=free_port()))  # nobody there
    outbound = replace(config.outbound, max_attempts=3, backoff=60, backoff_max=600)
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


def test_a_permanent_refusal_is_not_retried(tmp_path: Path, sink: Sink, store):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
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


def test_two_flushes_at_once_send_each_message_once(tmp_path: Path, sink: Sink, database):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    first, second = open_store(database), open_store(database, migrate=False)
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


def test_only_the_deferred_recipients_are_tried_again(tmp_path: Path, store):
    with DeferringSink() as relay:
        config = configuration.load(write_config(tmp_path, relay_port=relay.port))
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


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the relay's certificate")
    return self_signed_certificate(tmp_path)


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


RELAY_TLS = {"implicit": "ssl_context", "starttls": "tls_context"}


@pytest.mark.parametrize("tls", sorted(RELAY_TLS))
def test_a_tls_relay_gets_a_batch_over_one_session(tmp_path: Path, certificate, tls: str):
    """Implicit TLS (SMTPS, port 465) and STARTTLS, the relay's certificate checked against
    `ca_file`; with `connections = 1` a flush delivers every due message through one session."""
    with Sink(**{RELAY_TLS[tls]: server_context(certificate)}) as relay:
        config = configuration.load(write_config(tmp_path, relay_port=relay.port))
        outbound = replace(config.outbound, tls=tls, ca_file=certificate[0], connections=1)
        store = Store.open(tmp_path / "db")
        for n in range(3):
            queue(store, f"jane{n}@acme.test", n)
        assert len(outbox.flush(store, outbound, NOW).sent) == 3
    assert (len(relay.peers), len(relay.received)) == (1, 3)


def test_a_flush_delivers_through_its_sessions_side_by_side_keeping_each_recipients_order(
    tmp_path: Path, sink: Sink
):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    outbound = replace(config.outbound, connections=3)
    store = Store.open(tmp_path / "db")
    people = [f"person{p}@acme.test" for p in range(12)]
    for n in range(60):
        queue(store, people[n % 12], n)
    assert len(outbox.flush(store, outbound, NOW).sent) == 60
    assert 1 < len(sink.peers) <= 3
    for person in people:
        subjects = [str(m["Subject"]) for m in sink.received if str(m["To"]) == person]
        numbers = [int(s.split()[-1]) for s in subjects]
        assert numbers == sorted(numbers) and len(numbers) == 5, (person, numbers)
    assert store.count("outbox", "state = 'sent'") == 60


def test_a_relay_whose_certificate_is_not_trusted_gets_nothing(tmp_path: Path, certificate):
    with Sink(ssl_context=server_context(certificate)) as relay:
        config = configuration.load(write_config(tmp_path, relay_port=relay.port))
        outbound = replace(config.outbound, tls="implicit")  # the system's CAs only
        store = Store.open(tmp_path / "db")
        queue(store, "jane@acme.test")
        assert len(outbox.flush(store, outbound, NOW).retried) == 1
    assert relay.received == []
    assert "CERTIFICATE_VERIFY_FAILED" in store.row("SELECT last_error FROM outbox")["last_error"]


def test_automatic_mail_has_the_null_sender_unless_one_is_configured(tmp_path: Path, sink: Sink):
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    store = Store.open(tmp_path / "db")
    queue(store, "jane@acme.test", 1, automatic=True)
    outbox.flush(store, config.outbound, NOW)
    named = replace(config.outbound, automatic_sender="bounces@helpdesk.test", connections=1)
    queue(store, "jane@acme.test", 2, automatic=True)
    queue(store, "joe@acme.test", 3)  # mail from a person keeps its own sender
    outbox.flush(store, named, NOW)
    assert [sender for sender, _ in sink.envelopes] == [
        "<>",  # the null sender, as aiosmtpd reports it
        "bounces@helpdesk.test",
        "support@helpdesk.test",
    ]


def test_relay_tls_is_read_from_the_file(tmp_path: Path):
    cert = tmp_path / "ca.pem"
    cert.write_text("x")
    relay = f'transport = "smtp"\nhost = "mail.example.test"\ntls = "implicit"\nca_file = "{cert}"'
    relay += '\nautomatic_sender = "Bounces@Helpdesk.test"\n'
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('transport = "maildir"', relay))
    outbound = configuration.load(path).outbound
    assert (outbound.tls, outbound.port, outbound.ca_file) == ("implicit", 465, cert)
    assert outbound.automatic_sender == "bounces@helpdesk.test"


def test_relay_tls_mistakes_are_listed_by_key(tmp_path: Path):
    relay = 'transport = "smtp"\nhost = "mail.example.test"\ntls = "implicit"\nstarttls = true'
    relay += '\nautomatic_sender = "not an address"\n'
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('transport = "maildir"', relay))
    with pytest.raises(configuration.ConfigError) as caught:
        configuration.load(path)
    assert {key for key, _ in caught.value.problems} == {
        "outbound.starttls",
        "outbound.automatic_sender",
    }


def test_the_courier_keeps_its_relay_session_from_pass_to_pass(tmp_path: Path):
    """One session for many passes (each pass used to open and close its own); a session the
    relay dropped meanwhile is found by a NOOP and opened again, the pass's mail sent at once."""
    first, again = Sink(), Sink()
    again.controller.port = first.port  # the same relay, restarted
    config = configuration.load(write_config(tmp_path, relay_port=first.port))
    service = Service(config, clock=lambda: NOW)
    with first:
        for n in range(3):
            queue(service.store, "jane@acme.test", n)
            assert len(service.delivery.deliver().sent) == 1
        assert len(first.peers) == 1
    with again:  # the kept session died with the first relay
        queue(service.store, "jane@acme.test", 3)
        result = service.delivery.deliver()
        assert (len(result.sent), len(result.retried)) == (1, 0)
        assert len(again.received) == 1
    service.delivery.close()


def test_acknowledgements_go_before_other_mail_of_their_pass(tmp_path: Path, sink: Sink, store):
    """A notification forwarding a large attachment does not hold the reference numbers
    promised at once; admin alerts still go first of all."""
    config = configuration.load(write_config(tmp_path, relay_port=sink.port))
    queue(store, "alice@helpdesk.test", 1)
    queue(store, "jane@acme.test", 2, automatic=True)
    queue(store, "joe@acme.test", 3)
    queue(store, "bob@acme.test", 4, automatic=True)
    queue(store, "ops@helpdesk.test", 5, automatic=True, kind="admin_alert")
    assert len(outbox.flush(store, config.outbound, NOW).sent) == 5
    assert [str(m["Subject"]) for m in sink.received] == [f"Mail {n}" for n in (5, 2, 4, 1, 3)]
