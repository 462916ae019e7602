"""Robots recognised by what they are (core/robots.py), and people still taken for people."""

from __future__ import annotations

from dataclasses import replace

import pytest

from helpdeskd.core.autogen import RULES, Own, auto_generated, explain, is_alert
from helpdeskd.core.parse import parse
from helpdeskd.core.robots import ROBOTS
from helpdeskd.model import Inbound
from tests.test_autogen import mail as autogen_mail

OWN = Own(loop_value="support@helpdesk.test", message_id_domain="helpdesk.test")
NEWSLETTER = (
    "View this email in your browser: https://news.example.com/42\n\n"
    + "Our spring offers are here.\n" * 20
    + "\nTo unsubscribe, click here."
)


def mail(*headers: str, body: str = "Hello.", envelope: str | None = None) -> Inbound:
    inbound = autogen_mail(*headers, body=body)
    return inbound if envelope is None else replace(inbound, envelope_from=envelope)


def test_every_robot_rule_is_in_the_table_with_its_source() -> None:
    table = {rule.name: rule for rule in RULES}
    for robot in ROBOTS:
        assert table[robot.name].source == robot.source and robot.source
    assert all(rule.source for rule in RULES)


@pytest.mark.parametrize(
    ("rule", "headers"),
    [
        ("ticket-system", ["X-RT-Loop-Prevention: rt.example.com", "RT-Ticket: rt.example.com #7"]),
        ("ticket-system", ["X-OTRS-Loop: yes"]),
        ("ticket-system", ["X-Zendesk-From-Account-Id: 68b8aed"]),
        ("ticket-system", ["X-ServiceNow-Generated: true"]),
        ("issue-tracker", ["X-JIRA-FingerPrint: 978a1eb52201518931e77cb5725717ff"]),
        ("issue-tracker", ["X-GitHub-Reason: mention"]),
        ("issue-tracker", ["X-GitLab-Project: qemu"]),
        ("issue-tracker", ["X-Bugzilla-Reason: None", "X-Bugzilla-Type: changed"]),
        ("x-loop-yes", ["X-Loop: yes"]),
        ("ci-or-cron", ["X-Jenkins-Job: nightly"]),
        ("ci-or-cron", ["From: root@db1.example.com", "Subject: Cron <root@db1> backup.sh"]),
        ("ci-or-cron", ["X-Cron-Env: <SHELL=/bin/sh>"]),
        ("ci-or-cron", ["Subject: ** PROBLEM Service Alert: db1/disk is CRITICAL **"]),
        ("noreply-or-mailer-sender", ["From: Facebook <notification+zj4y@facebookmail.com>"]),
        ("list-server", ["From: fml-admin@lists.example.jp", "X-MLServer: fml [fml 4.0]"]),
        ("list-server", ["From: users-owner@lists.example.org", "X-BeenThere: users@x.org"]),
        ("list-server", ["X-MLServer: fml", "Message-ID: <200504292334.FMLFF.neko@x.org>"]),
        ("bounce-handler-return-path", ["Return-Path: <bounces+123-abc=example.com@sendgrid.net>"]),
        ("bounce-handler-return-path", ["Errors-To: 101BN3c3@bounce.quris.net"]),
        ("bulk-mailer", ["X-CSA-Complaints: csa-complaints@eco.de"]),
        ("bulk-mailer", ["X-Mailer: J4L-GFIMailer"]),
        ("noreply-or-mailer-sender", ["From: Gmail Team <gmail-noreply@google.com>"]),
        ("noreply-or-mailer-sender", ["From: mailer@shop.example.com"]),
        ("system-account-sender", ["From: oracle@db01.example.com"]),
        ("newsletter-sender", ["From: Quilting <enews@quilting.example.com>"]),
        ("lead-or-fax-gateway", ["Subject: [Online Lead] Online Lead #1111111"]),
        ("lead-or-fax-gateway", ["Subject: eFax message from 555-1234 - 2 page(s)"]),
        ("autoreply-subject-localised", ["Subject: Automatyczna odpowiedź: Faktura"]),
        ("autoreply-subject-localised", ["Subject: Automatikus válasz: számla"]),
        ("autoreply-subject-localised", ["Subject: 不在通知"]),
    ],
)  # fmt: skip
def test_each_robot_rule_hits(rule: str, headers: list[str]) -> None:
    assert rule in auto_generated(mail(*headers), OWN)


def test_a_monitoring_alert_is_never_answered_but_may_open_a_case() -> None:
    alert = mail("From: nagios@monitor.customer.example", "Subject: ** PROBLEM Host Alert: db1 **")
    assert auto_generated(alert, OWN) and is_alert(alert)


def test_a_system_account_envelope_of_a_web_server() -> None:
    hit = mail("Subject: /home/svn/public/app revision 214", envelope="www-data@example.com")
    assert "system-account-sender" in auto_generated(hit, OWN)


def test_a_newsletter_template_without_list_headers() -> None:
    assert "newsletter-body" in auto_generated(mail(body=NEWSLETTER), OWN)


