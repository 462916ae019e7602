"""The whole daemon reading a real Dovecot mailbox: a case and its acknowledgement from IMAP,
and the admins told once about a mailbox that refuses the login."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.dovecot import dovecot  # noqa: F401 - the fixture
from tests.support import Daemon, Sink, free_port, mail, run_in_process, write_config

pytestmark = [pytest.mark.dovecot, pytest.mark.e2e, pytest.mark.timeout(90)]


def imap_table(server, secret: Path, **overrides) -> str:
    fields = {
        "name": "support",
        "host": "127.0.0.1",
        "port": server.port,
        "tls": "none",
        "username": "alice",
        "password_file": str(secret),
        "folder": "INBOX",
        "processed_folder": "Processed",
        "poll_interval": 2,
        "alert_after": "0m",
        **overrides,
    }
    return "\n[[imap]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def run_daemon(tmp_path: Path, sink: Sink, table: str) -> Daemon:
    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra=table)
    return Daemon(config, port)


def test_mail_in_the_mailbox_becomes_a_case_and_is_moved(dovecot, tmp_path: Path):  # noqa: F811
    secret = tmp_path / "imap-password"
    secret.write_text("alice-secret\n")
    dovecot.append("alice", mail("jane@acme.test", "From the mailbox", "via IMAP").as_bytes())
    with Sink() as sink, run_daemon(tmp_path, sink, imap_table(dovecot, secret)) as daemon:
        acks = sink.wait_for(lambda m: m["Auto-Submitted"] == "auto-replied", timeout=20)
        assert acks and "From the mailbox" in str(acks[0]["Subject"])
        dovecot.append("alice", mail("joe@acme.test", "While running", "x").as_bytes())
        later = sink.wait_for(lambda m: "joe@acme.test" in str(m["To"]), timeout=20)
        assert later
        cases = json.loads(run_in_process(daemon.config, "cases", "--json"))
    assert sorted(c["subject"] for c in cases) == ["From the mailbox", "While running"]
    assert dovecot.messages("alice", "INBOX") == []
    assert len(dovecot.messages("alice", "Processed")) == 2


def test_a_refused_login_is_reported_to_the_admins_once(dovecot, tmp_path: Path):  # noqa: F811
    secret = tmp_path / "imap-password"
    secret.write_text("wrong-password\n")
    with Sink() as sink, run_daemon(tmp_path, sink, imap_table(dovecot, secret)) as daemon:
        alerts = sink.wait_for(lambda m: "ops@helpdesk.test" in str(m["To"]), timeout=20)
        assert alerts and "support" in str(alerts[0]["Subject"])
        wait_for_retries(daemon, 3)  # more refused logins after the alert: still one alert
        alerts = [m for m in sink.received if "ops@helpdesk.test" in str(m["To"])]
    assert len(alerts) == 1
    assert alerts[0]["Auto-Submitted"] == "auto-generated"


def wait_for_retries(daemon: Daemon, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while daemon.log.read_text().count('"imap.retry"') < count:
        assert time.monotonic() < deadline, "the poller stopped retrying"
        time.sleep(0.2)
