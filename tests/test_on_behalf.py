"""Cases opened on a customer's behalf, through the real flow on each store: an engineer's
forward with `#for` (inline, attached, or naming the address), and `helpdeskd open --for` with
`--at` moving the clocks. Outgoing mail goes to a relay that is not there, so it waits in the
outbox, where the test reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import cli, free_port, mail, queued, write_config
from tests.support import run_in_process as run

pytestmark = [pytest.mark.timeout(180)]

NOW = "2026-11-20T10:00:00-06:00"
CUSTOMER = "jane@acme.test"
ENGINEER = "alice@helpdesk.test"


@pytest.fixture
def config(tmp_path: Path, database) -> Path:
    return write_config(tmp_path, relay_port=free_port())


def only_case(config: Path) -> dict:
    (listed,) = json.loads(run(config, "cases", "--json"))
    return json.loads(run(config, "show", listed["reference"], "--json", "--now", NOW))


def assert_opened_for_jane(config: Path, words: str) -> dict:
    case = only_case(config)
    assert (case["customer"], case["plan"], case["opener"]) == ("Acme", "gold", CUSTOMER)
    customer, note = case["messages"][0], [m for m in case["messages"] if m["kind"] == "note"]
    assert (customer["from"], customer["kind"]) == (CUSTOMER, "customer")
    assert "Printing stopped" in customer["body"] and words not in customer["body"]
    assert [(m["from"], m["body"]) for m in note] == [(ENGINEER, words)]
    assert "forwarded by alice@helpdesk.test (#for)" in customer["route_reason"]
    acks = [(to, m) for kind, to, m in queued(config) if kind == "acknowledgement"]
    assert [to for to, _ in acks] == [[CUSTOMER]]
    assert words not in acks[0][1].as_string()
    return case


def test_for_on_an_inline_forward_opens_the_customers_case(config: Path):
    body = (
        "#for\nShe called me too, it is urgent for them.\n\n"
        "---------- Forwarded message ---------\n"
        f"From: Jane Doe <{CUSTOMER}>\nDate: Thu, 19 Nov 2026 17:00\n"
        "Subject: Printing stopped\nTo: Alice <alice@helpdesk.test>\n\n"
        "Printing stopped on every floor.\n"
    )
    forward = mail(f"Alice Engineer <{ENGINEER}>", "Fwd: Printing stopped", body)
    run(config, "ingest", "--now", NOW, "-", stdin=forward.as_bytes())
    case = assert_opened_for_jane(config, "She called me too, it is urgent for them.")
    assert case["subject"] == "Printing stopped"


def test_for_on_an_attached_forward_opens_the_customers_case(config: Path):
    original = mail(f"Jane Doe <{CUSTOMER}>", "Printing stopped", "Printing stopped, help.")
    forward = mail(f"Alice Engineer <{ENGINEER}>", "Fwd: Printing stopped", "#for\nFrom Jane.\n")
    forward.add_attachment(original)
    run(config, "ingest", "--now", NOW, "-", stdin=forward.as_bytes())
    assert_opened_for_jane(config, "From Jane.")


def test_for_address_names_the_customer_a_forward_hides(config: Path):
    body = "#for jane@acme.test\nOn the phone.\n\n-----Original Message-----\n\nPrinting stopped.\n"
    forward = mail(f"Alice Engineer <{ENGINEER}>", "Fwd: Printing stopped", body)
    run(config, "ingest", "--now", NOW, "-", stdin=forward.as_bytes())
    assert_opened_for_jane(config, "On the phone.")


def test_for_without_a_forward_opens_nothing_and_answers_the_engineer(config: Path):
    forward = mail(f"Alice Engineer <{ENGINEER}>", "Printing stopped", "#for\nJane called.\n")
    run(config, "ingest", "--now", NOW, "-", stdin=forward.as_bytes())
    assert json.loads(run(config, "cases", "--json")) == []
    ((kind, to, message),) = queued(config)
    assert (kind, to) == ("command_error", [ENGINEER])
    assert "#for needs a forwarded message" in message.get_body(("plain",)).get_content()


def test_for_an_address_that_may_not_open_answers_the_engineer_alone(tmp_path: Path, database):
    config = write_config(tmp_path, relay_port=free_port(), unknown_sender="reject")
    body = "#for x@nowhere.test\n\n-----Original Message-----\n\nHello.\n"
    forward = mail(f"Alice Engineer <{ENGINEER}>", "Fwd: Hello", body)
    run(config, "ingest", "--now", NOW, "-", stdin=forward.as_bytes())
    assert json.loads(run(config, "cases", "--json")) == []
    ((kind, to, message),) = queued(config)
    assert (kind, to) == ("command_error", [ENGINEER])
    assert "x@nowhere.test cannot have a case opened" in message.get_body(("plain",)).get_content()


def test_open_for_at_starts_the_clocks_when_the_customer_phoned(config: Path, tmp_path: Path):
    words = tmp_path / "call.txt"
    words.write_text("The scanner on floor 3 is down.\n", encoding="utf-8")
    printed = run(
        config, "open", "--for", CUSTOMER, "--subject", "Scanner down", "--priority", "P1",
        "--channel", "phone", "--at", "2026-11-20T03:00:00-06:00", "--body-file", str(words),
    )  # fmt: skip
    reference = printed.strip()
    case = json.loads(run(config, "show", reference, "--json", "--now", NOW))
    assert (case["customer"], case["priority"], case["opener"]) == ("Acme", "P1", CUSTOMER)
    assert case["opened_at"] == "2026-11-20T09:00:00+00:00"  # gold's calendar keeps UTC
    clocks = {c["name"]: c for c in case["clocks"]}
    # gold answers P1 within 30 minutes, around the clock: from the call, not from now
    assert clocks["first_response"]["deadline"] == "2026-11-20T09:30:00+00:00"
    assert case["messages"][0]["entrance"] == "open:phone"
    assert "The scanner on floor 3 is down." in case["messages"][0]["body"]
    assert any(e["kind"] == "on_behalf" and "(phone)" in e["detail"] for e in case["events"])
    assert [to for kind, to, _ in queued(config) if kind == "acknowledgement"] == [[CUSTOMER]]


def test_open_for_an_address_that_may_not_open_says_so(tmp_path: Path, database):
    config = write_config(tmp_path, relay_port=free_port(), unknown_sender="reject")
    result = cli(config, "open", "--for", "x@nowhere.test", "--subject", "Hi")
    assert result.returncode == 65, result.stderr.decode()
    assert "no case opened for x@nowhere.test" in result.stderr.decode()
