"""A customer's `#escalate` reaches a person (XMPro §5), through `ingest` and `sweep --now` on
each store: the level's first address owes a written reply, shown by `show`, `cases --json` and
the team's queue until it writes on the case, and reminded once after one working day.

Globex is on the standard plan (business hours, Chicago); level 1 notifies lead@helpdesk.test.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from helpdeskd import portal
from helpdeskd.adapters.store import open_store
from helpdeskd.config import load
from tests.support import Sink, mail, write_config
from tests.support import run_in_process as run

OPENED = "2026-11-23T09:00:00-06:00"  # a Monday
ESCALATED = "2026-11-23T10:00:00-06:00"


def write(config: Path, sender: str, subject: str, body: str, now: str) -> None:
    run(config, "ingest", "--now", now, "-", stdin=mail(sender, subject, body).as_bytes())


def reminders(config: Path) -> Counter:
    rows = json.loads(run(config, "outbox", "--json"))
    return Counter(to for r in rows if r["kind"] == "reply_due" for to in r["recipients"])


def test_an_escalation_request_owes_a_reply_until_the_level_writes(tmp_path, database):
    config = write_config(tmp_path, relay_port=Sink().port)
    write(config, "boss@globex.test", "Printer jams", "It jams on every job.", OPENED)
    reference = json.loads(run(config, "cases", "--json"))[0]["reference"]
    write(config, "boss@globex.test", f"Re: [{reference}] Printer jams", "#escalate", ESCALATED)

    owed = [{"from": "lead@helpdesk.test", "since": ESCALATED}]
    assert json.loads(run(config, "show", reference, "--json"))["reply_due"] == owed
    assert json.loads(run(config, "cases", "--json"))[0]["reply_due"] == owed
    assert "reply due from lead@helpdesk.test since 2026-11-23 10:00 CST" in run(
        config, "show", reference
    )
    store = open_store(database)
    try:
        (row,) = portal.queue(store, load(config), datetime.fromisoformat(ESCALATED))
    finally:
        store.close()
    assert row["reply_due"] == owed

    run(config, "sweep", "--now", "2026-11-24T09:30:00-06:00")
    assert reminders(config) == Counter()  # not one working day yet
    for now in ("2026-11-24T10:30:00-06:00", "2026-11-25T10:30:00-06:00"):
        run(config, "sweep", "--now", now)
    assert reminders(config) == Counter({"lead@helpdesk.test": 1})

    answer = "We replace the printer on Thursday."
    write(
        config,
        "lead@helpdesk.test",
        f"Re: [{reference}] Printer jams",
        answer,
        "2026-11-25T11:00:00-06:00",
    )
    found = json.loads(run(config, "show", reference, "--json"))
    assert found["reply_due"] == []
    assert ("reply_due", "answered by lead@helpdesk.test") in [
        (e["kind"], e["detail"]) for e in found["events"]
    ]


def test_a_reply_within_the_day_leaves_nothing_to_remind(tmp_path, database):
    config = write_config(tmp_path, relay_port=Sink().port)
    write(config, "boss@globex.test", "Printer jams", "It jams on every job.", OPENED)
    reference = json.loads(run(config, "cases", "--json"))[0]["reference"]
    write(config, "boss@globex.test", f"Re: [{reference}] Printer jams", "#escalate", ESCALATED)
    write(
        config, "lead@helpdesk.test", f"Re: [{reference}] x", "On it.", "2026-11-23T12:00:00-06:00"
    )
    run(config, "sweep", "--now", "2026-11-25T10:30:00-06:00")
    assert reminders(config) == Counter()
    assert json.loads(run(config, "cases", "--json"))[0]["reply_due"] == []
