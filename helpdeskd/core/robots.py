"""Robots recognised by what they are: the marks other software puts on its mail.

Pure. RFC 3834 and the list headers (autogen.py) catch well-behaved robots; these rules catch
the others by the headers their software is known to add (ticket systems, issue trackers, CI
and cron, list servers, bulk mailers), by the addresses robots send from, and by the formats
of provider complaints and localised auto-replies. Each entry names where its mark comes from,
so `show` and `ingest --dry-run` can say why a message was taken for a machine's.

A person forwarding a robot's mail is still a person: header rules read only the message's
own header fields, never an enclosed message's, and body rules skip replies and forwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from helpdeskd.core.address import mailboxes
from helpdeskd.model import Inbound


@dataclass(frozen=True)
class Robot:
    name: str
    description: str
    check: Callable[[Inbound], bool]
    strong: bool
    source: str


def _has_any(inbound: Inbound, names: tuple[str, ...]) -> bool:
    wanted = {n.lower() for n in names}
    return any(name.lower() in wanted for name, _ in inbound.headers)


def _local_part(address: str) -> str:
    return address.rpartition("@")[0].lower()


def _sender_addresses(inbound: Inbound) -> list[str]:
    """From's own address (not a fallback's) and the envelope sender."""
    written = [b.address for b in mailboxes(inbound.header("From") or "")[:1] if b.address]
    envelope = [inbound.envelope_from] if inbound.envelope_from else []
    return [*(written or [inbound.from_addr]), *envelope]


# -- ticket systems and issue trackers --------------------------------------------------------

TICKET_SYSTEM_HEADERS = (
    "X-RT-Loop-Prevention",  # Request Tracker (RT::Action::SendEmail)
    "RT-Ticket",
    "X-RT-Ticket",
    "X-Zendesk-From-Account-Id",  # Zendesk, on every mail its ticketing system sends
    "X-ServiceNow-Generated",  # ServiceNow (Zammad's service_now_check.rb)
)
ISSUE_TRACKER_HEADERS = (
    "X-JIRA-FingerPrint",  # JIRA (Zammad's jira_check.rb)
    "X-GitHub-Reason",  # GitHub notifications
    "X-GitLab-Project",  # GitLab (app/mailers: add_project_headers)
    "X-GitLab-Project-Id",
    "X-Bugzilla-Reason",  # Bugzilla
    "X-Bugzilla-Type",
    "X-Redmine-Host",  # Redmine
    "X-Redmine-Project",
    "X-Trac-Ticket-URL",  # Trac
    "X-Launchpad-Message-Rationale",  # Launchpad
    "X-Phabricator-Sent-This-Message",  # Phabricator
    "X-Gerrit-MessageType",  # Gerrit
)


def _ticket_system(inbound: Inbound) -> bool:
    otrs = (inbound.header("X-OTRS-Loop") or "").strip().lower()
    return _has_any(inbound, TICKET_SYSTEM_HEADERS) or otrs not in ("", "no", "false")


def _issue_tracker(inbound: Inbound) -> bool:
    return _has_any(inbound, ISSUE_TRACKER_HEADERS)


def _loop_yes(inbound: Inbound) -> bool:
    return any(v.strip().lower() in ("yes", "true") for v in inbound.header_all("X-Loop"))


# -- CI, monitoring, cron ---------------------------------------------------------------------

CI_HEADERS = ("X-Jenkins-Job", "X-Cron-Env")  # Jenkins email-ext; Vixie cron's environment
CRON_SUBJECT = re.compile(r"^Cron <[^<>\s]+@[^<>\s]+> ")  # Vixie/cronie: "Cron <user@host> cmd"
WEB_SERVER_ACCOUNTS = frozenset({"www-data", "www", "wwwrun", "apache", "httpd", "nginx"})
SYSTEM_ACCOUNTS = WEB_SERVER_ACCOUNTS | frozenset(
    {"root", "daemon", "nobody", "cron", "postgres", "mysql", "oracle", "jenkins", "nagios"}
    | {"icinga", "zabbix", "monit"}
)


# Nagios/Icinga default notification commands, Check_MK and Monit subjects (Zammad's
# monitoring filters read the same).
MONITORING_SUBJECT = re.compile(
    r"^\s*(?:\*\* (?:PROBLEM|RECOVERY|ACKNOWLEDGEMENT|FLAPPING\w*|DOWNTIME\w*|CUSTOM)"
    r" (?:Service|Host) (?:Alert|Notification)|Check_MK: |monit alert -- )",
    re.IGNORECASE,
)


def monitoring_alert(inbound: Inbound) -> bool:
    """A monitoring system's alert by its subject template: it may open a case (autogen's
    is_alert), but is never answered."""
    return bool(MONITORING_SUBJECT.match(inbound.subject))


def _ci_or_cron(inbound: Inbound) -> bool:
    return (
        _has_any(inbound, CI_HEADERS)
        or bool(CRON_SUBJECT.match(inbound.subject))
        or monitoring_alert(inbound)
    )


def _system_account(inbound: Inbound) -> bool:
    """From a system account, or sent by a web server's (a form, a commit hook). A root
    envelope alone proves nothing: a relay or a .forward re-sends people's mail as root."""
    sender, *envelope = _sender_addresses(inbound)
    return _local_part(sender) in SYSTEM_ACCOUNTS or any(
        _local_part(a) in WEB_SERVER_ACCOUNTS for a in envelope
    )


