"""A case's participants, end to end through the listener on each store: a customer's Cc
gets the engineer's replies and threads back, an outside address is flagged to the engineer,
`#cc add|remove` changes the list, and no engineer's private mailbox is ever copied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import Daemon, Sink, free_port, mail, run_in_process, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CUSTOMER = "jane@acme.test"
COLLEAGUE = "pete@acme.test"
OUTSIDER = "consultant@partner.test"


def text_of(message) -> str:
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""


def one(sink: Sink, predicate, what: str):
    found = sink.wait_for(predicate)
    assert found, f"no {what}; received: {[str(m['Subject']) for m in sink.received]}"
    return found[-1]


def show(config: Path, reference: str) -> dict:
    return json.loads(run_in_process(config, "show", reference, "--json"))


def open_copied_case(daemon: Daemon, sink: Sink):
    """Jane writes to support with a colleague, an outsider and an engineer's own address in
    Cc; returns the reference and the engineers' notification."""
    opened = mail(
        f"Jane <{CUSTOMER}>",
        "Invoices do not print",
        "Nothing prints since Monday.",
        headers={"Cc": f"{COLLEAGUE}, {OUTSIDER}, alice@helpdesk.test"},
    )
    send(daemon.port, opened)
    notification = one(
        sink, lambda m: "New case" in str(m["Subject"]), "notification to the engineers"
    )
    reference = str(notification["Subject"]).split("]")[0].lstrip("[")
    return reference, notification


def engineer(daemon: Daemon, notification, body: str, cc: str | None = None) -> None:
    headers = {"Cc": cc} if cc else None
    reply = mail(
        "Alice Engineer <alice@helpdesk.test>",
        f"Re: {notification['Subject']}",
        body,
        in_reply_to=notification["Message-ID"],
        headers=headers,
    )
    send(daemon.port, reply)


def test_copied_colleagues_get_the_reply_and_thread_back(daemon: Daemon, sink: Sink, database):
    reference, notification = open_copied_case(daemon, sink)
    text = text_of(notification)
    assert f"External:       {OUTSIDER}" in text
    assert COLLEAGUE not in text.split("External:")[1].splitlines()[0]
    found = show(daemon.config, reference)
    assert found["participants"] == [COLLEAGUE, OUTSIDER]  # never alice's own mailbox

    engineer(daemon, notification, "Please try the new driver.", cc="boss@elsewhere.test")
    relay = one(sink, lambda m: "new driver" in text_of(m), "the engineer's reply")
    assert str(relay["To"]) == CUSTOMER
    assert str(relay["Cc"]) == f"{COLLEAGUE}, {OUTSIDER}"
    (envelope,) = [e for m, e in zip(sink.received, sink.envelopes, strict=True) if m is relay]
    assert sorted(envelope[1]) == sorted([CUSTOMER, COLLEAGUE, OUTSIDER])
    assert not [m for m in sink.received if "boss@elsewhere.test" in m.as_string()]

    answer = mail(OUTSIDER, f"Re: {relay['Subject']}", "The driver fixed it.",
                  in_reply_to=relay["Message-ID"])  # fmt: skip
    send(daemon.port, answer)
    one(sink, lambda m: "The driver fixed it." in text_of(m), "the outsider's reply to engineers")
    after = show(daemon.config, reference)
    (theirs,) = [m for m in after["messages"] if m["from"] == OUTSIDER]
    assert theirs["kind"] == "customer"
    assert after["participants"] == [COLLEAGUE, OUTSIDER]  # still in Cc, not the requester
    assert len(json.loads(run_in_process(daemon.config, "cases", "--json"))) == 1


def test_cc_add_and_remove_change_the_participants(daemon: Daemon, sink: Sink, database):
    reference, notification = open_copied_case(daemon, sink)
    engineer(
        daemon, notification, "#cc remove consultant@partner.test\n#cc add ann@acme.test\n\nDone."
    )
    relay = one(sink, lambda m: "Done." in text_of(m), "the engineer's reply")
    assert str(relay["Cc"]) == f"{COLLEAGUE}, ann@acme.test"
    found = show(daemon.config, reference)
    assert found["participants"] == [COLLEAGUE, "ann@acme.test"]
    text = run_in_process(daemon.config, "show", reference)
    assert f"participants {COLLEAGUE}, ann@acme.test" in text


def test_an_engineer_is_never_made_a_participant(daemon: Daemon, sink: Sink, database):
    reference, notification = open_copied_case(daemon, sink)
    engineer(daemon, notification, "#cc add bob@helpdesk.test\n\nSecret words.")
    error = one(sink, lambda m: "Not applied" in str(m["Subject"]), "the command error")
    assert "is one of our own people" in text_of(error)
    assert not [m for m in sink.received if "Secret words" in text_of(m)]
    assert show(daemon.config, reference)["participants"] == [COLLEAGUE, OUTSIDER]


MANAGER_PLAN = """
[plans.managed]
calendar = "business"
first_response = { P1 = "2h", P2 = "4h", P3 = "1d", P4 = "3d" }
resolution = { P1 = "3d", P2 = "5d", P3 = "20d", P4 = "20d" }
service_manager = "manager.services@helpdesk.test"
"""


def test_none_of_our_own_people_is_made_a_participant(tmp_path: Path, sink: Sink, database):
    """A service manager, an escalation contact and an admin are our own people as much as an
    engineer: each `#cc add` of one is refused, and nothing of the reply is applied."""
    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra=MANAGER_PLAN)
    ours = ["manager.services@helpdesk.test", "lead@helpdesk.test", "ops@helpdesk.test"]
    with Daemon(config, port) as daemon:
        reference, notification = open_copied_case(daemon, sink)
        lines = "".join(f"#cc add {address}\n" for address in ours)
        engineer(daemon, notification, f"{lines}#cc add ann@acme.test\n\nSecret words.")
        error = one(sink, lambda m: "Not applied" in str(m["Subject"]), "the command error")
        for address in ours:
            assert f'"{address}" is one of our own people' in text_of(error)
        assert not [m for m in sink.received if "Secret words" in text_of(m)]
        assert show(config, reference)["participants"] == [COLLEAGUE, OUTSIDER]
