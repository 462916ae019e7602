"""`helpdeskd report`: SLA compliance per plan, priority and customer, on cases opened through
the real flow with `ingest --now` and judged at a fixed `--now`.

The test configuration's helpdesk time zone is America/Chicago (UTC-5 in April 2026). Five cases,
Monday 20 and Tuesday 21 April 2026, local time; an engineer's reply meets the first-response
clock:

    A  Acme     gold P3 (2h, 24x7)          Mon 10:00, answered 10:45       met, 45m
    B  Globex   standard P2 (4h, business)  Mon 09:00, due 13:00, answered 14:00   breached, 5h
    C  Acme     gold P1 (30m, 24x7)         Mon 23:30 (Tuesday in UTC), answered 23:50  met, 20m
    D  unknown  standard P3 (1d = 9h)       Tue 09:00, due Wed 09:00, no answer  running
    E  Acme     gold P3 (2h, 24x7)          Tue 08:00, due 10:00, no answer  breached

Judged on Tuesday at noon; every resolution clock is still running.
"""

from __future__ import annotations

import csv
import email.utils
import io
import json
from datetime import UTC, datetime

import pytest

from helpdeskd import config as configuration
from helpdeskd import report
from helpdeskd.adapters.store import Cases, Store
from tests.support import mail, run_in_process, write_config

NOW = "2026-04-21T12:00:00-05:00"


def ingest(config, message, now: str) -> None:
    run_in_process(config, "ingest", "--now", now, stdin=bytes(message))


def open_case(config, sender: str, subject: str, now: str) -> str:
    ingest(config, mail(sender, subject, "Please have a look."), now)
    return json.loads(run_in_process(config, "cases", "--json"))[-1]["reference"]


def engineer_reply(config, reference: str, now: str) -> None:
    # a Message-ID under the helpdesk's own domain would read as our own mail coming back
    message_id = email.utils.make_msgid(domain="laptop.helpdesk.example")
    reply = mail("alice@helpdesk.test", f"Re: [{reference}] x", "On it.", message_id=message_id)
    ingest(config, reply, now)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("report"))
    a = open_case(config, "jane@acme.test", "Question about invoices", "2026-04-20T10:00:00-05:00")
    engineer_reply(config, a, "2026-04-20T10:45:00-05:00")
    b = open_case(config, "boss@globex.test", "urgent: printer", "2026-04-20T09:00:00-05:00")
    engineer_reply(config, b, "2026-04-20T14:00:00-05:00")
    c = open_case(config, "joe@acme.test", "Server down", "2026-04-20T23:30:00-05:00")
    engineer_reply(config, c, "2026-04-20T23:50:00-05:00")
    open_case(config, "who@nowhere.test", "Hello", "2026-04-21T09:00:00-05:00")
    open_case(config, "ann@acme.test", "Another question", "2026-04-21T08:00:00-05:00")
    return config


def run(config, *options: str) -> str:
    return run_in_process(config, "report", "--now", NOW, *options)


def clocks(met: int, breached: int, running: int, compliance: float | None) -> dict:
    return {"met": met, "breached": breached, "running": running, "compliance": compliance}


def row(plan, priority, customer, cases, first_response, resolution, median) -> dict:
    """Here no resolution clock is met, and no group has two answered cases of different
    times: the mean of the first responses is their median."""
    no_times = {"median_minutes": None, "mean_minutes": None}
    mean = None if median is None else float(median)
    return {
        "plan": plan,
        "priority": priority,
        "customer": customer,
        "cases": cases,
        "first_response": {**first_response, "median_minutes": median, "mean_minutes": mean},
        "resolution": {**resolution, **no_times},
        "median_first_response_minutes": median,
        "mean_first_response_minutes": mean,
    }


def test_json_gives_every_group_its_clocks_compliance_and_median(config):
    assert json.loads(run(config, "--format", "json")) == [
        row("gold", "P1", "Acme", 1, clocks(1, 0, 0, 100.0), clocks(0, 0, 1, None), 20),
        row("gold", "P3", "Acme", 2, clocks(1, 1, 0, 50.0), clocks(0, 0, 2, None), 45),
        row("standard", "P2", "Globex", 1, clocks(0, 1, 0, 0.0), clocks(0, 0, 1, None), 300),
        row("standard", "P3", None, 1, clocks(0, 0, 1, None), clocks(0, 0, 1, None), None),
    ]


def test_since_and_until_are_days_in_the_helpdesk_time_zone(config):
    # C opened at 04:30 UTC on the 21st, which is still Monday the 20th in Chicago
    monday = json.loads(
        run(config, "--since", "2026-04-20", "--until", "2026-04-21", "--format", "json")
    )
    assert [(r["plan"], r["priority"], r["cases"]) for r in monday] == [
        ("gold", "P1", 1),
        ("gold", "P3", 1),
        ("standard", "P2", 1),
    ]
    assert monday[1]["first_response"] == {
        **clocks(1, 0, 0, 100.0),
        "median_minutes": 45,
        "mean_minutes": 45,
    }
    tuesday = json.loads(run(config, "--since", "2026-04-21", "--format", "json"))
    assert tuesday == [
        row("gold", "P3", "Acme", 1, clocks(0, 1, 0, 0.0), clocks(0, 0, 1, None), None),
        row("standard", "P3", None, 1, clocks(0, 0, 1, None), clocks(0, 0, 1, None), None),
    ]
    assert json.loads(run(config, "--until", "2026-04-20", "--format", "json")) == []