# -- list servers -----------------------------------------------------------------------------

LIST_SERVER_HEADERS = (
    "X-MLServer",  # fml
    "X-ML-Name",
    "X-BeenThere",  # Mailman
    "X-Mailman-Version",
    "X-Google-Group-Id",  # Google Groups
    "X-Google-Loop",
    "X-ListServer",  # CommuniGate Pro LIST
    "Mailing-List",  # ezmlm, SmartList
    "X-Mailing-List",
    "X-Ecartis-Version",
)
FML_MESSAGE_ID = re.compile(r"^\d+\.FML")  # sisimai's lhost/fml
LIST_ROBOT = re.compile(
    r"(?:^|[-_.+])(?:admin|owner|request|bounces?|listserv|majordomo|mailman|sympa|fml"
    r"|ezmlm|listmaster|lists?)$"
)


def _list_server(inbound: Inbound) -> bool:
    """The list server's own mail (a loop alert, a moderation notice), not a member's post
    that the list passed on: a list header and the list's own address as the sender."""
    if not _has_any(inbound, LIST_SERVER_HEADERS):
        return False
    if FML_MESSAGE_ID.search(inbound.message_id or ""):
        return True  # fml writes its own mail's Message-ID as <date.FML...@host>
    return any(LIST_ROBOT.search(_local_part(a)) for a in _sender_addresses(inbound))


# -- senders and bulk mail --------------------------------------------------------------------

NOREPLY = re.compile(
    r"(?:^|[-_.+])(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply)(?:$|[-_.+])"
    # at the start only: tom.mailer@ is a surname
    r"|^(?:mailer|notifications?|notify|alerts?|auto-?(?:mailer|reply|responder|confirm))"
    r"(?:$|[-_.+])"
)
NEWSLETTER_SENDER = re.compile(
    # not marketing@ or sales@: a customer's own team may well write from those
    r"^(?:e?news(?:letters?)?|newsflash|announce(?:ments?)?|offers|deals|campaigns?|mailings?)"
    r"(?:$|[-_.+])|[-_](?:newsletter|newsflash)$"
)
BOUNCE_HANDLER = re.compile(r"^(?:bounces?|bounce-.*|.*-bounces?|bounces?[-+=].*)$")
# Not Feedback-ID nor X-SES-Outgoing: Amazon SES puts them on people's mail too (WorkMail).
BULK_HEADERS = (
    "X-CSA-Complaints",  # Certified Senders Alliance: certified bulk senders only
    "X-Campaign",
    "X-Campaign-Id",
    "X-CampaignID",
    "X-MC-User",  # Mailchimp / Mandrill
    "X-SG-EID",  # SendGrid
    "X-Mailgun-Tag",
    "X-Newsletter",
)
BULK_MAILER = re.compile(
    r"newsletter|mass ?mail|bulk ?mail|gfimailer|html mailer|phplist|mailchimp|sendblaster"
    r"|constant ?contact|acymailing|mailpoet|interspire|oempro|listmonk|mautic|emarsys"
    r"|campaign ?monitor|sendinblue|brevo|mailjet|e-?goi|ymlp",
    re.IGNORECASE,
)


def _noreply_or_mailer(inbound: Inbound) -> bool:
    return any(NOREPLY.search(_local_part(a)) for a in _sender_addresses(inbound)[:1])


def _newsletter_sender(inbound: Inbound) -> bool:
    return any(NEWSLETTER_SENDER.search(_local_part(a)) for a in _sender_addresses(inbound)[:1])


def _bounce_handler(inbound: Inbound) -> bool:
    """VERP and list return paths (`bounces+...@`, `list-bounces@`, `@bounce.example`): the
    return path of bulk mail, never a person's."""
    paths = [inbound.envelope_from or "", *inbound.header_all("Errors-To")]
    for path in paths:
        for box in mailboxes(path)[:1]:
            local, _, domain = box.address.partition("@")
            if BOUNCE_HANDLER.match(local) or domain.split(".")[0] in ("bounce", "bounces"):
                return True
    return False


