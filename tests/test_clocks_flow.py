"""An IPcelerate P1 case through the real flow (`ingest --now`, real SQLite, the CLI): four named
clocks on `show`, `show --json`, `cases` and `report`; `#escalate`, `#tier 2`, `#due` and `#plan`
from an engineer. Outgoing mail goes to a relay that is not there, so it waits in the outbox.

Opened Friday 2026-11-20 16:00 CST (a P1: "outage"); escalated and handed to tier 2 at 16:30.
"""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import pytest

from tests.ipcelerate import IPCELERATE
from tests.support import Sink, mail, write_config
from tests.support import run_in_process as run

OPENED = "2026-11-20T16:00:00-06:00"
HANDED = "2026-11-20T16:30:00-06:00"
AGREED = "2026-11-20T16:40:00-06:00"
NOW = "2026-11-20T17:00:00-06:00"


def engineer(config: Path, reference: str, body: str, now: str) -> None:
    message_id = email.utils.make_msgid(domain="laptop.helpdesk.example")
    reply = mail("alice@helpdesk.test", f"Re: [{reference}] x", body, message_id=message_id)
    run(config, "ingest", "--now", now, "-", stdin=reply.as_bytes())


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("flow")
    config = write_config(folder, relay_port=Sink().port, extra=IPCELERATE)
    opened = mail("jane@ipcelerate.test", "Routing outage", "All routes are down.")
    run(config, "ingest", "--now", OPENED, "-", stdin=opened.as_bytes())
    reference = json.loads(run(config, "cases", "--json"))[0]["reference"]
    engineer(config, reference, "#escalate\n#tier 2\n", HANDED)
    engineer(config, reference, "#due workaround 2026-12-04 12:00\n", AGREED)
    engineer(config, reference, "#plan Replace the line card tonight.\n", NOW)
    return config, reference


def test_show_lists_the_four_clocks_by_name(case):
    config, reference = case
    found = json.loads(run(config, "show", reference, "--json", "--now", NOW))
    clocks = {c["name"]: c for c in found["clocks"]}
    assert list(clocks) == ["level_one", "level_two", "action_plan", "workaround"]
    assert found["priority"] == "P1" and found["tier"] == 2
    assert found["followers"] == ["executive@helpdesk.test"]
    assert {k: clocks["level_one"][k] for k in ("target", "calendar", "paused", "met")} == {
        "target": "2h",
        "calendar": "around-the-clock",
        "paused": False,
        "met": None,
    }
    assert clocks["level_one"]["deadline"] == "2026-11-20T18:00:00-06:00"
    assert clocks["level_two"]["deadline"] == "2026-11-20T18:30:00-06:00"
    # escalated Friday 16:30: three business days of "central" is Wednesday 16:30, met now
    assert clocks["action_plan"]["deadline"] == "2026-11-25T16:30:00-06:00"
    assert clocks["action_plan"]["met"] is True
    assert clocks["workaround"]["deadline"] == "2026-12-04T12:00:00-06:00"
    assert clocks["workaround"]["agreed"] == {
        "by": "alice@helpdesk.test",
        "at": "2026-11-20T16:40:00-06:00",
    }
    text = run(config, "show", reference, "--now", NOW)
    assert "followers executive@helpdesk.test" in text and "tier 2" in text
    assert "workaround      target 10d   deadline 2026-12-04 12:00 CST" in text
    assert "(agreed by alice@helpdesk.test, 2026-11-20 16:40 CST)" in text


def test_cases_and_report_name_every_clock(case):
    config, _ = case
    (listed,) = json.loads(run(config, "cases", "--json"))
    assert (listed["next_clock"], listed["next_deadline"]) == (
        "level_one",
        "2026-11-20T18:00:00-06:00",
    )
    (row,) = json.loads(run(config, "report", "--format", "json", "--now", NOW))
    assert row["action_plan"]["met"] == 1 and row["action_plan"]["mean_minutes"] == 30
    assert row["level_one"]["running"] == 1
