"""Admin alerts that cannot be lost: a CRITICAL line and a listed incident when the relay refuses
them, another route when one is configured, first in the outbox, and never a "resolved" notice
before the alert it resolves."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import OutboxQueue
from helpdeskd.service import Service
from tests.support import Daemon, Sink, cli, free_port, mail, send, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
ADMIN = "ops@helpdesk.test"


class RefusingEverything(Sink):
    """A relay that refuses every recipient for good, as one that no longer knows us does."""

    async def handle_RCPT(self, server, session, envelope, address, options):
        return "554 5.7.1 relay access denied"


class DeferringAdmins(Sink):
    """A relay that defers mail to the admins while `deferring`, as a greylisting one does."""

    deferring = True

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.deferring and address == ADMIN:
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def service_for(tmp_path: Path, relay: Sink, extra: str = "") -> tuple[Service, Clock]:
    clock = Clock()
    config = configuration.load(write_config(tmp_path, relay_port=relay.port, extra=extra))
    return Service(config, clock=clock), clock


def admin_subjects(relay: Sink) -> list[str]:
    return [str(m["Subject"]) for m in relay.received if ADMIN in str(m["To"])]


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_a_relay_refusing_everything_leaves_a_critical_line_and_a_listed_incident(
    tmp_path: Path,
):
    port = free_port()
    with RefusingEverything() as relay:
        config = write_config(tmp_path, smtp_port=port, relay_port=relay.port)
        with Daemon(config, port) as daemon:
            send(port, mail("jane@acme.test", "Anyone there?", "hello"))
            critical = wait_for_line(daemon.log, '"admin alert not delivered"')
        listing = cli(config, "outbox")
    assert critical["level"] == "critical" and critical["given_up"] is True
    assert critical["subject"] == "[helpdeskd] outgoing mail given up on"
    assert "554" in critical["error"]
    out = listing.stdout.decode()
    assert listing.returncode == 0
    incidents = out.split("open incidents:\n")[1].split("\n\n")[0].splitlines()
    assert incidents[1].startswith("outbox ") and " failed " in incidents[1]
    assert "admin alerts not delivered:" in out and "admin_alert  failed" in out


def wait_for_line(log: Path, marker: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if marker in line:
                return json.loads(line)
        time.sleep(0.1)
    raise AssertionError(f"no {marker} in the log:\n{log.read_text()[-3000:]}")


@pytest.mark.timeout(60)
def test_with_a_maildir_route_the_alert_lands_there(tmp_path: Path):
    routes = tmp_path / "alerts-maildir"
    with RefusingEverything() as relay:
        service, _ = service_for(tmp_path, relay, f'\n[alerts]\nmaildir = "{routes}"\n')
        queue_customer_mail(service)
        service.deliver()  # the customer's mail is refused: the admins are to be told
        service.deliver()  # the alert is refused too, and goes by the Maildir
    [alert] = (routes / "new").iterdir()
    assert b"Subject: [helpdeskd] outgoing mail given up on" in alert.read_bytes()
    row = service.store.row("SELECT state, last_error FROM outbox WHERE kind = 'admin_alert'")
    assert row == {"state": "sent", "last_error": f"sent by maildir {routes}"}


@pytest.mark.timeout(60)
def test_routes_are_tried_in_turn_a_command_after_a_broken_maildir(tmp_path: Path):
    (tmp_path / "not-a-folder").write_text("x")
    caught = tmp_path / "caught.eml"
    command = [
        sys.executable,
        "-c",
        f"import sys; open({str(caught)!r}, 'wb').write(sys.stdin.buffer.read())",
    ]
    extra = (
        f'\n[alerts]\nmaildir = "{tmp_path / "not-a-folder"}"\ncommand = {json.dumps(command)}\n'
    )
    with RefusingEverything() as relay:
        service, _ = service_for(tmp_path, relay, extra)
        queue_customer_mail(service)
        service.deliver()
        service.deliver()
    assert b"Subject: [helpdeskd] outgoing mail given up on\n" in caught.read_bytes()


@pytest.mark.timeout(60)
def test_alerts_leave_the_outbox_before_other_mail(tmp_path: Path):
    with Sink() as relay:
        service, _ = service_for(tmp_path, relay)
        for n in range(3):
            queue_customer_mail(service, n)
        service.alerts.trouble("imap:support", "IMAP mailbox support is unreachable", "x", NOW)
        due = OutboxQueue(service.store).due(NOW)
        assert [q.kind for q in due] == ["admin_alert", "relay", "relay", "relay"]
        service.deliver()
    assert str(relay.received[0]["Subject"]) == "[helpdeskd] IMAP mailbox support is unreachable"


@pytest.mark.timeout(60)
def test_the_resolved_notice_never_arrives_before_its_alert(tmp_path: Path):
    with DeferringAdmins() as relay:
        service, clock = service_for(tmp_path, relay)
        # an incident that ends while its alert waits out the relay's deferral: neither goes
        service.alerts.trouble("imap:support", "IMAP mailbox support is unreachable", "x", NOW)
        service.deliver()
        service.alerts.recovered("imap:support", "IMAP mailbox support works again", NOW)
        relay.deferring = False
        service.deliver()  # the alert still waits for its next try; a notice would go now
        clock.now = NOW + timedelta(hours=2)
        service.deliver()
        assert admin_subjects(relay) == []
        cancelled = service.store.row("SELECT state, last_error FROM outbox WHERE id = 1")
        assert cancelled == {"state": "cancelled", "last_error": "resolved before it could be sent"}
        # one whose alert went out: the notice follows it
        service.alerts.trouble("imap:other", "IMAP mailbox other is unreachable", "y", clock.now)
        service.deliver()
        service.alerts.recovered("imap:other", "IMAP mailbox other works again", clock.now)
        service.deliver()
    assert admin_subjects(relay) == [
        "[helpdeskd] IMAP mailbox other is unreachable",
        "[helpdeskd] Resolved: IMAP mailbox other works again",
    ]


def queue_customer_mail(service: Service, n: int = 0) -> None:
    raw = mail("support@helpdesk.test", f"Mail {n}", "x", to="jane@acme.test").as_bytes()
    OutboxQueue(service.store).enqueue(
        case_id=None,
        kind="relay",
        message_id=f"m{n}@helpdesk.test",
        mail_from="support@helpdesk.test",
        recipients=("jane@acme.test",),
        raw=raw,
        automatic=False,
        now=NOW,
    )


@pytest.mark.timeout(60)
def test_a_second_relay_takes_the_alert_the_first_refused(tmp_path: Path):
    with RefusingEverything() as relay, Sink() as second:
        extra = f'\n[alerts]\nrelay = {{ host = "127.0.0.1", port = {second.port} }}\n'
        service, _ = service_for(tmp_path, relay, extra)
        queue_customer_mail(service)
        service.deliver()
        service.deliver()
    assert admin_subjects(second) == ["[helpdeskd] outgoing mail given up on"]
    assert (
        service.store.row("SELECT state FROM outbox WHERE kind = 'admin_alert'")["state"] == "sent"
    )


@pytest.mark.timeout(60)
def test_a_deferred_alert_goes_by_the_maildir_at_once_and_only_there(tmp_path: Path):
    routes = tmp_path / "alerts-maildir"
    with DeferringAdmins() as relay:
        service, clock = service_for(tmp_path, relay, f'\n[alerts]\nmaildir = "{routes}"\n')
        service.alerts.trouble("imap:support", "IMAP mailbox support is unreachable", "x", NOW)
        service.deliver()  # deferred by the relay: the Maildir takes it now, not in an hour
        relay.deferring = False
        clock.now = NOW + timedelta(hours=2)
        service.deliver()
    assert len(list((routes / "new").iterdir())) == 1
    assert admin_subjects(relay) == []  # not a second copy once the relay takes mail again
