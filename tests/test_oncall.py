"""The on-call rota, end to end with fixed clocks (`ingest --now`, `sweep --now`), on SQLite
and on PostgreSQL: a P1 opened at 03:00 pages the person on call, the next one after
`ack_within` (5m), then the escalation ladder; `#ack` stops that; nobody is paged in working hours.

The rota: alice from Monday 2026-11-30 09:00 Chicago, bob from Monday 2026-12-07 09:00, weekly;
the team covers the business calendar (Monday to Friday 08:00-17:00 Chicago) without it."""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.config.oncall import DAYS
from tests.support import Daemon, delivered, free_port, mail, send, write_config
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
        "until": "2026-12-14T09:00:00-06:00",
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


def test_the_rota_names_engineers_only(tmp_path: Path):
    bad = ROTA.replace('"bob@helpdesk.test"]', '"carol@helpdesk.test"]')
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(write_config(tmp_path, extra=bad))
    assert refused.value.problems == [
        ("oncall.rotation[1]", '"carol@helpdesk.test" is not one of [[engineers]]')
    ]


SHIFTS = """
[oncall]
shifts = [
  { who = "alice@helpdesk.test", from = "2026-12-24 18:00", until = "2026-12-27 09:00" },
  { who = "bob@helpdesk.test", from = "2026-12-31 18:00", until = "2027-01-04 08:00" },
]
team_calendar = "business"
ack_within = "5m"
"""
CHRISTMAS = "2026-12-25T03:00:00-06:00"  # on alice's shift
GAP = "2026-12-29T03:00:00-06:00"  # between the shifts: nobody on call


@pytest.fixture
def shifts(tmp_path: Path, database) -> Path:
    return write_config(tmp_path, extra=SHIFTS)


def test_a_dated_shift_pages_whoever_holds_it_then_the_next_one(shifts, tmp_path: Path):
    reference = open_outage(shifts, CHRISTMAS)
    assert pages(tmp_path) == [ALICE]
    swept = json.loads(run(shifts, "sweep", "--now", "2026-12-25T03:05:00-06:00", "--json"))
    assert {"reference": reference, "action": "page", "to": [BOB]} in swept  # who takes over


def test_between_shifts_nobody_is_paged_and_the_ladder_is_told_at_once(shifts, tmp_path: Path):
    reference = open_outage(shifts, GAP)
    assert pages(tmp_path) == []
    escalations = [m for m in delivered(tmp_path) if str(m["To"]) == "lead@helpdesk.test"]
    assert len(escalations) == 1
    shown = json.loads(run(shifts, "show", reference, "--json"))
    assert shown["escalation_level"] == 1
    assert ("escalate", "level 1: nobody is on call") in [
        (e["kind"], e["detail"]) for e in shown["events"]
    ]


def test_oncall_shows_shifts_and_the_gaps_between_them(shifts):
    shown = json.loads(run(shifts, "oncall", "--now", CHRISTMAS, "--json"))
    assert shown == {
        "now": ALICE,
        "since": "2026-12-24T18:00:00-06:00",
        "until": "2026-12-27T09:00:00-06:00",
        "next": BOB,
        "from": "2026-12-31T18:00:00-06:00",
    }
    text = run(shifts, "oncall", "--now", GAP)
    assert "now   nobody (between shifts)" in text
    assert "next  bob@helpdesk.test  from 2026-12-31 18:00 CST" in text
    text = run(shifts, "oncall", "--now", "2027-01-05T00:00:00-06:00")
    assert "now   nobody" in text and "next  nobody (no shift after this)" in text


def shift(who: str, begins: str, ends: str, until: str = "until") -> str:
    return f'{{ who = "{who}@helpdesk.test", from = "{begins}", {until} = "{ends}" }}'


@pytest.mark.parametrize(
    ("shifts_text", "key", "why"),
    [
        (
            shift("alice", "2026-12-24 18:00", "2026-12-27 09:00")
            + ", "
            + shift("bob", "2026-12-27 08:00", "2026-12-28 09:00"),
            "oncall.shifts[1]",
            "overlaps oncall.shifts[0] (alice@helpdesk.test until 2026-12-27 09:00)",
        ),
        (
            shift("alice", "2026-12-24 18:00", "2026-12-24 18:00"),
            "oncall.shifts[0].until",
            "must be after from (2026-12-24 18:00)",
        ),
        (
            shift("alice", "2026-12-24 18:00", "2026-12-25 09:00", "to"),
            "oncall.shifts[0].to",
            "unknown key (known: from, until, who)",
        ),
        (
            shift("carol", "2026-12-24 18:00", "2026-12-25 09:00"),
            "oncall.shifts[0].who",
            '"carol@helpdesk.test" is not one of [[engineers]]',
        ),
        (
            shift("alice", "Christmas eve", "2026-12-25 09:00"),
            "oncall.shifts[0].from",
            "'Christmas eve' is not a date and time: write it as YYYY-MM-DD HH:MM",
        ),
    ],
    ids=["overlapping", "empty", "unknown key", "not an engineer", "not a time"],
)
def test_mistaken_shifts_are_refused_by_key_path(tmp_path: Path, shifts_text, key, why):
    text = f'[oncall]\nshifts = [{shifts_text}]\nteam_calendar = "business"\n'
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(write_config(tmp_path, extra=text))
    assert (key, why) in refused.value.problems


def test_a_rota_and_shifts_together_are_refused(tmp_path: Path):
    both = ROTA + f"shifts = [{shift('alice', '2026-12-24 18:00', '2026-12-25 09:00')}]\n"
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(write_config(tmp_path, extra=both))
    assert refused.value.problems == [
        ("oncall.shifts", "give either rotation (a weekly rota) or shifts (dated), not both")
    ]


