"""Engineers work cases by email, end to end: the daemon, smtplib, a real aiosmtpd relay; on
SQLite and on PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import Daemon, Sink, free_port, mail, run_in_process, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CUSTOMER = "jane@globex.test"


@pytest.fixture
def daemon(tmp_path: Path, sink: Sink, database):
    port = free_port()
    # Globex is on the 08-17 "standard" plan; the rest of the suite uses Acme's 24x7 plan
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
    text = config.read_text().replace(
        'addresses = ["boss@globex.test"]', f'addresses = ["boss@globex.test", "{CUSTOMER}"]'
    )
    config.write_text(text)
    with Daemon(config, port) as running:
        yield running


def show(config: Path, reference: str) -> dict:
    return json.loads(run_in_process(config, "show", reference, "--json"))


def one(sink: Sink, predicate, what: str):
    found = sink.wait_for(predicate)
    assert found, f"no {what}; received: {[str(m['Subject']) for m in sink.received]}"
    return found[-1]


def text_of(message) -> str:
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""


def to(address: str, subject_part: str = ""):
    return lambda m: address in str(m["To"]) and subject_part in str(m["Subject"])


def open_case(daemon: Daemon, sink: Sink):
    send(
        daemon.port,
        mail(
            f"Jane Customer <{CUSTOMER}>",
            "Reports are empty",
            "Since the upgrade every report is empty.",
        ),
    )
    notification = one(sink, to("alice@helpdesk.test", "New case"), "notification")
    reference = str(notification["Subject"]).split("]")[0].lstrip("[")
    return reference, notification


def engineer_reply(daemon: Daemon, notification, body: str, sender="alice@helpdesk.test"):
    reply = mail(
        f"Alice Engineer <{sender}>",
        f"Re: {notification['Subject']}",
        body,
        in_reply_to=notification["Message-ID"],
    )
    send(daemon.port, reply)
    return reply


def test_notification_carries_what_the_engineer_needs(daemon: Daemon, sink: Sink):
    reference, notification = open_case(daemon, sink)
    text = text_of(notification)
    assert notification["Reply-To"] == "support@helpdesk.test"
    assert reference in str(notification["Subject"])
    assert "Globex" in text and "standard" in text and "P3" in text
    assert "Since the upgrade every report is empty." in text
    assert "CST" in text  # the deadline, in the plan's time zone


def test_reply_with_commands_reaches_the_customer_without_them(daemon: Daemon, sink: Sink):
    reference, notification = open_case(daemon, sink)
    before = show(daemon.config, reference)
    engineer_reply(
        daemon,
        notification,
        "#priority P1\n#waiting\n\nHello Jane,\nwhich browser do you use?\n\n"
        "Alice\n\nOn Mon, someone wrote:\n> Since the upgrade every report is empty.\n",
    )
    relay = one(
        sink,
        lambda m: CUSTOMER in str(m["To"]) and "which browser do you use" in text_of(m),
        "relay to the customer",
    )
    body = text_of(relay)
    assert "#priority" not in body and "#waiting" not in body
    assert "> Since the upgrade" not in body
    assert str(relay["Subject"]).startswith(f"[{reference}]")
    assert relay["From"].addresses[0].addr_spec == "support@helpdesk.test"
    assert "Alice Engineer" in str(relay["From"])
    assert "alice@helpdesk.test" not in relay.as_string()
    assert relay["In-Reply-To"] and relay["References"]
    after = show(daemon.config, reference)
    assert (after["priority"], after["status"]) == ("P1", "waiting")
    fr_before = {c["name"]: c for c in before["clocks"]}["first_response"]
    fr_after = {c["name"]: c for c in after["clocks"]}["first_response"]
    assert fr_after["deadline"] != fr_before["deadline"]
    assert fr_after["met"] is True  # the first engineer reply stopped the clock
    assert all(c["paused"] for c in after["clocks"] if c["met_at"] is None)


def test_a_bad_command_reaches_nobody_but_the_engineer(daemon: Daemon, sink: Sink):
    reference, notification = open_case(daemon, sink)
    engineer_reply(daemon, notification, "#prioirty P1\n\nDear customer, secret typo here.")
    error = one(sink, to("alice@helpdesk.test", "Not applied"), "command error")
    assert "#prioirty" in text_of(error) and "#priority" in text_of(error)
    assert not [
        m for m in sink.received if CUSTOMER in str(m["To"]) and "secret typo" in text_of(m)
    ]
    assert show(daemon.config, reference)["priority"] == "P3"


def test_a_note_never_reaches_the_customer(daemon: Daemon, sink: Sink):
    reference, notification = open_case(daemon, sink)
    engineer_reply(daemon, notification, "#note\nCustomer is on the old build, internal only.")
    note = one(sink, to("bob@helpdesk.test", "Note"), "note to the other engineers")
    assert "internal only" in text_of(note)
    assert not [
        m for m in sink.received if CUSTOMER in str(m["To"]) and "internal only" in text_of(m)
    ]
    kinds = [m["kind"] for m in show(daemon.config, reference)["messages"]]
    assert "note" in kinds


def test_a_customer_reply_reopens_a_waiting_case_and_reaches_the_engineer(
    daemon: Daemon, sink: Sink
):
    reference, notification = open_case(daemon, sink)
    engineer_reply(daemon, notification, "#assign me\n#waiting\nWhich browser?")
    relay = one(sink, lambda m: CUSTOMER in str(m["To"]) and "Which browser" in text_of(m), "relay")
    answer = mail(
        CUSTOMER,
        f"Re: {relay['Subject']}",
        "Firefox 128.\n\n> Which browser?",
        in_reply_to=relay["Message-ID"],
    )
    send(daemon.port, answer)
    forward = one(
        sink,
        lambda m: "alice@helpdesk.test" in str(m["To"]) and "Firefox 128" in text_of(m),
        "forward to the engineer",
    )
    assert "waiting -> open" in text_of(forward)
    assert show(daemon.config, reference)["status"] == "open"


def test_the_customer_can_close_with_a_hash_close_line(daemon: Daemon, sink: Sink):
    reference, _ = open_case(daemon, sink)
    send(
        daemon.port,
        mail(CUSTOMER, f"Re: [{reference}] Reports are empty", "It works now, thanks!\n#close\n"),
    )
    closed = one(
        sink,
        lambda m: CUSTOMER in str(m["To"]) and "now closed" in text_of(m),
        "closing confirmation",
    )
    assert reference in str(closed["Subject"])
    assert show(daemon.config, reference)["status"] == "closed"


def test_engineer_attachments_go_along(daemon: Daemon, sink: Sink):
    _, notification = open_case(daemon, sink)
    reply = mail(
        "alice@helpdesk.test",
        f"Re: {notification['Subject']}",
        "See the patch.",
        in_reply_to=notification["Message-ID"],
    )
    reply.add_attachment(b"--- a\n+++ b\n", maintype="text", subtype="x-diff", filename="fix.patch")
    send(daemon.port, reply)
    relay = one(
        sink,
        lambda m: CUSTOMER in str(m["To"]) and "See the patch" in text_of(m),
        "relay with attachment",
    )
    assert [a.get_filename() for a in relay.iter_attachments()] == ["fix.patch"]


# -- agreed deadlines, tiers and followers on an IPcelerate case (issue 21) -----------------


@pytest.fixture
def ipcelerate(tmp_path: Path, sink: Sink):
    from tests.ipcelerate import IPCELERATE

    port = free_port()
    with Daemon(
        write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra=IPCELERATE), port
    ) as running:
        yield running


def test_tier_due_and_plan_by_mail_reach_tier_2_the_customer_and_the_executive(
    ipcelerate: Daemon, sink: Sink
):
    customer = "jane@ipcelerate.test"
    send(ipcelerate.port, mail(customer, "Routing outage", "All routes are down."))
    notification = one(sink, to("alice@helpdesk.test", "New case"), "notification")
    reference = str(notification["Subject"]).split("]")[0].lstrip("[")
    assert "Level one:" in text_of(notification)  # the clocks running, by name
    engineer_reply(ipcelerate, notification, "#escalate\n#tier 2\n")
    handover = one(sink, to("bob@helpdesk.test", "Tier 2"), "tier 2 hand-over")
    assert reference in text_of(handover) and "level two" in text_of(handover)
    engineer_reply(ipcelerate, notification, "#due 2027-01-15\n")
    agreed = one(sink, to(customer, "Agreed date"), "agreed date")
    assert "Resolution by: Fri 2027-01-15 18:00 CST" in text_of(agreed)
    engineer_reply(ipcelerate, notification, "#plan Replace the line card tonight.\n")
    plan = one(sink, to(customer, "Action plan"), "action plan")
    assert "Replace the line card tonight." in text_of(plan)
    one(sink, to("executive@helpdesk.test", "Action plan"), "follower's action plan")
    # one mail per milestone for the executive, who follows since the escalation
    subjects = [str(m["Subject"]) for m in sink.to("executive@helpdesk.test")]
    assert [s.split("]")[1].split(":")[0].strip() for s in subjects] == [
        "Escalated (level 1)",
        "Agreed deadline",
        "Action plan",
    ]
    found = show(ipcelerate.config, reference)
    assert found["tier"] == 2 and found["followers"] == ["executive@helpdesk.test"]
    clocks = {c["name"]: c for c in found["clocks"]}
    assert clocks["action_plan"]["met"] is True
    assert clocks["resolution"]["agreed"]["by"] == "alice@helpdesk.test"
