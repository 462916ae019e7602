"""The store and the spool, on SQLite and PostgreSQL (the `database` and `store` fixtures):
dedup, migrations, recovery, quarantine."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import Cases, Store, dedup_key, migrations, open_store
from helpdeskd.service import Service
from tests.support import Daemon, Sink, cli, free_port, mail, run_in_process, send, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def test_the_same_mail_relayed_twice_is_one_spool_row(store):
    raw = mail("jane@acme.test", "Twice", "body").as_bytes()
    first = store.spool(raw, source="smtp", now=NOW)
    again = store.spool(
        b"Received: by relay2\n" + raw.replace(b"\n", b"\r\n"), source="imap", now=NOW
    )
    assert first == (1, True) and again == (1, False)


def test_a_reused_message_id_with_another_body_is_another_message():
    one = dedup_key(b"Message-ID: <a@b>\r\n\r\nfirst", "a@b")
    two = dedup_key(b"Message-ID: <a@b>\r\n\r\nsecond", "a@b")
    assert one != two


def test_an_older_database_upgrades_in_place(tmp_path: Path):
    path = tmp_path / "old.db"
    store = Store(path)
    first_two = [m.name for m in migrations._migrations[:2]]
    migrations.apply(store.db, stop_before=migrations._migrations[2].name)
    assert [m.name for m in migrations.applied(store.db)] == first_two
    store.spool(mail("jane@acme.test", "old", "kept").as_bytes(), source="smtp", now=NOW)
    store.close()
    upgraded = Store.open(path)
    assert not migrations.pending(upgraded.db)
    assert upgraded.pending()[0].raw.startswith(b"From: jane@acme.test")
    assert "next_due" in upgraded.db["cases"].columns_dict


def test_spooled_but_unprocessed_mail_is_processed_at_start(tmp_path: Path, database):
    """What a crash (kill -9) between the 250 and the processing leaves behind."""
    with Sink() as sink:
        port = free_port()
        config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        store = open_store(database)
        store.spool(
            mail("jane@acme.test", "Before the crash", "x").as_bytes(), source="smtp", now=NOW
        )
        store.close()
        with Daemon(config, port):
            acks = sink.wait_for(lambda m: m["Auto-Submitted"] == "auto-replied")
        assert acks and "Before the crash" in str(acks[0]["Subject"])


def test_kill_9_after_the_250_loses_nothing(tmp_path: Path, database):
    with Sink() as sink:
        port = free_port()
        config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        daemon = Daemon(config, port).start()
        for i in range(5):
            send(port, mail("jane@acme.test", f"Mail {i}", "x"))
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(10)
        with Daemon(config, port):
            sink.wait_for(
                lambda m: (
                    len([x for x in sink.received if x["Auto-Submitted"] == "auto-replied"]) >= 5
                )
            )
        subjects = sorted(
            json.loads(run_in_process(config, "cases", "--json")), key=lambda c: c["subject"]
        )
        assert [c["subject"] for c in subjects] == [f"Mail {i}" for i in range(5)]


def test_unparseable_mail_is_quarantined_with_its_reason(tmp_path: Path, database):
    config = write_config(tmp_path)
    result = cli(config, "ingest", "-", stdin=b"this is not a mail at all\n")
    assert result.returncode == 0
    listed = cli(config, "cases", "--quarantined", "--json")
    [row] = json.loads(listed.stdout)
    assert "unparseable" in row["reason"]


def test_a_message_that_keeps_failing_is_retried_later_then_quarantined(
    tmp_path: Path, database, monkeypatch
):
    config = configuration.load(write_config(tmp_path))
    clock = [NOW]
    service = Service(config, clock=lambda: clock[0])
    spool_id, _ = service.store.spool(
        mail("jane@acme.test", "Poison", "x").as_bytes(), source="smtp", now=NOW
    )

    def broken(*args):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("helpdeskd.service.settle", broken)
    service.work()
    service.work()  # the next try waits: a failing message does not burn its tries at once
    assert attempts(service, spool_id) == 1
    for minutes in (1, 3, 9, 27):
        clock[0] += timedelta(minutes=minutes)
        service.work()
    row = service.store.row("SELECT state, attempts, reason FROM spool WHERE id = ?", [spool_id])
    assert row["state"] == "quarantined" and row["attempts"] == config.policy.max_attempts
    assert "disk I/O error" in row["reason"]
    alerts = service.store.rows("SELECT kind, recipients FROM outbox")
    assert alerts == [{"kind": "admin_alert", "recipients": '["ops@helpdesk.test"]'}]


def attempts(service, spool_id: int) -> int:
    return service.store.row("SELECT attempts FROM spool WHERE id = ?", [spool_id])["attempts"]


def test_quarantined_mail_comes_back_with_requeue_or_a_second_delivery(tmp_path: Path, database):
    config = write_config(tmp_path)
    store = open_store(database)
    raw = mail("jane@acme.test", "Was stuck", "x").as_bytes()
    spool_id, _ = store.spool(raw, source="smtp", now=NOW)
    store.quarantine(spool_id, "templates missing", NOW)
    again = cli(config, "ingest", "-", stdin=raw)  # the admin delivers it again
    assert again.returncode == 0 and again.stdout.startswith(b"new HD-"), again.stdout
    other, _ = store.spool(
        mail("joe@acme.test", "Also stuck", "y").as_bytes(), source="smtp", now=NOW
    )
    store.quarantine(other, "templates missing", NOW)
    assert cli(config, "requeue", "--all").stdout.strip() == b"1 message(s) back in the queue"
    assert store.pending()[0].id == other


def test_references_never_repeat(store):
    cases = Cases(store)
    with store.transaction():
        refs = [cases.next_reference("HD", 2026) for _ in range(3)]
    assert refs == ["HD-2026-00001", "HD-2026-00002", "HD-2026-00003"]
    assert cases.next_reference("HD", 2027) == "HD-2027-00001"


@pytest.mark.parametrize("newline", [b"\r\n", b"\n", b"\r"])
def test_the_message_id_is_found_whatever_the_line_ends(newline: bytes, tmp_path: Path):
    from helpdeskd.adapters.store import sniff_message_id

    raw = newline.join([b"From: a@b.test", b"Message-ID:", b" <id@b.test>", b"", b"body"])
    assert sniff_message_id(raw) == "id@b.test"


def test_a_case_keeps_any_number_of_clocks_and_one_due_instant(tmp_path: Path):
    from helpdeskd.core import sla
    from tests.ipcelerate import IPCELERATE
    from tests.support import sample_case

    config = configuration.load(write_config(tmp_path, extra=IPCELERATE))
    store = Store.open(tmp_path / "db")
    case = sla.start_clocks(sample_case(id=None, plan="ipcelerate", priority="P1"), config)
    case = sla.escalated(case, config, 1, NOW + timedelta(minutes=5))
    case = sla.agree(case, "workaround", NOW + timedelta(days=30), "bob@helpdesk.test", config, NOW)
    with store.transaction():
        case = Cases(store).save(case, sla.next_due(case, config))
    again = Cases(store).get(case.reference)
    assert again.clocks == case.clocks
    assert [c.name for c in again.clocks] == ["level_one", "level_two", "action_plan", "workaround"]
    assert again.followers == ("executive@helpdesk.test",)
    # the sweep asks one indexed column: the earliest of what every clock owes
    level_one = case.clocks.get("level_one")
    assert Cases(store).due(level_one.warn_at - timedelta(seconds=1)) == []
    assert [c.reference for c in Cases(store).due(level_one.warn_at)] == [case.reference]


def test_a_case_saved_by_an_older_version_reads_its_two_clock_columns(tmp_path: Path):
    store = Store.open(tmp_path / "db")
    deadline, warn = NOW + timedelta(hours=4), NOW + timedelta(hours=3)
    store.insert(
        "cases",
        {
            "reference": "HD-2026-00001",
            "status": "open",
            "priority": "P2",
            "plan": "gold",
            "opened_at": NOW.isoformat(),
            "updated_at": NOW.isoformat(),
            "fr_target": "4h",
            "fr_deadline": deadline.isoformat(),
            "fr_warn_at": warn.isoformat(),
            "res_target": "2d",
            "res_deadline": (NOW + timedelta(days=2)).isoformat(),
            "res_warn_at": (NOW + timedelta(days=1)).isoformat(),
            "res_met_at": NOW.isoformat(),
            "clock_calendar": "always",
            "paused_minutes": 30,
        },
    )
    case = Cases(store).get("HD-2026-00001")
    fr, res = case.clocks.first_response, case.clocks.resolution
    assert (fr.target, fr.deadline, fr.warn_at, fr.stops, fr.paused_minutes) == (
        "4h",
        deadline,
        warn,
        "reply",
        30,
    )
    assert res.met_at == NOW and res.stops == "resolved"
    # saved again, its clocks go to their own rows and read back the same
    with store.transaction():
        Cases(store).save(case, None)
    assert Cases(store).get("HD-2026-00001").clocks == case.clocks
    assert store.count("case_clocks", "case_id = ?", [case.id]) == 2