def test_csv_has_one_flat_row_per_group(config):
    rows = list(csv.DictReader(io.StringIO(run(config, "--format", "csv"))))
    assert [r["customer"] for r in rows] == ["Acme", "Acme", "Globex", "(unknown sender)"]
    assert rows[1] == {
        "plan": "gold",
        "priority": "P3",
        "customer": "Acme",
        "cases": "2",
        "first_response_met": "1",
        "first_response_breached": "1",
        "first_response_running": "0",
        "first_response_compliance": "50.0",
        "first_response_median_minutes": "45",
        "first_response_mean_minutes": "45",
        "resolution_met": "0",
        "resolution_breached": "0",
        "resolution_running": "2",
        "resolution_compliance": "",
        "resolution_median_minutes": "",
        "resolution_mean_minutes": "",
        "median_first_response_minutes": "45",
        "mean_first_response_minutes": "45",
    }


def test_table_is_the_default_and_shows_percentages_and_working_time(config):
    lines = [" ".join(line.split()) for line in run(config).splitlines()]
    assert lines[0] == (
        "plan priority customer cases fr met fr breached fr running fr % fr median fr mean "
        "res met res breached res running res % res median res mean"
    )
    assert lines[2] == "gold P3 Acme 2 1 1 0 50.0% 45m 45m 0 0 2 - - -"
    assert lines[3] == "standard P2 Globex 1 0 1 0 0.0% 5h 5h 0 0 1 - - -"
    assert lines[4] == "standard P3 (unknown sender) 1 0 0 1 - - - 0 0 1 - - -"
    assert lines[-1].startswith("fr: first response")


def test_an_empty_window_says_so(config):
    assert run(config, "--since", "2027-01-01").strip() == "no cases"
    assert run(config, "--since", "2027-01-01", "--format", "csv").splitlines() == [
        ",".join(report.CSV_COLUMNS)
    ]


def test_a_reply_at_the_deadline_itself_is_a_breach(tmp_path):
    config_path = write_config(tmp_path)
    ref = open_case(config_path, "jane@acme.test", "Question", "2026-04-20T10:00:00-05:00")
    engineer_reply(config_path, ref, "2026-04-20T12:00:00-05:00")  # gold P3: 2h
    cases = Cases(Store.open(tmp_path / "helpdesk.db")).opened_between(None, None)
    (found,) = report.compliance(
        cases, configuration.load(config_path), datetime(2026, 4, 21, tzinfo=UTC)
    )
    assert found["first_response"] == {
        **clocks(0, 1, 0, 0.0),
        "median_minutes": 120,
        "mean_minutes": 120,
    }
    assert found["median_first_response_minutes"] == 120


def test_means_beside_medians_per_clock_by_hand(tmp_path):
    """Three IPcelerate P1 cases opened Monday 2026-11-23 09:00 CST: level one answered after
    10, 20 and 90 minutes (median 20, mean 40); one escalated at 10:00 and its action plan
    recorded at 15:00 (5 business hours); the others' action-plan clocks never started."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from helpdeskd.core import sla
    from tests.ipcelerate import IPCELERATE
    from tests.support import sample_case

    loaded = configuration.load(write_config(tmp_path, extra=IPCELERATE))
    opened = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    cases = []
    for minutes in (10, 20, 90):
        case = sample_case(
            plan="ipcelerate", customer="IPcelerate", priority="P1", opened_at=opened
        )
        case = sla.start_clocks(case, loaded)
        cases.append(sla.stop(case, "reply", opened + timedelta(minutes=minutes))[0])
    escalated = sla.escalated(cases[0], loaded, 1, opened + timedelta(hours=1))
    cases[0] = sla.stop(escalated, "#plan", opened + timedelta(hours=6))[0]
    (found,) = report.compliance(cases, loaded, opened + timedelta(days=1))
    assert list(found)[4:10] == [
        "first_response",
        "resolution",
        "level_one",
        "level_two",
        "action_plan",
        "workaround",
    ]
    assert found["level_one"] == {
        "met": 3,
        "breached": 0,
        "running": 0,
        "compliance": 100.0,
        "median_minutes": 20,
        "mean_minutes": 40,
    }
    assert found["action_plan"]["median_minutes"] == found["action_plan"]["mean_minutes"] == 300
    assert found["level_two"] == {
        "met": 0,
        "breached": 0,
        "running": 0,
        "compliance": None,
        "median_minutes": None,
        "mean_minutes": None,
    }
    assert found["workaround"]["running"] == 1
    table = report.as_table([found]).splitlines()[0].split("  ")
    assert "level_one mean" in [c.strip() for c in table]
