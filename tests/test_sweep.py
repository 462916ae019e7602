"""Scheduler flows driven through the command line, `ingest --now` and `sweep --now`, against a
real SQLite file and a real PostgreSQL database (the `database` fixture), with outgoing mail
written to a Maildir.

The test configuration's `standard` plan counts on America/Chicago business hours, Monday to
Friday 08:00-17:00 (UTC-5 in April 2026); "urgent" in a subject makes a case P2 (first response
in 4h, warned at 0.8 of it); the lead is told at warn_at and the manager at the deadline; a case
waiting on its customer is warned after 3 working days and closed 2 working days later.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import mailbox
from datetime import UTC, datetime

import pytest

from helpdeskd import config as configuration
from helpdeskd import sweep as sweep_module
from helpdeskd.adapters.store import Cases, open_store
from tests.support import mail, write_config
from tests.support import run_in_process as run

FRIDAY_1630 = "2026-04-17T16:30:00-05:00"


@pytest.fixture
def config(tmp_path, database):
    return write_config(tmp_path)


def ingest(config, message, now: str) -> str:
    return run(config, "ingest", "--now", now, stdin=bytes(message))


def sweep(config, now: str, *options: str) -> list[dict]:
    return json.loads(run(config, "sweep", "--now", now, "--json", *options))


def show(config, reference: str) -> dict:
    return json.loads(run(config, "show", reference, "--json"))


def sent(config) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(config.parent / "maildir"), create=True)
    return [email.message_from_bytes(bytes(m), policy=email.policy.default) for m in box]


def sent_to(config, address: str, subject_part: str) -> list:
    return [
        m for m in sent(config) if address in str(m["To"]) and subject_part in str(m["Subject"])
    ]


def saying(config, address: str, words: str) -> list:
    """Mail to `address` whose body says `words` (a Maildir keeps no order)."""
    return [m for m in sent_to(config, address, "") if words in m.get_content()]


def actions(found: list[dict]) -> list[tuple[str, str, list[str]]]:
    return [(a["reference"], a["action"], a["to"]) for a in found]


def open_case(
    config,
    sender: str = "boss@globex.test",
    now: str = FRIDAY_1630,
    subject: str = "urgent: the printer is on fire",
) -> str:
    ingest(config, mail(sender, subject, "Smoke everywhere."), now)
    cases = json.loads(run(config, "cases", "--json"))
    return cases[-1]["reference"]


def engineer_reply(config, reference: str, body: str, now: str) -> None:
    # a Message-ID under the helpdesk's own domain would read as our own mail coming back
    message_id = email.utils.make_msgid(domain="laptop.helpdesk.example")
    ingest(
        config,
        mail("alice@helpdesk.test", f"Re: [{reference}] printer", body, message_id=message_id),
        now,
    )


def customer_reply(config, reference: str, body: str, now: str) -> None:
    ingest(config, mail("boss@globex.test", f"Re: [{reference}] printer", body), now)


# -- warnings, breaches, escalation ---------------------------------------------------------


def test_warning_at_warn_at_then_escalation_on_breach_each_sent_once(config):
    ref = open_case(config)
    fr = show(config, ref)["clocks"][0]
    assert fr["name"] == "first_response"
    assert (fr["deadline"], fr["warn_at"]) == (
        "2026-04-20T11:30:00-05:00",
        "2026-04-20T10:42:00-05:00",
    )

    assert sweep(config, "2026-04-20T10:41:00-05:00") == []
    warned = sweep(config, "2026-04-20T10:42:00-05:00")
    assert actions(warned) == [
        (ref, "warn", ["alice@helpdesk.test"]),
        (ref, "escalate", ["lead@helpdesk.test", "boss@globex.test"]),
    ]
    assert warned[1]["level"] == 1
    assert sweep(config, "2026-04-20T10:42:00-05:00") == []
    assert sweep(config, "2026-04-20T11:29:00-05:00") == []

    breached = sweep(config, "2026-04-20T11:30:00-05:00")
    assert actions(breached) == [
        (ref, "breach", ["alice@helpdesk.test"]),
        (ref, "escalate", ["manager@helpdesk.test", "boss@globex.test"]),
    ]
    assert sweep(config, "2026-04-20T11:30:00-05:00") == []

    detail = show(config, ref)
    assert detail["escalation_level"] == 2
    out = [m["kind"] for m in detail["messages"] if m["direction"] == "out"]
    assert out.count("sla_warning") == 1 and out.count("sla_breach") == 1
    assert len(sent_to(config, "alice@helpdesk.test", "SLA warning")) == 1
    assert len(sent_to(config, "alice@helpdesk.test", "SLA breached")) == 1
    assert len(sent_to(config, "lead@helpdesk.test", "Escalated (level 1)")) == 1
    (manager,) = sent_to(config, "manager@helpdesk.test", "Escalated (level 2)")
    assert manager["Auto-Submitted"] == "auto-generated"
    assert "first response 0m late" in manager.get_content()
    assert len(saying(config, "boss@globex.test", "has been escalated")) == 2


def test_the_escalation_says_how_late(config):
    ref = open_case(config)
    sweep(config, "2026-04-20T12:50:00-05:00")  # 1h20 of working time past the deadline
    (manager,) = sent_to(config, "manager@helpdesk.test", ref)
    assert "first response 1h 20m late" in manager.get_content()


def test_dry_run_lists_and_writes_nothing(config):
    ref = open_case(config)
    dry = sweep(config, "2026-04-20T10:42:00-05:00", "--dry-run")
    assert [a["action"] for a in dry] == ["warn", "escalate"]
    assert show(config, ref)["escalation_level"] == 0
    before = len(sent(config))
    assert [a["action"] for a in sweep(config, "2026-04-20T10:42:00-05:00")] == ["warn", "escalate"]
    assert len(sent(config)) == before + 3


def test_a_weekend_off_catches_up_with_one_notice_per_case_per_kind(config):
    refs = [open_case(config, f"user{i}@example.org") for i in range(3)]
    # nobody swept from Friday evening to Monday afternoon: warn_at and deadline both passed
    found = sweep(config, "2026-04-20T14:00:00-05:00")
    assert sorted(actions(found)) == sorted(
        [(ref, "breach", ["alice@helpdesk.test"]) for ref in refs]
        + [
            (ref, "escalate", ["manager@helpdesk.test", f"user{i}@example.org"])
            for i, ref in enumerate(refs)
        ]
    )
    assert sweep(config, "2026-04-20T14:01:00-05:00") == []
    assert sent_to(config, "lead@helpdesk.test", "") == []
    assert sent_to(config, "alice@helpdesk.test", "SLA warning") == []
    for ref in refs:
        assert len(sent_to(config, "alice@helpdesk.test", f"[{ref}] SLA breached")) == 1
        assert show(config, ref)["escalation_level"] == 2


def test_escalate_by_hand_is_not_repeated_by_the_scheduler(config):
    ref = open_case(config)
    engineer_reply(config, ref, "#escalate\n", "2026-04-20T09:00:00-05:00")
    assert show(config, ref)["escalation_level"] == 1
    assert len(sent_to(config, "lead@helpdesk.test", "Escalated (level 1)")) == 1
    found = sweep(config, "2026-04-20T10:42:00-05:00")
    assert actions(found) == [(ref, "warn", ["alice@helpdesk.test"])]
    assert len(sent_to(config, "lead@helpdesk.test", "Escalated (level 1)")) == 1


def test_a_new_priority_moves_the_deadlines_and_the_sweep_follows(config):
    ref = open_case(config)
    engineer_reply(config, ref, "#priority P1\n", "2026-04-17T16:40:00-05:00")
    fr = show(config, ref)["clocks"][0]
    # P1 counts on the 24x7 calendar, in its own time zone (UTC): 2h from 21:30 UTC
    assert (fr["target"], fr["calendar"]) == ("2h", "always")
    assert fr["deadline"] == "2026-04-17T23:30:00+00:00"
    assert [a["action"] for a in sweep(config, "2026-04-17T23:06:00+00:00")] == [
        "warn",
        "escalate",
    ]


# -- the closing rule -----------------------------------------------------------------------


def waiting_case(config) -> str:
    """Opened Monday 09:00, put waiting by the engineer at 10:00 with a question."""
    ref = open_case(config, now="2026-04-20T09:00:00-05:00", subject="printer jams")
    engineer_reply(config, ref, "#waiting\n\nWhich model is it?", "2026-04-20T10:00:00-05:00")
    detail = show(config, ref)
    assert detail["status"] == "waiting"
    assert all(c["paused"] for c in detail["clocks"] if c["name"] == "resolution")
    return ref


def test_waiting_then_closing_warning_then_closed(config):
    ref = waiting_case(config)
    assert sweep(config, "2026-04-23T09:59:00-05:00") == []
    warned = sweep(config, "2026-04-23T10:00:00-05:00")
    assert actions(warned) == [(ref, "closing_warning", ["boss@globex.test"])]
    assert sweep(config, "2026-04-23T10:00:00-05:00") == []
    (warning,) = saying(config, "boss@globex.test", "still waiting for your answer")
    assert "closed within 2 working days" in warning.get_content()
    assert warning["Auto-Submitted"] == "auto-generated"

    assert sweep(config, "2026-04-27T09:59:00-05:00") == []
    closed = sweep(config, "2026-04-27T10:00:00-05:00")
    assert actions(closed) == [(ref, "close", ["boss@globex.test"])]
    assert sweep(config, "2026-04-28T10:00:00-05:00") == []
    detail = show(config, ref)
    assert detail["status"] == "closed"
    kinds = [m["kind"] for m in detail["messages"] if m["direction"] == "out"]
    assert kinds.count("closing_warning") == 1 and kinds.count("closed") == 1
    (closing,) = saying(config, "boss@globex.test", "is now closed")
    assert "as we did not hear back from you" in closing.get_content()


def test_a_customer_reply_cancels_the_closing(config):
    ref = waiting_case(config)
    assert [a["action"] for a in sweep(config, "2026-04-23T10:00:00-05:00")] == ["closing_warning"]
    customer_reply(config, ref, "It is the LaserJet 4000.", "2026-04-24T09:00:00-05:00")
    assert show(config, ref)["status"] == "open"
    found = sweep(config, "2026-04-27T10:00:00-05:00")
    assert "close" not in [a["action"] for a in found]
    detail = show(config, ref)
    assert detail["status"] == "open"
    assert not any(c["paused"] for c in detail["clocks"])


def test_closing_mail_waits_for_working_hours(config):
    ref = waiting_case(config)
    # due Thursday 10:00; a sweep that only runs at night sends nothing until the morning
    assert sweep(config, "2026-04-23T20:00:00-05:00") == []
    assert sweep(config, "2026-04-25T11:00:00-05:00") == []  # Saturday
    found = sweep(config, "2026-04-27T08:00:00-05:00")
    assert actions(found) == [(ref, "closing_warning", ["boss@globex.test"])]
    # the customer gets two full working days from then: closed Wednesday 08:00
    assert sweep(config, "2026-04-28T16:59:00-05:00") == []
    assert [a["action"] for a in sweep(config, "2026-04-29T08:00:00-05:00")] == ["close"]


def test_due_cases_are_read_in_batches_until_none_is_left(config, monkeypatch):
    refs = [open_case(config, f"user{i}@example.org") for i in range(5)]
    monkeypatch.setattr(sweep_module, "BATCH", 2)
    settings = configuration.load(config)
    store = open_store(settings.helpdesk.database)
    monday = datetime(2026, 4, 20, 19, 0, tzinfo=UTC)
    assert len(sweep_module.run(store, settings, monday, dry_run=True)) == 10
    found = sweep_module.run(store, settings, monday)
    assert sorted({a["reference"] for a in found}) == refs
    assert len(found) == 10
    assert sweep_module.run(store, settings, monday) == []
    assert Cases(store).due(monday) == []


def test_the_daemon_sweeps_in_slices_between_looks_at_the_spool(config, monkeypatch):
    from helpdeskd import service

    for n in range(3):
        ingest(config, mail(f"user{n}@acme.test", f"Slice {n}", "x"), "2026-04-20T09:00:00-05:00")
    later = datetime(2026, 4, 20, 21, 0, tzinfo=UTC)  # 16:00 in Chicago, both clocks past due
    daemon = service.Service(configuration.load(config), clock=lambda: later)
    monkeypatch.setattr(service, "SWEEP_SLICE", 2)
    daemon.renew_leases()  # the sweep's lease, taken as at the daemon's start
    daemon.request_sweep()
    assert daemon.work() is True  # two settled, one left: the worker comes back for it
    daemon.work()
    swept = daemon.store.rows("SELECT DISTINCT case_id FROM events WHERE kind != 'opened'")
    assert len(swept) == 3 and not daemon.sweep_requested.is_set()


def test_a_broken_case_is_undone_alone_and_stays_due(config, monkeypatch):
    """Cases are settled several to a transaction; one that fails half-way leaves nothing
    behind and is tried again by the next sweep, the others are settled."""
    refs = [open_case(config, f"user{i}@example.org") for i in range(3)]
    queue_step = sweep_module.queue_step

    def breaks_on_the_second(store, config, case, step, thread, now):
        done = queue_step(store, config, case, step, thread, now)  # written, then undone
        if case.reference == refs[1]:
            raise RuntimeError("template error")
        return done

    monkeypatch.setattr(sweep_module, "queue_step", breaks_on_the_second)
    settings = configuration.load(config)
    store = open_store(settings.helpdesk.database)
    monday = datetime(2026, 4, 20, 19, 0, tzinfo=UTC)
    found = sweep_module.run(store, settings, monday)
    assert sorted({a["reference"] for a in found}) == [refs[0], refs[2]]
    assert [c.reference for c in Cases(store).due(monday)] == [refs[1]]
    broken = Cases(store).get(refs[1])
    assert [e["kind"] for e in Cases(store).events(broken.id)] == ["opened"]
