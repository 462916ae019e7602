"""Every template renders, and headers built from customer input stay headers."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from helpdeskd import config as configuration
from helpdeskd.config import PACKAGED_TEMPLATES
from helpdeskd.core import sla
from helpdeskd.core.commands import CommandError
from helpdeskd.core.render import Threading, message_id_for, render, subject_for
from helpdeskd.model import Attachment, Case, Mail
from tests.support import sample_case, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

CONTEXTS = {
    "acknowledgement": {"first_response": "4 working hours"},
    "reject_notice": {"subject": "Hello"},
    "notification": {
        "body": "The portal is down.",
        "sender": "jane@acme.test",
        "sender_name": "Jane",
    },
    "follow_up": {
        "body": "More details.",
        "sender": "jane@acme.test",
        "previous_status": "waiting",
    },
    "relay": {"body": "Try again please.", "engineer": "Alice Engineer"},
    "signin_link": {"link": "https://support.example.com/signin/abc", "minutes": 15},
    "note": {"body": "Internal."},
    "loop_notice": {"reason": "the same text from jane@acme.test 3 times within 1h"},
    "command_error": {
        "errors": (CommandError("#prioirty P1", 1, "unknown command"),),
        "original_subject": "Re: x",
    },
    "closed": {"by": "timeout", "survey": True},
    "resolved": {"by": "engineer", "survey": False},
    "reopened": {"by": "customer"},
    "escalation": {
        "level": 2,
        "why": "first response breached by 1h 5m",
        "customer_words": "Please!",
    },
    "escalated_customer": {"level": 1, "name": "Team lead", "requested": True},
    "escalation_request": {"level": 1, "name": "Team lead", "refused": "too_soon", "again_at": NOW},
    "unauthorized_notice": {"subject": "Down", "customer": "Acme", "primary": "it@acme.test"},
    "unauthorized_forward": {
        "subject": "Down",
        "customer": "Acme",
        "primary": "it@acme.test",
        "sender": "joe@acme.test",
        "body": "Production is down.",
    },
    "allowlist_changed": {"customer": "Acme", "changes": [("add", "joe@acme.test")]},
    "monthly_report": {
        "customer": "Acme",
        "month": "April 2026",
        "bars": [{"label": "Cases opened", "text": "3", "width": 100}],
    },
    "announcement": {"subject": "Maintenance", "body": "Sunday 02:00.", "customer": "Acme"},
    "admin_alert": {
        "summary": "mailbox support unreachable",
        "detail": "login refused",
        "since": NOW,
    },
    "admin_recovered": {"summary": "mailbox support unreachable"},
    "unverified_notice": {"original_subject": "Re: x", "proof": "dkim=none dmarc=fail (x.test)"},
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return configuration.load(write_config(tmp_path_factory.mktemp("render")))


@pytest.fixture(scope="module")
def case(config):
    opened = sample_case(priority="P2", plan="standard", subject="Portal down")
    return sla.start_clocks(opened, config)


def parsed(msg):
    return email.message_from_bytes(
        msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default
    )


@pytest.mark.parametrize("template", sorted(p.stem for p in PACKAGED_TEMPLATES.glob("[!_]*.txt")))
def test_every_template_renders(template, config, case):
    context = CONTEXTS.get(template, {})
    mail = Mail(template, template, ("jane@acme.test",), context, automatic="auto-generated")
    msg = parsed(
        render(
            mail,
            case,
            config,
            Threading("HD-2026-00042.abc@helpdesk.test"),
            NOW,
            extra=_sweep_context(case, config),
        )
    )
    assert str(msg["Subject"]).strip()
    assert msg.get_body(("plain",)).get_content().strip()


def _sweep_context(case, config) -> dict:
    """What the scheduler's templates ask for beyond the common context."""
    later = NOW + timedelta(hours=3)
    return {
        "breached": True,
        "due": ["first_response"],
        "words": sla.words,
        "clocks": [sla.standing(case, c, config, later) for c in sla.running(case)],
        "close_after": "2 working days",
        "closes_at": NOW + timedelta(days=2),
    }


def test_customer_input_cannot_add_a_header(config, case):
    evil = Case(**{**case.__dict__, "subject": "Help\r\nBcc: everyone@evil.test\r\nX-Evil: 1"})
    mail = Mail(
        "relay",
        "relay",
        ("jane@acme.test\r\nBcc: x@evil.test",),
        {"body": "hi", "engineer": "Alice\r\nX-Injected: yes"},
    )
    msg = parsed(render(mail, evil, config, Threading("a@b", "c@d\r\nX-More: 1"), NOW))
    assert msg["Bcc"] is None and msg["X-Evil"] is None and msg["X-Injected"] is None
    assert msg["X-More"] is None
    assert str(msg["Subject"]).startswith("[HD-2026-00042] Help")


def test_automatic_mail_carries_the_loop_headers(config, case):
    ack = Mail(
        "acknowledgement",
        "acknowledgement",
        ("jane@acme.test",),
        CONTEXTS["acknowledgement"],
        automatic="auto-replied",
    )
    msg = parsed(render(ack, case, config, Threading("x@helpdesk.test"), NOW))
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Loop"] == "support@helpdesk.test"


def test_threading_headers_and_message_id(config, case):
    message_id = message_id_for(case.reference, "helpdesk.test", "0123abcd")
    assert message_id == "HD-2026-00042.0123abcd@helpdesk.test"
    mail = Mail("relay", "relay", ("jane@acme.test",), CONTEXTS["relay"])
    msg = parsed(
        render(
            mail,
            case,
            config,
            Threading(message_id, "orig@acme.test", ("orig@acme.test", "ack@helpdesk.test")),
            NOW,
        )
    )
    assert msg["Message-ID"] == f"<{message_id}>"
    assert msg["In-Reply-To"] == "<orig@acme.test>"
    assert msg["References"] == "<orig@acme.test> <ack@helpdesk.test>"


def test_attachments_go_along_with_their_names(config, case):
    mail = Mail(
        "relay",
        "relay",
        ("jane@acme.test",),
        CONTEXTS["relay"],
        attachments=(Attachment("fix.patch", "text/x-diff", 4, b"diff"),),
    )
    msg = parsed(render(mail, case, config, Threading("x@y"), NOW))
    assert [a.get_filename() for a in msg.iter_attachments()] == ["fix.patch"]


def test_the_subject_tag_is_not_doubled():
    case = Case(
        reference="HD-2026-00001",
        status="open",
        priority="P3",
        plan="p",
        customer=None,
        subject="x",
        opener="a@b",
        opened_at=NOW,
        updated_at=NOW,
    )
    assert subject_for(case, "Re: [HD-2026-00001] x") == "Re: [HD-2026-00001] x"
    assert subject_for(case, "x") == "[HD-2026-00001] x"