def _bulk_mailer(inbound: Inbound) -> bool:
    mailer = " ".join(inbound.header_all("X-Mailer") + inbound.header_all("X-JMSavedFile"))
    return _has_any(inbound, BULK_HEADERS) or bool(BULK_MAILER.search(mailer))


REPLY_OR_FORWARD = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|fwd?|wg|tr|rv|enc|i|r|doorst|vl)\s*(?:\[\d+\])?\s*:", re.I
)
VIEW_IN_BROWSER = re.compile(
    r"(?:view|read|open|see|display)\w*\s+(?:this\s+|the\s+|it\s+)?(?:e-?mail|message|newsletter"
    r"|version|online|in\s+(?:a|your)\s+(?:web\s+)?browser)",
    re.IGNORECASE,
)
OPT_OUT = re.compile(
    r"unsubscribe|opt[- ]?out|stop receiving|no longer (?:wish|want) to receive"
    r"|abmelden|désinscri|darse de baja|disiscri|afmelden|配信停止",
    re.IGNORECASE,
)


def _newsletter_body(inbound: Inbound) -> bool:
    """A newsletter template: "view it in your browser" at the very top, an opt-out at the
    end. Replies and forwards never count: that is a person passing a newsletter on."""
    if inbound.in_reply_to or REPLY_OR_FORWARD.match(inbound.subject):
        return False
    text = inbound.text.strip()
    return bool(VIEW_IN_BROWSER.search(text[:400]) and OPT_OUT.search(text[-2000:]))


# -- lead and fax gateways -------------------------------------------------------------------

ADF_BODY = re.compile(r"<\?adf\s+version\s*=", re.IGNORECASE)  # Auto-lead Data Format XML
LEAD_SUBJECT = re.compile(
    r"^\s*\[online lead\]|\bhas (?:a )?(?:new )?leads? for you\b|^\s*new (?:web |online )?lead\b",
    re.IGNORECASE,
)
FAX_SUBJECT = re.compile(
    r"^\s*(?:efax message from|new fax (?:received|message)|fax (?:received|message) from"
    r"|facsimile (?:received|from)|you have (?:received )?a new fax|incoming fax|fax von"
    r"|fax de |neues fax)",
    re.IGNORECASE,
)
FAX_MAILER = re.compile(r"hylafax|rightfax|efax|faxmaker|fritz!?box|capi ?fax|mfax", re.I)


def _lead_or_fax_gateway(inbound: Inbound) -> bool:
    if ADF_BODY.search(inbound.text[:2000]) or LEAD_SUBJECT.search(inbound.subject):
        return True
    mailer = " ".join(inbound.header_all("X-Mailer"))
    return bool(FAX_SUBJECT.match(inbound.subject) or FAX_MAILER.search(mailer))


# -- provider complaints and localised auto-replies -------------------------------------------

PROVIDER_REPORTERS = re.compile(
    r"^(?:staff|abuse|scomp|fbl|feedback(?:[-_.]?loop)?|complaints?|spam[-_.]?reports?"
    r"|report[-_.]?spam|junk[-_.]?reports?|arf)(?:$|[-_.+])"
)
ENCLOSED = frozenset({"message/rfc822", "text/rfc822-headers"})


def _provider_complaint(inbound: Inbound) -> bool:
    """A provider's complaint in the older, non-ARF form: a plain multipart/mixed from its
    staff or abuse desk with the offending message enclosed (Hotmail JMRP, AOL SCOMP)."""
    reporter = any(PROVIDER_REPORTERS.match(_local_part(a)) for a in _sender_addresses(inbound))
    enclosed = any(a.content_type in ENCLOSED for a in inbound.attachments)
    return reporter and enclosed and not REPLY_OR_FORWARD.match(inbound.subject)


# Outlook and other clients' localised auto-reply prefixes, and the usual vacation words.
AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]{1,40}\]\s*)?(?:"
    r"automatyczna odpowied[źz]|odpowied[źz] automatyczna|automatick[áa] odpov[ěe][ďd]"
    r"|automatikus v[áa]lasz|resposta autom[áa]tica|automatiskt svar"
    r"|automatisk svar|αυτόματη απάντηση|otomatik yan[ıi]t"
    r"|r[ăa]spuns automat|automatski odgovor|samodejni odgovor|automatinis atsakymas"
    r"|autom[āa]tisk[āa] atbilde|automaatvastus|автоматичен отговор|автоматична відповідь"
    r"|poza biurem|mimo kancel[áa][řr]|abwesenheit"
    r"|不在(?:通知|のお知らせ|のご連絡|連絡|中|です)|자동 회신|자동 응답"
    r")",
    re.IGNORECASE,
)


