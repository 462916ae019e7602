"""The on-call rota, end to end with fixed clocks (`ingest --now`, `sweep --now`), on SQLite
and on PostgreSQL: a P1 opened at 03:00 pages the person on call, the next one after
`ack_within` (5m), then the escalation ladder; `#ack` stops that; nobody is paged in working hours.

The rota: alice from Monday 2026-11-30 09:00 Chicago, bob from Monday 2026-12-07 09:00, weekly;
the team covers the business calendar (Monday to Friday 08:00-17:00 Chicago) without it."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from tests.support import delivered, mail, write_config
from tests.support import run_in_process as run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROTA = """
[oncall]
rotation = ["alice@helpdesk.test", "bob@helpdesk.test"]
starts = "2026-11-30"
handover = "mon 09:00"
team_calendar = "business"
priorities = ["P1"]
ack_within = "5m"
"""
ALICE, BOB = "alice@helpdesk.test", "bob@helpdesk.test"
NIGHT = "2026-12-09T03:00:00-06:00"  # Wednesday, on bob's week


def write(config: Path, sender: str, subject: str, body: str, now: str) -> None:
    message = mail(sender, subject, body, message_id=email.utils.make_msgid(domain="x.test"))
    run(config, "ingest", "--now", now, "-", stdin=message.as_bytes())


def pages(folder: Path) -> list[str]:
    return [str(m["To"]) for m in delivered(folder) if str(m["Subject"]).count("PAGE")]


@pytest.fixture
def config(tmp_path: Path, database) -> Path:
    return write_config(tmp_path, extra=ROTA)


def open_outage(config: Path, now: str) -> str:
    write(config, "ops@acme.test", "Production is down", "Outage since a minute ago.", now)
    return json.loads(run(config, "cases", "--json"))[-1]["reference"]


def test_a_night_outage_pages_on_call_then_the_next_then_the_ladder(config, tmp_path: Path):
    reference = open_outage(config, NIGHT)
    assert pages(tmp_path) == [BOB]
    run(config, "sweep", "--now", "2026-12-09T03:04:00-06:00")
    assert pages(tmp_path) == [BOB]
    swept = json.loads(run(config, "sweep", "--now", "2026-12-09T03:05:00-06:00", "--json"))
    assert {"reference": reference, "action": "page", "to": [ALICE]} in swept
    assert pages(tmp_path) == [BOB, ALICE]
    swept = json.loads(run(config, "sweep", "--now", "2026-12-09T03:10:00-06:00", "--json"))
    # the ladder's first level, and the customer told their case was escalated, as ever
    to = ["lead@helpdesk.test", "ops@acme.test"]
    assert {"reference": reference, "action": "escalate", "to": to} in swept
    run(config, "sweep", "--now", "2026-12-09T03:20:00-06:00")  # nothing more from the rota
    assert pages(tmp_path) == [BOB, ALICE]
    shown = json.loads(run(config, "show", reference, "--json"))
    assert shown["escalation_level"] == 1
    paged = [e["detail"] for e in shown["events"] if e["kind"] == "page"]
    assert paged == [
        "bob@helpdesk.test paged (on call)",
        "alice@helpdesk.test paged: bob@helpdesk.test did not answer the page within 5m",
    ]


def test_an_ack_stops_the_rota(config, tmp_path: Path):
    reference = open_outage(config, NIGHT)
    write(config, BOB, f"Re: [{reference}] Production is down", "#ack\n",
          "2026-12-09T03:05:00-06:00")  # fmt: skip
    run(config, "sweep", "--now", "2026-12-09T03:10:00-06:00")
    run(config, "sweep", "--now", "2026-12-09T03:20:00-06:00")
    assert pages(tmp_path) == [BOB]
    shown = json.loads(run(config, "show", reference, "--json"))
    assert ("ack", "page answered by bob@helpdesk.test") in [
        (e["kind"], e["detail"]) for e in shown["events"]
    ]


def test_nobody_is_paged_in_working_hours_nor_for_a_lesser_priority(config, tmp_path: Path):
    open_outage(config, "2026-12-09T10:00:00-06:00")
    write(config, "ops@acme.test", "A question", "How do I export?", NIGHT)
    run(config, "sweep", "--now", "2026-12-09T11:00:00-06:00")
    assert pages(tmp_path) == []


def test_a_warning_reached_out_of_hours_pages(config, tmp_path: Path):
    """Acme's P1 (gold: first response 30m, warned at 24m) opened at 16:50, in working hours,
    is warned at 17:14, after them: bob is paged then, once."""
    reference = open_outage(config, "2026-12-09T16:50:00-06:00")
    assert pages(tmp_path) == []
    swept = json.loads(run(config, "sweep", "--now", "2026-12-09T17:14:00-06:00", "--json"))
    assert {"reference": reference, "action": "page", "to": [BOB]} in swept
    run(config, "sweep", "--now", "2026-12-09T17:16:00-06:00")
    assert pages(tmp_path) == [BOB]


def test_oncall_shows_now_and_next(config):
    shown = json.loads(run(config, "oncall", "--now", NIGHT, "--json"))
    assert shown == {
        "now": BOB,
        "since": "2026-12-07T09:00:00-06:00",
        "next": ALICE,
        "from": "2026-12-14T09:00:00-06:00",
    }
    text = run(config, "oncall", "--now", "2026-11-30T08:59:00-06:00")
    assert "nobody" in text and "alice@helpdesk.test  from 2026-11-30 09:00 CST" in text


def test_a_mistaken_rota_is_refused_with_its_keys(tmp_path: Path):
    bad = ROTA.replace("mon 09:00", "monday 9am").replace('"business"', '"nights"')
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(write_config(tmp_path, extra=bad))
    keys = [key for key, _ in refused.value.problems]
    assert "oncall.handover" in keys and "oncall.team_calendar" in keys
