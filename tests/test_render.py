"""Every template renders, and headers built from customer input stay headers."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import shutil
import signal
from datetime import UTC, date, datetime, timedelta

import pytest

from helpdeskd import config as configuration
from helpdeskd.config import PACKAGED_TEMPLATES
from helpdeskd.core import sla
from helpdeskd.core.commands import CommandError
from helpdeskd.core.render import Threading, message_id_for, render, subject_for
from helpdeskd.model import Attachment, Case, Mail
from tests.support import Daemon, Sink, free_port, sample_case, send, write_config
from tests.support import mail as customer_mail
from tests.test_cli import wait_for_log

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

CONTEXTS = {
    "acknowledgement": {
        "first_response": "4 working hours",
        "after_hours_note": "After hours, call +1 555 0100.",
        "definition": "Business is not operational",
    },
    "plan_lapsed": {
        "customer": "Acme",
        "plan": "gold",
        "expired": date(2026, 11, 30),
        "now_plan": "standard",
        "renewal_note": "Call us to renew.",
    },
    "fair_use_notice": {
        "customer": "Acme",
        "why": "over the gold plan's cap of 2",
        "month": "2026-12",
    },
    "reply_due": {"since": datetime(2026, 11, 23, 16, 0, tzinfo=UTC)},
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
    "close_refused": {"proof": "dkim=none dmarc=fail (acme.test)"},
    "close_not_allowed": {"why": "only the person who opened the case may close it"},
    "pending_close": {"customer": "Acme", "contacts": ("jane@acme.test",)},
    "not_covered": {"note": "Training is billed separately.", "category": "not_covered"},
    "agreed_deadline": {"clock": "resolution", "deadline": NOW, "again": True},
    "action_plan": {"plan": "Reproduce on 4.2, then patch the parser."},
    "tier_handover": {"tier": 2, "by": "alice@helpdesk.test", "started": ["level_two"]},
    "follower": {"milestone": "action plan", "detail": "Reproduce on 4.2."},
    "merged": {"folded": "HD-2026-00007"},
    "unmerged": {"surviving": "HD-2026-00001"},
    "reminder": {"set_by": "alice@helpdesk.test"},
    "page": {"ack_within": "15m", "step": 1},
}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return configuration.load(write_config(tmp_path_factory.mktemp("render")))


@pytest.fixture(scope="module")
def case(config):
    opened = sample_case(priority="P2", plan="standard", subject="Portal down")
    return sla.start_clocks(opened, config)


def parsed(msg):
    return email.message_from_bytes(msg.raw, policy=email.policy.default)


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


LONG_SUBJECT = (
    "Réclamation urgente : le portail client affiche « erreur 502 » depuis ce matin, "
    "今日は朝からログインできません — merci de rappeler Søren Ødegård au plus vite"
)


@pytest.mark.parametrize(
    "subject",
    [
        LONG_SUBJECT,
        "A plain ASCII subject that is long enough to be folded at least once, maybe twice, "
        "when it is written as a header line of at most seventy-eight characters",
        "Two  spaces,\ttab and =?utf-8?q?not_an_encoded_word?= kept as typed",
        "x" * 1200,
    ],
)
def test_long_subjects_are_folded_and_read_back_exactly(subject, config):
    """RFC 5322 folding with RFC 2047 encoded-words where needed: strict parsers read the same
    subject, with no leading space, and no line is longer than the RFCs allow."""
    case = sample_case(reference="HD-2026-00042", subject=subject)
    mail = Mail("relay", "relay", ("jane@acme.test",), CONTEXTS["relay"])
    rendered = render(mail, case, config, Threading("x@helpdesk.test"), NOW)
    head = rendered.raw.split(b"\r\n\r\n", 1)[0]
    assert not head.startswith(b" ") and b"Subject: \r\n" not in head
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert all(len(line) <= 76 for line in head.split(b"\r\n") if b"=?" in line)
    expected = subject_for(case, subject)
    assert str(parsed(rendered)["Subject"]) == expected == rendered.subject
    assert email.message_from_bytes(rendered.raw, policy=email.policy.strict)["Subject"] == expected


@pytest.mark.parametrize(
    "engineer", ["Søren Ødegård", "O'Brien, Pat (2nd line)", 'Jo "JJ" Smith', "Zoë Ångström-Ñúñez"]
)
def test_display_names_are_encoded_or_quoted(engineer, config, case):
    mail = Mail("relay", "relay", ("jane@acme.test",), {"body": "hi", "engineer": engineer})
    rendered = render(mail, case, config, Threading("x@helpdesk.test"), NOW)
    sender = parsed(rendered)["From"].addresses[0]
    assert sender.display_name == f"{engineer.strip()} via {config.helpdesk.name}"
    assert sender.addr_spec == config.helpdesk.address
    assert str(parsed(rendered)["From"]) == rendered.sender
    head = rendered.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 76 for line in head if b"=?" in line)


def test_bodies_and_attachment_names_come_back_as_written(config, case):
    body = "Grüße,\n" + "a long line " * 20 + "\ntrailing blanks   \n=3D is not a code\n"
    mail = Mail(
        "relay",
        "relay",
        ("jane@acme.test", "joe@acme.test"),
        {"body": body, "engineer": "Alice"},
        attachments=(Attachment("Überweisung März.pdf", "application/pdf", 3, b"%PD"),),
    )
    rendered = render(mail, case, config, Threading("x@helpdesk.test"), NOW)
    msg = parsed(rendered)
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert body in text == rendered.body
    [attachment] = msg.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("Überweisung März.pdf", b"%PD")
    assert msg["To"].addresses[1].addr_spec == "joe@acme.test"


def test_an_html_template_adds_an_alternative_beside_the_text(config, case, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(config.helpdesk.templates, templates)
    (templates / "relay.html").write_text("<p>{{ body }}</p>\n")
    mine = dataclasses.replace(
        config, helpdesk=dataclasses.replace(config.helpdesk, templates=templates)
    )
    mail = Mail(
        "relay",
        "relay",
        ("jane@acme.test",),
        {"body": "Fixed <b>now</b>", "engineer": "Alice"},
        attachments=(Attachment("fix.patch", "text/x-diff", 4, b"diff"),),
    )
    msg = parsed(render(mail, case, mine, Threading("x@helpdesk.test"), NOW))
    assert msg.get_content_type() == "multipart/mixed"
    assert "Fixed <b>now</b>" in msg.get_body(("plain",)).get_content()
    assert "<p>Fixed &lt;b&gt;now&lt;/b&gt;</p>" in msg.get_body(("html",)).get_content()
    assert [a.get_filename() for a in msg.iter_attachments()] == ["fix.patch"]


def test_a_configuration_reads_its_templates_once_and_a_new_one_reads_them_again(tmp_path, case):
    """Rendering never looks at the template files again (no stat a mail); loading the
    configuration again, as a reload does, reads the edited ones."""
    templates = tmp_path / "templates"
    shutil.copytree(PACKAGED_TEMPLATES, templates)
    path = write_config(tmp_path)
    path.write_text(
        path.read_text().replace("[helpdesk]\n", f'[helpdesk]\ntemplates = "{templates}"\n')
    )
    loaded = configuration.load(path)
    mail = Mail("note", "note", ("alice@helpdesk.test",), {"body": "Internal."})
    before = render(mail, case, loaded, Threading("x@helpdesk.test"), NOW)
    (templates / "note.txt").write_text("Subject: Edited\n\nEdited body\n")
    again = render(mail, case, loaded, Threading("x@helpdesk.test"), NOW)
    assert again.body == before.body != "Edited body\n"
    reloaded = render(mail, case, configuration.load(path), Threading("x@helpdesk.test"), NOW)
    assert (reloaded.subject, reloaded.body) == (f"[{case.reference}] Edited", "Edited body\n")


@pytest.mark.timeout(90)
def test_sighup_makes_the_daemon_send_edited_templates(tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(PACKAGED_TEMPLATES, templates)
    with Sink() as sink:
        port = free_port()
        path = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        path.write_text(
            path.read_text().replace("[helpdesk]\n", f'[helpdesk]\ntemplates = "{templates}"\n')
        )
        with Daemon(path, port) as daemon:
            send(port, customer_mail("jane@acme.test", "First", "Hello."))
            assert sink.wait_for(lambda m: "First" in str(m["Subject"]))
            ack = (templates / "acknowledgement.txt").read_text()
            (templates / "acknowledgement.txt").write_text(
                ack.replace("Subject: {{ case.subject }}", "Subject: Received: {{ case.subject }}")
            )
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for_log(daemon, "configuration reloaded")
            send(port, customer_mail("jane@acme.test", "Second", "Hello again."))
            assert sink.wait_for(lambda m: "Received: Second" in str(m["Subject"]))