def _autoreply_subject(inbound: Inbound) -> bool:
    return bool(AUTOREPLY_SUBJECT.match(inbound.subject))


STRONG, WEAK = True, False
ROBOTS: tuple[Robot, ...] = (
    Robot(
        "ticket-system",
        "another ticket system's notification",
        _ticket_system,
        STRONG,
        "RT X-RT-Loop-Prevention/RT-Ticket; OTRS/Znuny X-OTRS-Loop; Zendesk "
        "X-Zendesk-From-Account-Id; ServiceNow X-ServiceNow-Generated (Zammad filters)",
    ),
    Robot(
        "issue-tracker",
        "an issue tracker's or code review's notification",
        _issue_tracker,
        STRONG,
        "JIRA X-JIRA-FingerPrint (Zammad jira_check.rb), GitHub X-GitHub-Reason, GitLab "
        "X-GitLab-Project, Bugzilla X-Bugzilla-*, Redmine, Trac, Launchpad, Phabricator, Gerrit",
    ),
    Robot(
        "x-loop-yes",
        "X-Loop: yes or true",
        _loop_yes,
        STRONG,
        "Zammad auto_response_check.rb; other ticket systems mark their mail so",
    ),
    Robot(
        "ci-or-cron",
        "a CI server's, cron's or monitoring system's report",
        _ci_or_cron,
        STRONG,
        "Jenkins email-ext X-Jenkins-Job; Vixie cron/cronie X-Cron-Env and 'Cron <user@host>'; "
        "Nagios/Icinga, Check_MK and Monit subjects (Zammad's monitoring filters)",
    ),
    Robot(
        "list-server",
        "a list server's own mail (loop alert, moderation, digest)",
        _list_server,
        STRONG,
        "fml X-MLServer/X-ML-Name (sisimai lhost-fml), Mailman X-BeenThere, Google Groups "
        "X-Google-Group-Id, CommuniGate X-ListServer, ezmlm Mailing-List; list robot sender",
    ),
    Robot(
        "provider-complaint",
        "a mailbox provider's complaint report in the older, non-ARF form",
        _provider_complaint,
        STRONG,
        "Hotmail JMRP (staff@hotmail.com), AOL SCOMP (scomp@aol.net): the message enclosed",
    ),
    Robot(
        "bounce-handler-return-path",
        "a bulk mailer's bounce-handling return path",
        _bounce_handler,
        STRONG,
        "VERP (cr.yp.to/proto/verp.txt), Mailman -bounces, ESP bounces+ addresses, Errors-To",
    ),
    Robot(
        "bulk-mailer",
        "sent by bulk mail software or service",
        _bulk_mailer,
        STRONG,
        "X-CSA-Complaints (Certified Senders Alliance), Mailchimp X-MC-User, SendGrid X-SG-EID, "
        "Mailgun X-Mailgun-Tag, X-Campaign-Id, newsletter software's X-Mailer values",
    ),
    Robot(
        "noreply-or-mailer-sender",
        "sent from a no-reply, mailer or notification address",
        _noreply_or_mailer,
        WEAK,
        "gmail-noreply@, mailer@, notification+id@ (Facebook), alerts@: addresses no one reads",
    ),
    Robot(
        "system-account-sender",
        "sent by a system account (cron, web server, database)",
        _system_account,
        WEAK,
        "cron mails as the job's owner (root); web apps as www-data/apache/nobody",
    ),
    Robot(
        "newsletter-sender",
        "sent from a newsletter address",
        _newsletter_sender,
        WEAK,
        "enews@, newsletter@, announcements@, offers@ senders of bulk mail",
    ),
    Robot(
        "newsletter-body",
        "a newsletter template: view-in-browser at the top, an opt-out at the end",
        _newsletter_body,
        WEAK,
        "CAN-SPAM/GDPR opt-out footers; newsletter templates' archive link",
    ),
    Robot(
        "lead-or-fax-gateway",
        "a lead-distribution or fax-to-mail gateway",
        _lead_or_fax_gateway,
        WEAK,
        "ADF (Auto-lead Data Format) XML bodies and lead-routing subjects; eFax, HylaFAX, "
        "RightFax, FRITZ!Box fax-to-mail subjects and X-Mailer values",
    ),
    Robot(
        "autoreply-subject-localised",
        "a localised auto-reply subject (Outlook's in 20 languages, vacation words)",
        _autoreply_subject,
        WEAK,
        "Outlook's localised 'Automatic reply:' prefixes; vacation words in European "
        "languages and Japanese (不在)",
    ),
)