def test_a_non_arf_complaint_report_from_a_providers_staff() -> None:
    raw = (
        b"From: staff@hotmail.com\r\nTo: support@helpdesk.test\r\n"
        b"Subject: complaint about message from 192.0.2.1\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: news@shop.example\r\nSubject: Offers\r\n\r\nBuy now\r\n--b--\r\n"
    )
    assert "provider-complaint" in auto_generated(parse(raw), OWN)


def test_a_ticket_systems_notification() -> None:
    notification = mail(
        "From: IT Helpdesk <helpdesk@vendor.example>",
        "Subject: [rt.vendor.example #4711] Your printer case was updated",
        "X-RT-Loop-Prevention: rt.vendor.example",
        "RT-Ticket: rt.vendor.example #4711",
        "X-Managed-BY: RT 4.4.4",
    )
    assert auto_generated(notification, OWN) == ("ticket-system",)
    [line] = explain(("ticket-system",))
    assert line.startswith("ticket-system: another ticket system's notification (RT ")


def forwarded(enclosed: bytes, subject: str) -> Inbound:
    raw = (
        b"From: Bob <bob@customer.example>\r\nTo: support@helpdesk.test\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nWhy do I get this? Please help.\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + enclosed + b"\r\n--b--\r\n"
    )
    return parse(raw)


@pytest.mark.parametrize(
    "inbound",
    [
        forwarded(
            b"From: MAILER-DAEMON@mx.example\r\nSubject: Undeliverable: invoice\r\n"
            b"X-Failed-Recipients: x@example.com\r\nAuto-Submitted: auto-replied\r\n\r\nFailed\r\n",
            "Fwd: Undeliverable: invoice",
        ),
        forwarded(
            b"From: staff@hotmail.com\r\nX-JIRA-FingerPrint: 1\r\nX-MLServer: fml\r\n"
            b"X-SG-EID: 1:2:3\r\n\r\nReport\r\n",
            "a strange report I received",
        ),
        mail("Subject: Fwd: Spring offers", body=NEWSLETTER),
        mail("Subject: Re: invoice", "In-Reply-To: <x@shop.example>", body=NEWSLETTER),
        # a member's post passed on by ezmlm: answered like the person's own mail
        mail("Mailing-List: contact users-help@lists.example.org; run by ezmlm"),
        # a relay that re-sends people's mail with root as the envelope sender
        mail("Subject: AW: Agenda", envelope="root@samba.example.com"),
        mail("From: Anna Newman <anna.news@example.com>", "Subject: I have a question"),
        mail("Subject: Automation of invoices in my account"),
        mail("Subject: 不在票について"),
        mail("Subject: Lead time for the new printer?"),
        mail("X-Loop: alice@example.com"),
        mail("From: Tom Mailer <tom.mailer@example.com>"),
        mail("From: Acme Marketing <marketing@acme.example>", "Subject: Our logo upload fails"),
        # Amazon WorkMail: a person's mail, sent through SES
        mail("Feedback-ID: 1.eu-west-1.abc:AmazonSES", "X-SES-Outgoing: 2026.11.18-54.240.4.1"),
        mail("From: Ann Alertson <ann.alerts@example.com>", "Subject: PROBLEM with my invoice"),
    ],
)
def test_people_are_still_people(inbound: Inbound) -> None:
    assert auto_generated(inbound, OWN) == ()


def test_ingest_dry_run_says_which_rule_fired_and_its_source(tmp_path) -> None:
    import json

    from tests.support import cli, write_config

    raw = (
        b"From: IT example <example@jira.example.com>\r\nTo: support@helpdesk.test\r\n"
        b"Subject: [JIRA] (SYS-422) printer\r\nMessage-ID: <j1@jira.example.com>\r\n"
        b"X-JIRA-FingerPrint: 978a1eb52201518931e77cb5725717ff\r\n\r\nUpdated.\r\n"
    )
    result = cli(write_config(tmp_path), "ingest", "--dry-run", "-", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    decision = json.loads(result.stdout)
    assert decision["auto_generated"] == ["issue-tracker"]
    assert "X-JIRA-FingerPrint" in decision["auto_rules"][0]
    assert decision["would_send"] == []


def test_a_robot_threading_onto_a_case_says_which_rule_fired(tmp_path) -> None:
    from datetime import UTC, datetime

    from helpdeskd import config as configuration
    from helpdeskd.core.classify import classify
    from helpdeskd.core.route import Candidates, route
    from tests.support import sample_case, write_config

    config = configuration.load(write_config(tmp_path))
    now = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)
    notice = mail("In-Reply-To: <HD-2026-00042.1@helpdesk.test>", "X-GitHub-Reason: mention")
    facts = classify(notice, config, OWN, now.date())
    found = Candidates(None, sample_case(), "HD-2026-00042.1@helpdesk.test")
    decision = route(notice, facts, found, config, now)
    assert decision.action == "follow_up"
    assert decision.reason.endswith("auto-generated (issue-tracker)")
