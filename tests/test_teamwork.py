"""Reminders and time spent, end to end with fixed clocks (`ingest --now`, `sweep --now`), on
SQLite and on PostgreSQL; the reminders' steps each a process of its own, so every step is a
restart.

Globex is on the "standard" plan: its business calendar is 08:00-17:00 Chicago, Monday to
Friday. The case opens Monday 2026-12-07 10:00 CST."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import delivered, mail, run, run_in_process, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

OPENED = "2026-12-07T10:00:00-06:00"
ALICE, BOB = "alice@helpdesk.test", "bob@helpdesk.test"


def write(
    config: Path,
    sender: str,
    subject: str,
    body: str,
    now: str,
    command: Callable[..., str] = run_in_process,
) -> None:
    """`command`: `run` for a process of its own."""
    message_id = email.utils.make_msgid(domain="laptop.helpdesk.example")
    message = mail(sender, subject, body, message_id=message_id)
    command(config, "ingest", "--now", now, "-", stdin=message.as_bytes())


def reminders(folder: Path) -> list[tuple[str, str]]:
    found = [m for m in delivered(folder) if "Reminder" in m["Subject"]]
    return [(str(m["To"]), str(m["Subject"])) for m in found]


@pytest.fixture
def case(tmp_path: Path, database) -> tuple[Path, str]:
    config = write_config(tmp_path)
    write(config, "boss@globex.test", "Reports are empty", "Every report is empty.", OPENED)
    reference = json.loads(run_in_process(config, "cases", "--json"))[0]["reference"]
    return config, reference


def test_a_reminder_goes_once_at_its_moment_across_restarts(case, tmp_path: Path):
    config, reference = case
    subject = f"Re: [{reference}] Reports are empty"
    # two working days from Monday 10:30 is Wednesday 10:30
    write(config, ALICE, subject, "#remind 2d\n#remind bob@helpdesk.test 2026-12-08 09:00\n",
          "2026-12-07T10:30:00-06:00", command=run)  # fmt: skip
    shown = json.loads(run(config, "show", reference, "--json"))
    assert shown["reminders"] == [
        {"to": BOB, "at": "2026-12-08T09:00:00-06:00", "set_by": ALICE},
        {"to": ALICE, "at": "2026-12-09T10:30:00-06:00", "set_by": ALICE},
    ]
    assert "2026-12-09 10:30 CST  to alice@helpdesk.test" in run(config, "show", reference)
    run(config, "sweep", "--now", "2026-12-08T08:59:00-06:00")
    assert reminders(tmp_path) == []
    swept = json.loads(run(config, "sweep", "--now", "2026-12-08T09:00:00-06:00", "--json"))
    assert [(s["action"], s["to"]) for s in swept if s["action"] == "remind"] == [("remind", [BOB])]
    run(config, "sweep", "--now", "2026-12-09T10:30:00-06:00")
    run(config, "sweep", "--now", "2026-12-09T11:00:00-06:00")  # never twice
    assert reminders(tmp_path) == [
        (BOB, f"[{reference}] Reminder: Reports are empty"),
        (ALICE, f"[{reference}] Reminder: Reports are empty"),
    ]
    sent = [m for m in delivered(tmp_path) if "Reminder" in m["Subject"]]
    assert "set by alice@helpdesk.test" in sent[0].get_body(("plain",)).get_content()
    assert not any("globex" in str(m["To"]) for m in sent)
    assert json.loads(run(config, "show", reference, "--json"))["reminders"] == []


def test_a_reminder_for_a_moment_past_or_a_stranger_applies_nothing(case, tmp_path: Path):
    config, reference = case
    subject = f"Re: [{reference}] Reports are empty"
    write(config, ALICE, subject, "#time 30m\n#remind 2026-12-01 09:00\n",
          "2026-12-07T10:30:00-06:00")  # fmt: skip
    write(config, ALICE, subject, "#remind boss@globex.test 1d\n", "2026-12-07T10:40:00-06:00")
    shown = json.loads(run_in_process(config, "show", reference, "--json"))
    assert shown["reminders"] == [] and shown["time_minutes"] == {}
    errors = [m for m in delivered(tmp_path) if "Not applied" in m["Subject"]]
    assert len(errors) == 2 and all(ALICE in str(m["To"]) for m in errors)
    assert "already past" in errors[0].get_body(("plain",)).get_content()
    assert "not an engineer" in errors[1].get_body(("plain",)).get_content()


def test_time_is_totalled_per_engineer_and_reported(case):
    config, reference = case
    subject = f"Re: [{reference}] Reports are empty"
    write(config, ALICE, subject, "#time 45m\n", "2026-12-07T11:00:00-06:00")
    write(config, BOB, subject, "#time 1h30m\n#note\n\nLooked at the logs.",
          "2026-12-07T12:00:00-06:00")  # fmt: skip
    write(config, ALICE, subject, "#time 1h\n", "2026-12-08T09:00:00-06:00")
    shown = json.loads(run_in_process(config, "show", reference, "--json"))
    assert shown["time_minutes"] == {ALICE: 105, BOB: 90}
    text = run_in_process(config, "show", reference)
    assert "time spent: 3h15m" in text and "alice@helpdesk.test  1h45m" in text
    rows = json.loads(run_in_process(config, "report", "--time", "--format", "json"))
    assert rows == [
        {"customer": "Globex", "plan": "standard", "priority": "P3", "cases": 1, "minutes": 195,
         "engineers": {ALICE: 105, BOB: 90}}
    ]  # fmt: skip
    day = run_in_process(config, "report", "--time", "--format", "csv", "--since", "2026-12-08")
    assert day.splitlines() == [
        "customer,plan,priority,cases,minutes,hours",
        "Globex,standard,P3,1,60,1.00",
    ]
