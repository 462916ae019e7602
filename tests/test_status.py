"""`helpdeskd status`: healthy while the daemon works, non-zero with reasons when it does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd import health
from helpdeskd.adapters.store import Heartbeats, Incidents, OutboxQueue, Store
from tests.support import Daemon, cli, mail, send, write_config

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MAILBOX = """
[[imap]]
name = "support"
host = "127.0.0.1"
port = 1
tls = "none"
username = "support"
password_command = "echo secret"
poll_interval = 60
alert_after = "15m"
"""


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_status_is_healthy_while_the_daemon_runs_and_says_why_when_it_stops(daemon: Daemon, sink):
    config = daemon.config
    send(daemon.port, mail("jane@acme.test", "Portal down", "since 9:00"))
    sink.wait_for(lambda m: "jane@acme.test" in str(m["To"]))
    result = cli(config, "status")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().startswith("helpdeskd: healthy")
    found = json.loads(cli(config, "status", "--json").stdout)
    assert found["healthy"] and found["listener"]["ok"]
    assert found["last_sweep"]["at"] and found["spool"]["waiting"] == 0
    assert found["next_deadlines"][0]["reference"].startswith("HD-")
    assert daemon.stop() == 0
    result = cli(config, "status")
    assert result.returncode == 1
    assert f"problem: listener 127.0.0.1:{daemon.port}: cannot connect" in result.stdout.decode()


def store_for(tmp_path: Path, extra: str = "") -> tuple[configuration.Config, Store]:
    config = configuration.load(write_config(tmp_path, extra=extra))
    store = Store.open(config.helpdesk.database)
    Heartbeats(store).stamp("sweep", NOW - timedelta(seconds=30))
    return config, store


def test_the_text_is_in_the_helpdesk_time_zone(tmp_path: Path):
    config, store = store_for(tmp_path)
    Incidents(store).open("outbox", "the relay refuses", NOW)
    found = health.assess(config, store, NOW, probe=False)
    shown = health.text(found, config.helpdesk.timezone)
    assert "last sweep   2026-11-30 05:59 CST" in shown
    assert "problem: incident outbox open since 2026-11-30 06:00 CST" in shown
    assert "+00:00" not in shown and "T12:" not in shown
    assert found["last_sweep"]["at"] == "2026-11-30T11:59:30+00:00"  # --json: ISO 8601


def test_a_fresh_sweep_and_empty_queues_are_healthy(tmp_path: Path):
    config, store = store_for(tmp_path)
    found = health.assess(config, store, NOW, probe=False)
    assert found["healthy"], found["problems"]


def test_old_spooled_mail_and_a_stale_sweep_are_problems(tmp_path: Path):
    config, store = store_for(tmp_path)
    store.spool(b"Subject: x\r\n\r\nbody", source="smtp", now=NOW - timedelta(minutes=30))
    found = health.assess(config, store, NOW + timedelta(minutes=10), probe=False)
    assert not found["healthy"]
    assert any(p.startswith("spool: 1 message(s) waiting") for p in found["problems"])
    assert any(p.startswith("no sweep since") for p in found["problems"])
    assert found["spool"]["age_seconds"] == 40 * 60


def test_dead_mail_is_a_warning_and_an_open_incident_a_problem(tmp_path: Path):
    config, store = store_for(tmp_path)
    queue = OutboxQueue(store)
    kept = dict(kind="note", message_id="<x@y>", mail_from="", raw=b"x", automatic=False)
    outbox_id = queue.enqueue(case_id=None, recipients=("a@b.test",), now=NOW, **kept)
    queue.give_up(outbox_id, "550 no such user")
    Incidents(store).open("outbox", "outgoing mail given up on", NOW)
    found = health.assess(config, store, NOW, probe=False)
    assert found["dead_mail"] == {"outbox_failed": 1, "quarantined": 0}
    assert any("given up on" in w for w in found["warnings"])
    assert found["problems"] == ["incident outbox open since 2026-11-30 06:00 CST"]


def test_a_mailbox_never_polled_or_failing_is_a_problem(tmp_path: Path):
    config, store = store_for(tmp_path, MAILBOX)
    found = health.assess(config, store, NOW, probe=False)
    assert found["problems"] == ["mailbox support: no successful poll since ever"]
    Heartbeats(store).stamp("imap:support", NOW - timedelta(minutes=1))
    assert health.assess(config, store, NOW, probe=False)["healthy"]
    Incidents(store).open("imap:support", "login refused", NOW)
    found = health.assess(config, store, NOW, probe=False)
    assert found["problems"] == ["mailbox support: failing since 2026-11-30 06:00 CST"]
    assert found["mailboxes"][0]["incident"]
