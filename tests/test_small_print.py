"""The agreements' small print through the real flow (`ingest --now`, `sweep --now`, the CLI)
on SQLite and PostgreSQL (the `database` fixture), mail written to a Maildir: who may close a
case and the service manager's say on one that timed out, reopening whatever its age, the
after-hours words and the priority's definition in the acknowledgement, and categories.

The "xmpro" plan counts on the test configuration's business calendar, America/Chicago
Monday to Friday 08:00-17:00 (UTC-5 in April 2026); a case waiting on its customer is warned
after 3 working days and timed out 2 working days later.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import mailbox

import pytest

from tests.support import cli, mail, write_config
from tests.support import run_in_process as run

SMALL_PRINT = """
[plans.xmpro]
calendar = "business"
first_response = { P1 = "2h", P2 = "4h", P3 = "1d", P4 = "3d" }
resolution = { P1 = "3d", P2 = "5d", P3 = "20d", P4 = "20d" }
close_by = "requester"
auto_close = false
service_manager = "manager.services@helpdesk.test"
reopen_window = "forever"
after_hours_note = "After hours a P1 or P2 needs a phone call too: +1 555 0100."
not_covered_note = "Training is quoted separately: ask your account manager."

[plans.xmpro.priorities]
P1 = "Business is not operational"
P2 = "Business runs with a severe loss of function"
P3 = "A function fails; a workaround exists"
P4 = "A question or a cosmetic fault"

[[customers]]
name = "XMPro"
domains = ["xmpro.test"]
plan = "xmpro"
primary_contact = "jane@xmpro.test"

[categories.question]
description = "how to use the product"

