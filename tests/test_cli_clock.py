"""One clock on screen: a case on a calendar in UTC, a helpdesk in America/Chicago. People see
every time in the helpdesk's zone with the zone shown, deadlines in the calendar's; scripts get
ISO 8601 with the offset; `--now` and dates without a zone are the helpdesk's time.

Acme is on gold, counted on the 24x7 calendar `always` (UTC): a P3 case's first response is due
2h after it opens. Outgoing mail goes to a relay that is not there, so it waits in the outbox.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support import Sink, mail, write_config
from tests.support import run_in_process as run

OPENED = "2026-11-18T15:00:00Z"  # 09:00 in Chicago (CST, UTC-6)
LATE = "2026-11-19T03:00:00Z"  # 21:00 on the 18th in Chicago, the 19th in UTC


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clock")
    config = write_config(folder, relay_port=Sink().port)  # never started: mail waits
    first = mail("jane@acme.test", "Help", "x").as_bytes()
    run(config, "ingest", "--now", OPENED, "-", stdin=first)
    run(config, "ingest", "--now", LATE, "-", stdin=mail("joe@acme.test", "Late", "y").as_bytes())
    bounce = mail(
        "mailer-daemon@acme.test", "Undelivered", "z", headers={"Auto-Submitted": "auto-replied"}
    )
    run(config, "ingest", "--now", OPENED, "-", stdin=bounce.as_bytes())
    return config


def reference(config: Path, subject: str) -> str:
    cases = json.loads(run(config, "cases", "--json"))
    return next(c["reference"] for c in cases if c["subject"] == subject)


def no_other_zone(text: str) -> None:
    assert "UTC" not in text and "+00:00" not in text and "T15:00" not in text, text


def test_cases_shows_the_helpdesks_time(config):
    text = run(config, "cases")
    assert re.search(r"Help\s*$", text, re.M)
    assert "2026-11-18 09:00 CST" in text and "2026-11-18 21:00 CST" in text
    no_other_zone(text)
    for found in json.loads(run(config, "cases", "--json")):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", found["opened_at"])


def test_unrouted_shows_the_helpdesks_time(config):
    text = run(config, "cases", "--unrouted")
    assert "2026-11-18 09:00 CST" in text
    no_other_zone(text)


def test_outbox_shows_the_helpdesks_time(config):
    text = run(config, "outbox")
    rows = [line for line in text.splitlines()[1:] if line.strip()]
    assert rows and all(re.search(r"20\d\d-\d\d-\d\d \d\d:\d\d CST", r) for r in rows), text
    no_other_zone(text)
    for row in json.loads(run(config, "outbox", "--json")):
        assert row["next_attempt_at"].endswith("+00:00") and isinstance(row["recipients"], list)


def test_show_history_in_the_helpdesks_zone_deadlines_in_the_calendars(config):
    ref = reference(config, "Help")
    # 10:00 without a zone is Chicago's 10:00, 16:00 UTC: one hour after opening
    text = run(config, "show", ref, "--now", "2026-11-18T10:00")
    clock = next(line for line in text.splitlines() if "first_response" in line)
    assert "deadline 2026-11-18 17:00 UTC" in clock and "1h used, 1h left" in clock
    history = text.split("history")[1]
    assert "2026-11-18 09:00 CST  <- customer" in history and "UTC" not in history
    detail = json.loads(run(config, "show", ref, "--json", "--now", "2026-11-18T10:00"))
    deadline = detail["clocks"][0]
    assert deadline["deadline"] == "2026-11-18T17:00:00+00:00" and deadline["timezone"] == "UTC"


def test_a_met_clock_says_when_not_what_was_left(tmp_path):
    config = write_config(tmp_path)
    run(
        config, "ingest", "--now", OPENED, "-", stdin=mail("jane@acme.test", "Help", "x").as_bytes()
    )
    ref = reference(config, "Help")
    reply = mail("alice@helpdesk.test", f"Re: [{ref}] Help", "On it.")
    run(config, "ingest", "--now", "2026-11-18T09:30", "-", stdin=reply.as_bytes())
    text = run(config, "show", ref, "--now", "2026-11-18T12:00")
    clock = next(line for line in text.splitlines() if "first_response" in line)
    assert clock.endswith("met 2026-11-18 15:30 UTC, 30m used"), clock
    assert "left" not in clock


def test_report_days_are_the_helpdesks(config):
    # the late case opened on the 18th in Chicago, though on the 19th in UTC
    text = run(config, "report", "--since", "2026-11-18", "--until", "2026-11-19", "--now", LATE)
    assert re.search(r"gold\s+P3\s+Acme\s+2\b", text), text
    assert text.rstrip().endswith("from 2026-11-18 00:00 CST until 2026-11-19 00:00 CST")
    nothing = run(config, "report", "--since", "2026-11-19", "--format", "json", "--now", LATE)
    assert json.loads(nothing) == []


def test_now_without_a_zone_is_the_helpdesks_time(config):
    # "Late" opened 21:00 CST (03:00 UTC); gold P3 warns at 80% of 2h: 22:36 CST
    late = reference(config, "Late")
    local = json.loads(run(config, "sweep", "--dry-run", "--json", "--now", "2026-11-18T22:40"))
    assert late in {a["reference"] for a in local}
    utc = json.loads(run(config, "sweep", "--dry-run", "--json", "--now", "2026-11-18T22:40Z"))
    assert late not in {a["reference"] for a in utc}  # the same digits in UTC: not yet open
