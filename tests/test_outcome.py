"""What a routed message does to its case, pure: no database, a fixed `now`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from helpdeskd import config as configuration
from helpdeskd.core.classify import classify
from helpdeskd.core.outcome import Context, outcome
from helpdeskd.core.parse import parse
from helpdeskd.core.route import Candidates, route
from helpdeskd.pipeline import own
from tests.support import mail, sample_case, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    loaded = configuration.load(write_config(tmp_path_factory.mktemp("outcome")))
    return replace(loaded, policy=replace(loaded.policy, forward_attachments_max=1000))


def new_case(config, message):
    inbound = parse(message.as_bytes())
    facts = classify(inbound, config, own(config), NOW.date())
    decision = route(inbound, facts, Candidates(None, None), config, NOW)
    return outcome(Context(inbound, facts, decision, config, NOW), "HD-2026-00001")


def test_large_attachments_are_named_not_forwarded(config):
    message = mail("jane@acme.test", "Logs", "see attached")
    message.add_attachment(b"x" * 600, maintype="text", subtype="plain", filename="small.log")
    message.add_attachment(b"y" * 900, maintype="application", subtype="zip", filename="big.zip")
    result = new_case(config, message)
    note = next(m for m in result.mails if m.kind == "notification")
    assert [a.filename for a in note.attachments] == ["small.log"]
    assert [a.filename for a in note.context["omitted"]] == ["big.zip"]


def test_a_new_case_is_acknowledged_and_announced(config):
    result = new_case(config, mail("jane@acme.test", "Help", "please"))
    assert result.created and result.case.status == "new"
    assert [m.kind for m in result.mails] == ["acknowledgement", "notification"]
    assert result.mails[0].automatic == "auto-replied"
    assert result.mails[1].to == ("alice@helpdesk.test",)  # the plan's tier-1 engineers


def test_an_alert_opens_a_case_without_acknowledgement(config):
    alert = mail(
        "monitor@acme.test", "Disk full", "95%", headers={"Auto-Submitted": "auto-generated"}
    )
    result = new_case(config, alert)
    assert result.created
    assert [m.kind for m in result.mails] == ["notification"]


def reply_on_case(config, sender: str, body: str):
    """A reply with the case's tag, from `sender`, through classify, route and outcome."""
    case = sample_case(reference="HD-2026-00001", plan="standard")
    inbound = parse(mail(sender, "Re: [HD-2026-00001] Help", body).as_bytes())
    facts = classify(inbound, config, own(config), NOW.date())
    decision = route(inbound, facts, Candidates(case, None), config, NOW)
    return facts, decision, outcome(Context(inbound, facts, decision, config, NOW))


def test_a_manager_answering_an_escalation_writes_a_note_not_to_the_customer(config):
    facts, decision, result = reply_on_case(config, "manager@helpdesk.test", "I will call.")
    assert (facts.sender.role, decision.action) == ("staff", "follow_up")
    assert result.record.kind == "note"
    assert all("jane@acme.test" not in m.to for m in result.mails)


def test_a_note_line_below_the_text_stops_the_reply(config):
    *_, result = reply_on_case(config, "alice@helpdesk.test", "Credit limit is zero.\n#note\n")
    assert [m.kind for m in result.mails] == ["command_error"]
    assert result.mails[0].to == ("alice@helpdesk.test",)


def test_a_bare_close_from_an_engineer_tells_the_customer(config):
    *_, result = reply_on_case(config, "alice@helpdesk.test", "#close\n")
    assert result.case.status == "closed"
    assert [(m.kind, m.to) for m in result.mails] == [("closed", ("jane@acme.test",))]