[categories.not_covered]
stops_clocks = true
"""

MONDAY = "2026-04-13T10:00:00-05:00"
REQUESTER = "jane@xmpro.test"
COLLEAGUE = "bob@xmpro.test"
MANAGER = "manager.services@helpdesk.test"


@pytest.fixture
def config(tmp_path, database):
    return write_config(tmp_path, extra=SMALL_PRINT)


def ingest(config, message, now: str) -> None:
    run(config, "ingest", "--now", now, stdin=bytes(message))


def sweep(config, now: str) -> list[dict]:
    return json.loads(run(config, "sweep", "--now", now, "--json"))


def show(config, reference: str) -> dict:
    return json.loads(run(config, "show", reference, "--json"))


def sent_to(config, address: str) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(config.parent / "maildir"), create=True)
    found = [email.message_from_bytes(bytes(m), policy=email.policy.default) for m in box]
    return [m for m in found if address in str(m["To"])]


def saying(config, address: str, words: str) -> list:
    return [m for m in sent_to(config, address) if words in m.get_body(("plain",)).get_content()]


def open_case(config, subject: str, now: str = MONDAY, sender: str = REQUESTER) -> str:
    ingest(config, mail(sender, subject, "Please have a look."), now)
    return json.loads(run(config, "cases", "--json", "--status", "new"))[-1]["reference"]


def reply(config, sender: str, reference: str, body: str, now: str) -> None:
    # a Message-ID under the helpdesk's own domain would read as our own mail coming back
    message_id = email.utils.make_msgid(domain="laptop.example")
    ingest(config, mail(sender, f"Re: [{reference}] x", body, message_id=message_id), now)


def events(detail: dict, kind: str) -> list[str]:
    return [e["detail"] for e in detail["events"] if e["kind"] == kind]


# -- 1. who may close -------------------------------------------------------------------------


def test_only_the_requester_closes_and_the_service_manager_decides_a_timed_out_case(config):
    ref = open_case(config, "Dashboards are slow")
    reply(config, COLLEAGUE, ref, "#close\n", "2026-04-13T10:30:00-05:00")
    detail = show(config, ref)
    assert detail["status"] == "new"
    assert events(detail, "close_refused") == [
        f"#close from {COLLEAGUE} not applied: only the person who opened the case "
        f"({REQUESTER}) may close it"
    ]
    assert len(sent_to(config, COLLEAGUE)) == 1  # the polite one-line answer

    reply(
        config,
        "alice@helpdesk.test",
        ref,
        "#waiting\n\nWhich version?",
        "2026-04-13T11:00:00-05:00",
    )
    warned = sweep(config, "2026-04-16T11:00:00-05:00")
    assert [a["action"] for a in warned] == ["closing_warning"]
    timed_out = sweep(config, "2026-04-20T11:00:00-05:00")
    assert [(a["action"], a["to"]) for a in timed_out] == [("close", [MANAGER])]
    assert sweep(config, "2026-04-27T11:00:00-05:00") == []
    detail = show(config, ref)
    assert detail["status"] == "pending_close"
    assert len(sent_to(config, MANAGER)) == 1
    assert len(saying(config, REQUESTER, "has been closed")) == 0

    # now the engineer may not close it; the service manager may
    reply(config, "alice@helpdesk.test", ref, "#close\n", "2026-04-20T12:00:00-05:00")
    assert show(config, ref)["status"] == "pending_close"
    assert len(saying(config, "alice@helpdesk.test", f"only {MANAGER} or ops@")) == 1
    reply(config, MANAGER, ref, "#close\n", "2026-04-20T13:00:00-05:00")
    detail = show(config, ref)
    assert detail["status"] == "closed"
    assert any(f"by {MANAGER}" in d for d in events(detail, "status"))
    assert len(sent_to(config, MANAGER)) == 1  # the one question, nothing more
    assert len([m for m in sent_to(config, REQUESTER) if "Closed:" in str(m["Subject"])]) == 1


def test_the_requesters_close_and_an_engineers_are_applied(config):
    ref = open_case(config, "A question on exports")
    reply(config, REQUESTER, ref, "#close\n", "2026-04-13T10:30:00-05:00")
    assert show(config, ref)["status"] == "closed"
    other = open_case(config, "Another question")
    reply(config, "alice@helpdesk.test", other, "#close\n", "2026-04-13T10:40:00-05:00")
    assert show(config, other)["status"] == "closed"


# -- 2. reopening any time --------------------------------------------------------------------


def test_a_reply_reopens_a_case_of_a_forever_plan_whatever_its_age(config):
    ref = open_case(config, "Licence question")
    reply(config, REQUESTER, ref, "#close\n", "2026-04-13T10:30:00-05:00")
    reply(config, REQUESTER, ref, "It is back.", "2027-06-01T10:00:00-05:00")
    detail = show(config, ref)
    assert detail["status"] == "open"
    assert len(json.loads(run(config, "cases", "--json"))) == 1  # no new case was opened
    assert len(saying(config, REQUESTER, f"case {ref} has been reopened")) == 1


# -- 3 and 4. what the acknowledgement says ---------------------------------------------------


def acknowledgement(config, reference: str) -> str:
    found = [m for m in sent_to(config, REQUESTER) if reference in str(m["Subject"])]
    assert len(found) == 1
    return found[0].get_body(("plain",)).get_content()


def test_a_p1_opened_after_hours_is_told_to_phone_and_every_ack_defines_its_priority(config):
    saturday = open_case(config, "Production outage", now="2026-04-18T10:00:00-05:00")
    text = acknowledgement(config, saturday)
    assert "Priority: P1 (Business is not operational)" in text
    assert "If another priority fits better" in text
    assert "+1 555 0100" in text

    in_hours = open_case(config, "Production outage again", now="2026-04-20T10:00:00-05:00")
    assert "+1 555 0100" not in acknowledgement(config, in_hours)
    calm = open_case(config, "A question", now="2026-04-18T11:00:00-05:00")
    text = acknowledgement(config, calm)
    assert "+1 555 0100" not in text
    assert "Priority: P3 (A function fails; a workaround exists)" in text


def test_negated_or_quoted_keywords_do_not_raise_the_priority(config):
    ingest(config, mail(REQUESTER, "Good news", "We are not down any more, thanks."), MONDAY)
    quoted = "Thanks, that helped.\n\nOn Mon, Alice wrote:\n> Is the system down?\n"
    ingest(config, mail(REQUESTER, "Thanks", quoted), MONDAY)
    chosen = "A dashboard is off.\n\nPriority: P2\n"
    ingest(config, mail(REQUESTER, "From the form", chosen), MONDAY)
    cases = {c["subject"]: c for c in json.loads(run(config, "cases", "--json"))}
    assert cases["Good news"]["priority"] == "P3"
    assert cases["Thanks"]["priority"] == "P3"
    assert cases["From the form"]["priority"] == "P2"


# -- 8. categories ----------------------------------------------------------------------------


def test_a_category_not_covered_stops_the_clocks_and_tells_the_customer_once(config):
    ref = open_case(config, "Please train our new staff")
    reply(
        config, "alice@helpdesk.test", ref, "#category not_covered\n", "2026-04-13T10:30:00-05:00"
    )
    detail = show(config, ref)
    assert detail["category"] == "not_covered"
    assert all(c["met"] is not None for c in detail["clocks"])
    assert "category not_covered" in run(config, "show", ref)
    assert events(detail, "category") == [
        "not_covered by alice@helpdesk.test; not covered: stopped first_response, resolution"
    ]
    notes = saying(config, REQUESTER, "Training is quoted separately")
    assert len(notes) == 1
    reply(config, "alice@helpdesk.test", ref, "#category question\n", "2026-04-13T10:40:00-05:00")
    reply(
        config, "alice@helpdesk.test", ref, "#category not_covered\n", "2026-04-13T10:50:00-05:00"
    )
    assert len(saying(config, REQUESTER, "Training is quoted separately")) == 1

    other = open_case(config, "How do I export?")
    reply(config, "alice@helpdesk.test", other, "#category question\n", "2026-04-13T11:00:00-05:00")
    reply(config, "alice@helpdesk.test", other, "#category bogus\n", "2026-04-13T11:10:00-05:00")
    assert show(config, other)["category"] == "question"
    assert len(saying(config, "alice@helpdesk.test", 'unknown category "bogus"')) == 1
    open_case(config, "Something else")

    rows = json.loads(run(config, "report", "--format", "json", "--part", "categories"))
    assert rows == [
        {"category": "(none)", "cases": 1},
        {"category": "not_covered", "cases": 1},
        {"category": "question", "cases": 1},
    ]
    monthly = [
        a for a in sweep(config, "2026-05-01T09:00:00-05:00") if a.get("customer") == "XMPro"
    ]
    assert monthly[0]["figures"]["categories"] == {"(none)": 1, "not_covered": 1, "question": 1}
    assert len(saying(config, REQUESTER, "Category not_covered")) == 1
    later = sweep(config, "2026-05-29T10:00:00-05:00")
    assert [a for a in later if a["reference"] == ref] == []  # no clock left to breach


# -- check-config -----------------------------------------------------------------------------

REFUSED = """
[plans.strict]
calendar = "business"
first_response = { P1 = "2h", P2 = "4h", P3 = "1d", P4 = "3d" }
resolution = { P1 = "3d", P2 = "5d", P3 = "20d", P4 = "20d" }
auto_close = false
reopen_window = "sometimes"

[plans.strict.priorities]
P5 = "Whenever"

[categories.training]
stops_clock = true

[categories.Not-Covered]
stops_clocks = true
"""


def test_check_config_refuses_what_the_small_print_cannot_mean(tmp_path):
    done = cli(write_config(tmp_path, extra=REFUSED), "check-config")
    assert done.returncode == 78  # EX_CONFIG
    err = done.stderr.decode()
    assert "plans.strict.service_manager: is required with auto_close = false" in err
    assert 'plans.strict.reopen_window: must be a duration like "30d" or "forever"' in err
    assert "plans.strict.priorities.P5: unknown priority" in err
    assert "categories.training.stops_clock" in err  # a category key it does not know
    assert "categories.Not-Covered: a category's name is lower-case" in err
