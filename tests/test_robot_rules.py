"""Robots recognised by what they are (core/robots.py), and people still taken for people."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdeskd.core.autogen import RULES, Own, auto_generated, explain, is_alert
from helpdeskd.core.parse import parse
from helpdeskd.core.robots import OPT_OUT, ROBOTS, VIEW_IN_BROWSER, Phrases
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
        ("lead-gateway", ["Subject: [Online Lead] Online Lead #1111111"]),
        ("fax-gateway", ["Subject: eFax message from 555-1234 - 2 page(s)"]),
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


# --- robots without any machine header: what the body and the sender say ------------------

OFFERS = "Our spring offers are here: https://shop.example/spring\n" + "Great deals.\n" * 8


def footer_mail(footer: str, *headers: str) -> Inbound:
    """Bulk mail from a person-looking address, with no List-* or Precedence header."""
    return mail("From: Anna Berg <anna.berg@shop.example>", *headers, body=OFFERS + footer)


@pytest.mark.parametrize(
    "footer",
    [
        "You received this email because you signed up.\nUnsubscribe: https://shop.example/u/1",
        "Zum Abmelden vom Newsletter klicken Sie hier: https://shop.example/u/1",
        "Pour vous désinscrire, cliquez ici : https://shop.example/u/1",
        "Pour vous désabonner de nos envois :\nhttps://shop.example/u/1",
        "Si no deseas recibir más correos, puedes darte de baja aquí: https://shop.example/u/1",
        "Se non vuoi più ricevere le nostre email, clicca qui per cancellarti: "
        "https://shop.example/u/1",
        "Wilt u geen e-mails meer ontvangen? Afmelden: https://shop.example/u/1",
        "Para descadastrar seu e-mail, clique aqui: https://shop.example/u/1",
        "Para cancelar sua inscrição, acesse https://shop.example/u/1",
        "Vill du inte längre få våra utskick? Avregistrera dig här: https://shop.example/u/1",
        "Aby wypisać się z newslettera, kliknij tutaj: https://shop.example/u/1",
        "配信停止はこちら https://shop.example/u/1",
    ],
)
def test_an_unsubscribe_footer_with_its_link(footer: str) -> None:
    assert "unsubscribe-footer" in auto_generated(footer_mail(footer), OWN)


def html_mail(html: str, *headers: str, plain: str | None = None) -> Inbound:
    heads = ["From: Anna Berg <anna.berg@shop.example>", "To: support@helpdesk.test"]
    heads += [*headers, 'Content-Type: multipart/alternative; boundary="b"']
    text = "" if plain is None else f"--b\r\nContent-Type: text/plain\r\n\r\n{plain}\r\n"
    body = f"{text}--b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n"
    return parse("\r\n".join([*heads, "", body]).encode())


PIXEL = '<img src="https://t.shop.example/o/1.gif" width="1" height="1" alt="">'


def test_an_opt_out_beside_a_tracking_pixel() -> None:
    html = f"<p>Spring offers.</p><p>Nicht mehr interessiert? Abmelden.</p>{PIXEL}"
    assert "unsubscribe-footer" in auto_generated(html_mail(html), OWN)


def test_an_opt_out_link_in_the_html_twin() -> None:
    html = (
        '<p>Spring offers: <a href="https://shop.example/spring">see them</a>.</p>'
        '<p><a href="https://shop.example/u/1">Unsubscribe</a> | Preferences</p>'
    )
    plain = "Spring offers: see them.\n\nUnsubscribe | Preferences"
    assert "unsubscribe-footer" in auto_generated(html_mail(html, plain=plain), OWN)


def test_an_opt_out_button_in_the_first_person() -> None:
    html = (
        '<p>Nos offres de printemps : <a href="https://shop.example/p">voir</a>.</p>'
        '<p><a href="https://shop.example/u/1">Je me désinscris</a></p>'
    )
    assert "unsubscribe-footer" in auto_generated(html_mail(html), OWN)


def test_a_view_in_browser_line_and_an_opt_out_in_another_language() -> None:
    body = "Im Browser ansehen\n\n" + "Unsere Angebote.\n" * 8 + "Newsletter abbestellen"
    inbound = mail("From: Anna Berg <anna.berg@shop.example>", body=body)
    assert "unsubscribe-footer" in auto_generated(inbound, OWN)


@pytest.mark.parametrize(
    "headers",
    [
        ["Subject: Fax from +49 30 1234567 (2 pages)"],
        ["Subject: New fax message from 555-0100"],
        ["Subject: Neues Fax von 030 1234567"],
        ["Subject: [Fax2Mail] Document received"],
        ["Subject: RingCentral fax from (650) 555-0100"],
        ["From: fax@office.example", "Subject: Scan"],
        ["From: Office Fax <faxmail@office.example>", "Subject: 2 pages"],
        ["From: eFax <message@inbound.efax.com>", "Subject: Document"],
        ["From: Fax2Mail <delivery@fax2mail.example>", "Subject: Document"],
    ],
)
def test_a_fax_gateway_by_its_subject_or_sender(headers: list[str]) -> None:
    assert "fax-gateway" in auto_generated(mail(*headers), OWN)


@pytest.mark.parametrize(
    "inbound",
    [
        mail("Subject: Newsletter", body="Please unsubscribe me from your newsletter."),
        mail(
            "Subject: Cannot unsubscribe",
            body="I tried to unsubscribe at https://shop.example/u/1 but it fails.\n"
            "My account: https://shop.example/account",
        ),
        mail(
            "Subject: Unsubscribe link",
            body="Your unsubscribe link https://shop.example/u/1 gives an error 500.",
        ),
        mail(
            "Subject: Abmeldung",
            body="Ich möchte mich abmelden: https://shop.example/u/1 https://shop.example/a",
        ),
        mail(
            "Subject: 配信停止",
            body="配信停止してください。https://shop.example/u/1 https://x.example",
        ),
        mail(
            "Subject: Re: Spring offers",
            "In-Reply-To: <n1@shop.example>",
            body="Why do I get these?\n\n> Unsubscribe: https://shop.example/u/1\n> https://x.example",
        ),
        mail(
            "Subject: offers",
            body="Why do I get these?\n\n> To unsubscribe: https://shop.example/u/1\n"
            "> https://shop.example/spring",
        ),
        mail(
            "Subject: group not saved",
            body="The group is not saved after a refresh.\n\n2013/7/20 sam <info@example.org>\n"
            "| To respond, visit https://meta.example.org/t/8198 in your browser.\n"
            "| To unsubscribe from these emails, visit https://meta.example.org/prefs",
        ),
        html_mail(f"<p>Hi, the portal is down since 9:00. Can you help?</p>{PIXEL}"),
        html_mail(
            '<p>I clicked <a href="https://shop.example/u/1">unsubscribe</a> but I still get'
            ' your offers. See <a href="https://shop.example/spring">this one</a>.</p>'
        ),
        mail("Subject: Our fax machine is broken", body="Tel: +49 30 1234\nFax: +49 30 1235"),
        mail("From: Max Fax <max.fax@example.com>", "Subject: Fax from our lawyer"),
    ],
)
def test_people_writing_about_unsubscribing_or_faxes_are_people(inbound: Inbound) -> None:
    assert auto_generated(inbound, OWN) == ()


# Pieces of the opt-out and view-in-browser wordings, of near misses and of text around them,
# in ASCII and not, for the fast ASCII search to be compared with the case-insensitive one.
PIECES = (
    "unsubscribe", "UnSubscribe", "opt-out", "OPT OUT", "opt", "out", "view", "VIEW this",
    "e-mail", "EMAIL", "online", "in your browser", "WEB", "web版", "Web版", "abmelden",
    "Désinscrire", "DÉSABONNER", "\u0131", "\u017f", "\u212a", "I", "K", "S", " ", "\n", "\t",
    "\x1c", "-", "ブラウザで", "配信停止", "wypisać", "no longer wish to receive",
)  # fmt: skip


@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_phrases_find_what_the_case_insensitive_pattern_finds(text: str) -> None:
    for phrases in (OPT_OUT, VIEW_IN_BROWSER):
        expected = re.compile(phrases.lowered.pattern, re.IGNORECASE).search(text) is not None
        assert phrases.search(text) == expected
        assert phrases.search(text.upper()) == (phrases.anycase.search(text.upper()) is not None)


def test_phrases_refuse_a_pattern_that_is_not_in_lower_case() -> None:
    for pattern in ("WEB版", r"\W+", "\u0131"):
        with pytest.raises(ValueError):
            Phrases(pattern)


@pytest.mark.parametrize(
    ("body", "fires"),
    [
        ("Pages: 2\nRemote CSID: +49 30 1234567\n", True),
        ("TSID: 030 1234567\n", True),
        ("REMOTE STATION ID: 555 0100\n", True),
        ("Absenderkennung: 030 1234567\nSeiten: 2\n", True),
        ("Our csid field is empty in the export.\n", False),  # the station ids in capitals only
        ("The CSIDs differ between the two sites.\n", False),
    ],
)
def test_a_fax_gateway_by_the_station_ids_it_reports(body: str, fires: bool) -> None:
    inbound = mail("From: Office <office@example.com>", "Subject: Document", body=body)
    assert ("fax-gateway" in auto_generated(inbound, OWN)) == fires
    reply = mail("From: Office <office@example.com>", "Subject: Re: Document", body=body)
    assert "fax-gateway" not in auto_generated(reply, OWN)
