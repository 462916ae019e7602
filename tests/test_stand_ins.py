"""Stand-ins and report viewers (XMPro), through `ingest` on each store: while a customer's primary
contact is unreachable (its last mail from us bounced, or an out-of-office came back within 7
days) the forwards of unauthorised senders' mail and the allow-list confirmations go to its
stand-in contacts, and the history says who was told and why; nominated report viewers see the
customer's cases and reports on the status page and get the monthly report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from helpdeskd.config import load
from helpdeskd.core import access
from tests.support import Sink, mail, sample_case, write_config
from tests.support import run_in_process as run

UMBRELLA = """
[[customers]]
name = "Umbrella"
domains = ["umbrella.test"]
addresses = ["pm@umbrella.test"]
plan = "standard"
authorized_only = true
primary_contact = "pm@umbrella.test"
stand_in_contacts = ["deputy@umbrella.test"]
report_viewers = ["auditor@consult.test"]
"""
OPENED = "2026-11-23T09:00:00-06:00"  # a Monday
UNREACHABLE = "the primary contact pm@umbrella.test is unreachable"


def setup(folder: Path) -> Path:
    config = write_config(folder, relay_port=Sink().port, extra=UMBRELLA)
    allowlist = f'reference_prefix = "HD"\nallowlist = "{folder / "allowlist.toml"}"\n'
    config.write_text(config.read_text().replace('reference_prefix = "HD"\n', allowlist, 1))
    return config


def write(config: Path, sender: str, subject: str, body: str, now: str, **kw) -> None:
    run(config, "ingest", "--now", now, "-", stdin=mail(sender, subject, body, **kw).as_bytes())


def sent(config: Path, kind: str) -> Counter:
    rows = json.loads(run(config, "outbox", "--json"))
    return Counter(to for r in rows if r["kind"] == kind for to in r["recipients"])


def opened(config: Path) -> str:
    write(config, "pm@umbrella.test", "Add a colleague", "Please add temp@umbrella.test.", OPENED)
    return json.loads(run(config, "cases", "--json"))[0]["reference"]


def test_an_out_of_office_sends_the_forward_to_the_stand_in_for_7_days(tmp_path, database):
    config = setup(tmp_path)
    reference = opened(config)
    away = {"Auto-Submitted": "auto-replied"}
    write(
        config, "pm@umbrella.test", f"Automatic reply: [{reference}]", "Away.", OPENED, headers=away
    )
    write(config, "temp@umbrella.test", "Printer", "It jams.", "2026-11-24T09:00:00-06:00")
    assert sent(config, "unauthorized_forward") == Counter({"deputy@umbrella.test": 1})
    (kept,) = [
        r
        for r in json.loads(run(config, "cases", "--unrouted", "--json"))
        if r["from_addr"] == "temp@umbrella.test"
    ]
    assert (
        f"unauthorized_forward to deputy@umbrella.test: {UNREACHABLE} (an out-of-office"
        in (kept["route_reason"])
    )

    write(config, "temp2@umbrella.test", "Scanner", "It jams too.", "2026-12-01T10:00:00-06:00")
    assert sent(config, "unauthorized_forward") == Counter(
        {"deputy@umbrella.test": 1, "pm@umbrella.test": 1}
    )


def test_a_bounce_sends_the_confirmation_to_the_stand_in(tmp_path, database):
    config = setup(tmp_path)
    reference = opened(config)
    found = json.loads(run(config, "show", reference, "--json"))
    (ack,) = [m["message_id"] for m in found["messages"] if m["kind"] == "acknowledgement"]
    bounce = {"X-Failed-Recipients": "pm@umbrella.test", "Auto-Submitted": "auto-replied"}
    body = f"Delivery to pm@umbrella.test failed.\n\nMessage-ID: <{ack}>\n"
    write(config, "MAILER-DAEMON@mx.isp.test", "Undelivered Mail", body, OPENED, headers=bounce)

    write(
        config,
        "alice@helpdesk.test",
        f"Re: [{reference}]",
        "#allow add temp@umbrella.test\n",
        "2026-11-23T11:00:00-06:00",
    )
    assert sent(config, "allowlist_changed") == Counter({"deputy@umbrella.test": 1})
    events = json.loads(run(config, "show", reference, "--json"))["events"]
    told = [e["detail"] for e in events if e["kind"] == "stand_in"]
    assert told == [
        f"allowlist_changed to deputy@umbrella.test: {UNREACHABLE} (the last mail to them bounced)"
    ]


def test_report_viewers_see_the_customers_cases(tmp_path):
    config = load(write_config(tmp_path, extra=UMBRELLA))
    viewer = access.viewer_for("auditor@consult.test", config)
    assert (viewer.customer, viewer.representative) == ("Umbrella", True)
    theirs = sample_case(customer="Umbrella", opener="pm@umbrella.test", contacts=())
    assert access.may_see(viewer, theirs)
    assert not access.may_see(viewer, sample_case())  # Acme's


def test_report_viewers_get_the_monthly_report(tmp_path, database):
    config = setup(tmp_path)
    opened(config)
    for now in ("2026-12-01T09:00:00-06:00", "2026-12-01T10:00:00-06:00"):
        run(config, "sweep", "--now", now)
    assert sent(config, "monthly_report") == Counter(
        {"pm@umbrella.test": 1, "deputy@umbrella.test": 1, "auditor@consult.test": 1}
    )
