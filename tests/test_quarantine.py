"""A quarantined message reaches the admins at once, one mail per window, and the quarantine
list shows enough to decide."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd.adapters.store import Store
from helpdeskd.quarantine import incident_key
from helpdeskd.service import Service
from tests.support import cli, run_in_process, write_config

NOW = datetime(2026, 11, 18, 15, 5, tzinfo=UTC)
TOO_MANY_FIELDS = (
    "From: Jane <jane@acme.test>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    + "X-Junk: 1\r\n" * 1000
    + "\r\nbody\r\n"
).encode()


def admin_alerts(store: Store) -> list:
    rows = store.rows("SELECT raw FROM outbox WHERE kind = 'admin_alert' ORDER BY id")
    return [message_from_bytes(r["raw"], policy=policy.default) for r in rows]


def test_a_quarantined_message_is_mailed_at_once_once_per_window(tmp_path: Path):
    config = configuration.load(write_config(tmp_path))
    clock = [NOW]
    service = Service(config, clock=lambda: clock[0])
    first, _ = service.store.spool(TOO_MANY_FIELDS, source="smtp", now=NOW)
    service.store.spool(b"not a mail\n", source="smtp", now=NOW, envelope_from="x@y.test")
    service.work()
    [alert] = admin_alerts(service.store)
    text = alert.get_body(("plain",)).get_content()
    assert "too many header fields" in str(alert["Subject"])
    assert "Jane <jane@acme.test>" in text and "Grüße" in text
    assert f"helpdeskd requeue {first}" in text
    assert alert["To"] == "ops@helpdesk.test"

    clock[0] = NOW + timedelta(hours=1)  # the next window: the next quarantine is told again
    third, _ = service.store.spool(b"still not a mail\n", source="imap", now=clock[0])
    service.work()
    alerts = admin_alerts(service.store)
    assert len(alerts) == 2 and f"helpdeskd requeue {third}" in alerts[1].get_body().get_content()
    keys = [r["key"] for r in service.store.rows("SELECT key FROM incidents")]
    assert keys == [incident_key(clock[0])]  # the past window's incident is closed


def test_ingest_tells_the_admins_too(tmp_path: Path):
    config = write_config(tmp_path)
    result = cli(config, "ingest", "-", stdin=b"this is not a mail at all\n")
    assert result.returncode == 0
    [delivered] = (tmp_path / "maildir" / "new").iterdir()
    alert = message_from_bytes(delivered.read_bytes(), policy=policy.default)
    assert "quarantined" in str(alert["Subject"])
    assert "helpdeskd requeue 1" in alert.get_body(("plain",)).get_content()


def test_the_quarantine_list_shows_enough_to_decide(tmp_path: Path):
    config = write_config(tmp_path)
    cli(config, "ingest", "-", stdin=TOO_MANY_FIELDS)
    [row] = json.loads(run_in_process(config, "cases", "--quarantined", "--json"))
    assert row["from"] == "Jane <jane@acme.test>" and row["subject"] == "Grüße"
    assert row["size"] == len(TOO_MANY_FIELDS)
    assert "too many header fields" in row["reason"] and row["received_at"]
    table = run_in_process(config, "cases", "--quarantined")
    assert "Grüße" in table and "jane@acme.test" in table