# -- page_command: a program run at each page, besides its mail ------------------------------

RECORDER = """#!/bin/sh
# what a gateway would be given: each argument on a line of its own, then a separator
for argument in "$@"; do printf '%s\\n' "$argument" >> "{log}"; done
echo --- >> "{log}"
"""


def gateway(folder: Path, script: str) -> Path:
    program = folder / "page-gateway"
    program.write_text(script.format(log=folder / "gateway.log"), encoding="utf-8")
    program.chmod(0o755)
    return program


def with_command(folder: Path, program: Path) -> Path:
    command = f'page_command = ["{program}", "--case", "{{reference}}", "{{summary}}", "{{paged}}"]'
    return write_config(folder, extra=ROTA + command + "\n")


def runs(folder: Path) -> list[list[str]]:
    log = folder / "gateway.log"
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    return [chunk.strip("\n").split("\n") for chunk in text.split("---\n") if chunk.strip()]


def test_each_page_runs_the_page_command_once(tmp_path: Path, database):
    config = with_command(tmp_path, gateway(tmp_path, RECORDER))
    reference = open_outage(config, NIGHT)
    assert runs(tmp_path) == [["--case", reference, "P1 Acme: Production is down", BOB]]
    run(config, "sweep", "--now", "2026-12-09T03:05:00-06:00")  # bob did not answer
    run(config, "sweep", "--now", "2026-12-09T03:06:00-06:00")
    run(config, "outbox", "--flush")
    assert runs(tmp_path) == [
        ["--case", reference, "P1 Acme: Production is down", BOB],
        ["--case", reference, "P1 Acme: Production is down", ALICE],
    ]
    shown = json.loads(run(config, "show", reference, "--json"))
    assert [e["detail"] for e in shown["events"] if e["kind"] == "page_command"] == [
        "ran for bob@helpdesk.test",
        "ran for alice@helpdesk.test",
    ]


FAILING = "#!/bin/sh\necho 'gateway refused: no credit' >&2\nexit 3\n"
HANGING = "#!/bin/sh\nsleep 60\n"


@pytest.mark.parametrize(
    ("script", "why"),
    [(FAILING, "exit status 3: gateway refused: no credit"), (HANGING, "killed after 10s")],
    ids=["failing", "hanging"],
)
def test_a_failed_page_command_tells_the_admins_and_the_mail_still_goes(
    tmp_path: Path, database, script: str, why: str
):
    config = with_command(tmp_path, gateway(tmp_path, script))
    reference = open_outage(config, NIGHT)
    assert pages(tmp_path) == [BOB]
    (alert,) = [m for m in delivered(tmp_path) if str(m["To"]) == "ops@helpdesk.test"]
    text = alert.get_body(("plain",)).get_content()
    assert f"page_command for {reference} (bob@helpdesk.test) failed: {why}" in text
    shown = json.loads(run(config, "show", reference, "--json"))
    assert [e["detail"] for e in shown["events"] if e["kind"] == "page_command"] == [
        f"failed for bob@helpdesk.test: {why}"
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("[]", "must be a list of non-empty strings, the program first"),
        ('["/bin/true", ""]', "must be a list of non-empty strings, the program first"),
        ('"/bin/true {reference}"', "must be a list of non-empty strings, the program first"),
        ('["/nowhere/page-gateway"]', "'/nowhere/page-gateway' is not an executable program"),
        ('["no-such-gateway-here"]', "'no-such-gateway-here' is not an executable program"),
    ],
    ids=["empty", "empty argument", "a shell line", "missing", "not in PATH"],
)
def test_a_mistaken_page_command_is_refused(tmp_path: Path, value: str, why: str):
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(write_config(tmp_path, extra=f"{ROTA}page_command = {value}\n"))
    assert refused.value.problems == [("oncall.page_command", why)]


def test_a_page_command_that_cannot_be_run_is_refused(tmp_path: Path):
    program = gateway(tmp_path, RECORDER)
    program.chmod(0o644)
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(with_command(tmp_path, program))
    assert refused.value.problems == [
        ("oncall.page_command", f"'{program}' is not an executable program")
    ]


def test_in_the_daemon_the_courier_runs_the_page_command(tmp_path: Path, sink, database):
    """The daemon on the wall clock: the team works another weekday than today, so an outage
    pages bob, alone on the rota; the courier runs the page_command after the commit, and
    tells the admins it failed."""
    elsewhen = DAYS[(datetime.now(UTC).weekday() + 3) % 7]
    program = gateway(tmp_path, FAILING)
    extra = f"""
[calendars.elsewhen]
timezone = "UTC"
{elsewhen} = "09:00-17:00"

[oncall]
rotation = ["bob@helpdesk.test"]
starts = "2020-01-06"
team_calendar = "elsewhen"
page_command = ["{program}", "{{reference}}"]
"""
    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra=extra)
    with Daemon(config, port) as daemon:
        send(daemon.port, mail("ops@acme.test", "Production is down", "Outage."))
        assert sink.wait_for(lambda m: "PAGE P1" in str(m["Subject"]) and BOB in str(m["To"]))
        alert = sink.wait_for(lambda m: "page_command for" in str(m["Subject"]))
        assert alert, [str(m["Subject"]) for m in sink.received]
        assert "failed: exit status 3: gateway refused: no credit" in str(alert[0]["Subject"])
        assert str(alert[0]["To"]) == "ops@helpdesk.test"
