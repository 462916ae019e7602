"""Notices about a customer's service, through `ingest` and `sweep --now` on each store: a lapsed
plan (IPcelerate, Pro Plus) and fair use (IPRO §4), each mailed once to the primary contact."""

from __future__ import annotations

import email
import json
from collections import Counter
from email.policy import default
from pathlib import Path

from tests.support import Sink, mail, write_config
from tests.support import run_in_process as run

PLANS = """
[plans.proplus]
calendar = "always"
first_response = { P1 = "30m", P2 = "1h", P3 = "2h", P4 = "4h" }
resolution = { P1 = "1d", P2 = "2d", P3 = "5d", P4 = "5d" }
renewal_note = "To renew Pro Plus, reply to this mail or call +1 555 0100."

[plans.capped]
calendar = "always"
first_response = { P1 = "30m", P2 = "1h", P3 = "2h", P4 = "4h" }
resolution = { P1 = "1d", P2 = "2d", P3 = "5d", P4 = "5d" }
fair_use_cap = 2

[[customers]]
name = "Initech"
domains = ["initech.test"]
plan = "proplus"
plan_expires = 2026-11-30
primary_contact = "pm@initech.test"

[[customers]]
name = "Hooli"
domains = ["hooli.test"]
plan = "capped"
primary_contact = "gavin@hooli.test"
"""


def setup(folder: Path) -> Path:
    return write_config(folder, relay_port=Sink().port, extra=PLANS)


def ingest(config: Path, sender: str, subject: str, now: str) -> str:
    run(config, "ingest", "--now", now, "-", stdin=mail(sender, subject, "Help.").as_bytes())
    return json.loads(run(config, "cases", "--json"))[-1]["reference"]


def sent(config: Path) -> Counter:
    """(kind, recipient) of every mail waiting in the outbox (its relay is not there)."""
    rows = json.loads(run(config, "outbox", "--json"))
    return Counter((r["kind"], to) for r in rows for to in r["recipients"])


def bodies(config: Path, reference: str, kind: str) -> list[str]:
    found = json.loads(run(config, "show", reference, "--json"))
    return [m["body"] for m in found["messages"] if m["kind"] == kind]


def test_a_lapsed_plan_is_told_once_and_named_on_each_case(tmp_path, database):
    config = setup(tmp_path)
    run(config, "sweep", "--now", "2026-11-30T12:00:00-06:00")
    assert sent(config)[("plan_lapsed", "pm@initech.test")] == 0  # the last day still serves
    run(config, "sweep", "--now", "2026-12-01T09:00:00-06:00")
    run(config, "sweep", "--now", "2026-12-02T09:00:00-06:00")
    assert sent(config)[("plan_lapsed", "pm@initech.test")] == 1
    assert sum(n for (kind, _), n in sent(config).items() if kind == "plan_lapsed") == 1

    reference = ingest(config, "jane@initech.test", "Printer jam", "2026-12-02T10:00:00-06:00")
    found = json.loads(run(config, "show", reference, "--json"))
    why = "the proplus plan lapsed on 2026-11-30, so the standard plan serves this case"
    assert found["plan"] == "standard"
    assert {"kind": "plan", "detail": why} in [
        {k: e[k] for k in ("kind", "detail")} for e in found["events"]
    ]
    (ack,) = bodies(config, reference, "acknowledgement")
    assert f"Plan: standard ({why})" in ack


def test_a_lapse_notice_carries_the_renewal_note(tmp_path, database):
    config = write_config(tmp_path, extra=PLANS)  # delivered into a Maildir, to be read
    listed = json.loads(
        run(config, "sweep", "--dry-run", "--json", "--now", "2026-12-02T09:00:00-06:00")
    )
    assert [e["to"] for e in listed if e["action"] == "plan_lapsed"] == [["pm@initech.test"]]
    run(config, "sweep", "--now", "2026-12-02T09:00:00-06:00")
    run(config, "outbox", "--flush")
    (found,) = [
        m
        for f in (tmp_path / "maildir" / "new").iterdir()
        if "pm@initech.test"
        in str((m := email.message_from_bytes(f.read_bytes(), policy=default))["To"])
    ]
    assert found["Subject"] == "Your proplus support plan has lapsed"
    text = found.get_body(("plain",)).get_content()
    assert "served under the\nstandard plan" in text
    assert "To renew Pro Plus, reply to this mail or call +1 555 0100." in text


def test_fair_use_is_told_once_a_month_and_in_the_engineers_notice(tmp_path, database):
    config = setup(tmp_path)
    days = ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]
    refs = [ingest(config, "dev@hooli.test", f"Bug {d}", f"{d}T10:00:00-06:00") for d in days]
    (fourth,) = bodies(config, refs[3], "notification")
    assert "Hooli is flagged for fair use this month (over the capped plan's cap of 2)" in fourth
    (second,) = bodies(config, refs[1], "notification")
    assert "fair use" not in second.lower()

    for now in ("2026-12-04T11:00:00-06:00", "2026-12-05T11:00:00-06:00"):
        run(config, "sweep", "--now", now)
    assert sent(config)[("fair_use_notice", "gavin@hooli.test")] == 1
    assert sum(n for (kind, _), n in sent(config).items() if kind == "fair_use_notice") == 1
