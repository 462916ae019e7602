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
from html import unescape

from helpdeskd.core.address import first_mailbox
from helpdeskd.model import Inbound


@dataclass(frozen=True)
class Robot:
    name: str
    description: str
    check: Callable[[Inbound], bool]
    strong: bool
    source: str


def _has_any(inbound: Inbound, names: tuple[str, ...]) -> bool:
    return any(inbound.header(name) is not None for name in names)


def _local_part(address: str) -> str:
    return address.rpartition("@")[0].lower()


def _sender_addresses(inbound: Inbound) -> tuple[str, ...]:
    """From's own address (not a fallback's) and the envelope sender."""
    written = first_mailbox(inbound.header("From") or "")
    sender = written.address if written and written.address else inbound.from_addr
    return (sender, inbound.envelope_from) if inbound.envelope_from else (sender,)


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
        if box := first_mailbox(path):
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


class Phrases:
    """A case-insensitive pattern written in lower case, searched fast in ASCII text.

    Python's engine matches a case-insensitive pattern slowly: at every position it tries
    every alternative, case-folding as it goes. In ASCII text (most mail) no character is
    case-equivalent to any but its own upper and lower case, so the pattern matched
    case-sensitively against the lower-cased text finds the same thing, several times faster.
    That holds only for a pattern without upper-case letters (nor \\W, \\S...) and without
    the two lower-case letters that fold onto ASCII ones (dotless i, long s): refused here.
    """

    def __init__(self, pattern: str) -> None:
        if pattern != pattern.lower() or {"\u0131", "\u017f"} & set(pattern):
            raise ValueError("Phrases takes a pattern in lower case")
        self.anycase = re.compile(pattern, re.IGNORECASE)
        self.lowered = re.compile(pattern)

    def search(self, text: str) -> bool:
        if text.isascii():
            return self.lowered.search(text.lower()) is not None
        return self.anycase.search(text) is not None


VIEW_IN_BROWSER = Phrases(
    r"(?:view|read|open|see|display)\w*\s+(?:this\s+|the\s+|it\s+)?(?:e-?mail|message|newsletter"
    r"|version|online|in\s+(?:a|your)\s+(?:web\s+)?browser)"
    r"|im browser (?:an(?:sehen|zeigen)|öffnen)|webversion|online-version"
    r"|nicht (?:richtig|korrekt) (?:dargestellt|angezeigt)"  # de
    r"|version en ligne|dans (?:votre|ton) navigateur"  # fr
    r"|en (?:tu|su) navegador|versión (?:web|online)"  # es
    r"|nel (?:tuo )?browser|versione (?:web|online)"  # it
    r"|in (?:je|uw) browser|webversie"  # nl
    r"|no (?:seu )?navegador|versão (?:web|online)"  # pt
    r"|i (?:din )?webbläsare|webbversion"  # sv
    r"|w przeglądarce|wersja (?:online|www)"  # pl
    r"|ブラウザ(?:で|版)|ウェブ版|web版"  # ja
)
OPT_OUT = Phrases(
    r"unsubscri|opt[- ]?out|stop receiving|no longer (?:wish|want) to receive"
    r"|abmelden|abbestellen"  # de
    r"|d[ée]sinscri|d[ée]sabonn"  # fr
    r"|darse de baja|darte de baja|date de baja|cancelar (?:la |tu |su )?suscripci"  # es
    r"|disiscri|cancellarti|cancellare l'iscrizione"  # it
    r"|afmelden|uitschrijven"  # nl
    r"|descadastr|cancelar (?:a |sua |seu )?(?:inscri|assinatura)"  # pt
    r"|avregistrera|avprenumerera|avsluta (?:din )?prenumeration"  # sv
    r"|wypisa[ćc]|wypisz|zrezygnowa[ćc] z (?:subskrypcji|newslettera)"  # pl
    r"|配信停止|配信解除|購読解除|登録解除"  # ja
)


def _newsletter_body(inbound: Inbound) -> bool:
    """A newsletter template: "view it in your browser" at the very top, an opt-out at the
    end. Replies and forwards never count: that is a person passing a newsletter on."""
    if _passed_on(inbound):
        return False
    text = inbound.text.strip()
    return bool(VIEW_IN_BROWSER.search(text[:400]) and OPT_OUT.search(text[-2000:]))


def _passed_on(inbound: Inbound) -> bool:
    return bool(inbound.in_reply_to or REPLY_OR_FORWARD.match(inbound.subject))


# -- bulk mail without any machine header -----------------------------------------------------

# Who asks to be taken off a list writes in the first person ("please unsubscribe me", "ich
# möchte mich abmelden", "配信停止してください"); a footer addresses the reader.
FIRST_PERSON = re.compile(
    r"(?-i:\bI\b)|\b(?:i'm|i've|me|my"  # en
    r"|ich|mich|mein\w*"  # de
    r"|je|j'|moi|mon"  # fr
    r"|yo|quiero|quisiera|mi|mis"  # es, it
    r"|io|vorrei|voglio"  # it
    r"|ik|mij|mijn"  # nl
    r"|eu|meu|minha|quero|gostaria"  # pt
    r"|jag|mig|mitt"  # sv
    r"|mnie|chcę|chciał\w*|proszę)\b"  # pl
    r"|私|わたし|僕|してください|して下さい|お願いします|お願い致します",  # ja
    re.IGNORECASE,
)
URL = re.compile(r"https?://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", re.IGNORECASE)
IMG_TAG = re.compile(r"<img\b[^>]{0,2000}>", re.IGNORECASE)
ANCHOR = re.compile(r"<a\b[^>]{0,2000}>(.{0,300}?)</a\s*>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(r"<[^>]*>")
QUOTED = re.compile(r"\s*[>|]")  # another mail's lines, quoted with '>' or '| '
ONE_PIXEL = {
    side: re.compile(rf"""\b{side}\s*(?:=\s*["']?\s*|:\s*)[01](?:px)?(?![\d.])""", re.I)
    for side in ("width", "height")
}
FOOTER = 2000  # characters: where an opt-out footer sits
HTML_READ = 500_000  # characters of HTML searched for a tracking image or an opt-out link
MIN_LINKS = 2  # a mailing links to more than its opt-out; a person's complaint seldom does


def _unsubscribe_footer(inbound: Inbound) -> bool:
    """Bulk mail from a person-looking address, without List-* or Precedence: an opt-out
    footer (in ten languages) and a second mark of a mailing: the opt-out is a link (an HTML
    link that says so, or a URL beside it among other links), a 1x1 tracking image, or a
    view-in-browser line at the top. A person asking to be unsubscribed writes in the first
    person and quotes a footer ('>', '|'); replies and forwards never count."""
    if _passed_on(inbound):
        return False
    html = (inbound.html or "")[:HTML_READ]
    anchors = _opt_out_anchors(html)
    own = "\n".join(x for x in inbound.text.splitlines() if not QUOTED.match(x))
    footer = own[-FOOTER:].splitlines()
    opt_outs = [i for i, x in enumerate(footer) if _opt_out_line(x, anchors)]
    if not opt_outs:
        return False
    if anchors or _tracking_pixel(html) or VIEW_IN_BROWSER.search(own[:400]):
        return True
    linked = any(URL.search(" ".join(footer[i : i + 2])) for i in opt_outs)
    return linked and len(set(URL.findall(own))) >= MIN_LINKS


def _opt_out_line(line: str, anchors: set[str]) -> bool:
    """An opt-out addressed to the reader, or a link alone on its line ("Je me désinscris"
    is a template's button, the same words in a sentence a person's)."""
    if not OPT_OUT.search(line):
        return False
    return not FIRST_PERSON.search(line) or line.strip() in anchors


def _opt_out_anchors(html: str) -> set[str]:
    """The words of links that are an opt-out, not a pasted address: a template's links,
    where a person pastes the address itself."""
    found = set()
    for words in ANCHOR.findall(html):
        text = " ".join(unescape(TAG.sub("", words)).split())
        if OPT_OUT.search(text) and not URL.search(text):
            found.add(text)
    return found


def _tracking_pixel(html: str) -> bool:
    return any(
        all(pattern.search(tag) for pattern in ONE_PIXEL.values()) for tag in IMG_TAG.findall(html)
    )


# -- lead and fax gateways -------------------------------------------------------------------

ADF_BODY = re.compile(r"<\?adf\s+version\s*=", re.IGNORECASE)  # Auto-lead Data Format XML
LEAD_SUBJECT = re.compile(
    r"^\s*\[online lead\]|\bhas (?:a )?(?:new )?leads? for you\b|^\s*new (?:web |online )?lead\b",
    re.IGNORECASE,
)
FAX_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]{1,30}\]\s*|\[)?(?:efax message from|new fax (?:received|message)"
    r"|fax (?:received|message) from|facsimile (?:received|from)|you have (?:received )?a new fax"
    r"|incoming fax|neues fax|nouveau fax|nuevo fax|nuovo fax|nieuwe fax|novo fax|nytt fax"
    r"|nowy faks|ringcentral fax|fax2mail|faxeingang|ファクス受信|fax受信"
    # "Fax from +49 30 ...", "Fax von 030 ...": a gateway names the calling number
    r"|fax (?:from|von|de|da|van|från|od) [+(]?\d)",
    re.IGNORECASE,
)
FAX_MAILER = re.compile(r"hylafax|rightfax|efax|faxmaker|fritz!?box|capi ?fax|mfax", re.I)
FAX_SENDER = re.compile(
    r"^(?:e?fax|faxmail|fax2mail|fax-?server|fax-?gateway|fax-?service|faxes|fax\d+)$|^fax[-_.+]"
)
FAX_DOMAIN = re.compile(r"(?:^|\.)(?:efax|fax2mail|faxmail|myfax|metrofax|hellofax|srfax)\.")
FAX_NAME = re.compile(
    r"\b(?:e-?fax|fax2mail|faxmail|fax ?server|fax ?gateway|ringcentral fax)\b", re.I
)
FAX_STATION_ID = re.compile(r"\b(?:remote )?[CT]SID\b")  # in capitals only
FAX_BODY = Phrases(r"remote station id|absenderkennung")


def _lead_gateway(inbound: Inbound) -> bool:
    return bool(ADF_BODY.search(inbound.text[:2000]) or LEAD_SUBJECT.search(inbound.subject))


def _fax_gateway(inbound: Inbound) -> bool:
    """A fax-to-mail gateway: its subject ("Fax from +49...", "New fax message"), its
    software, its sender (fax@, faxmail@, eFax, Fax2Mail) or the station ids it reports."""
    mailer = " ".join(inbound.header_all("X-Mailer"))
    if FAX_SUBJECT.search(inbound.subject) or FAX_MAILER.search(mailer):
        return True
    sender = _sender_addresses(inbound)[0]
    local, _, domain = sender.lower().rpartition("@")
    if FAX_SENDER.search(local) or FAX_DOMAIN.search(domain) or FAX_NAME.search(inbound.from_name):
        return True
    head = inbound.text[:1500]
    return not _passed_on(inbound) and bool(FAX_STATION_ID.search(head) or FAX_BODY.search(head))


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
        "unsubscribe-footer",
        "bulk mail: an opt-out footer with its link, a tracking image or a view-in-browser line",
        _unsubscribe_footer,
        WEAK,
        "CAN-SPAM/GDPR opt-out footers in en, de, fr, es, it, nl, pt, sv, pl, ja; 1x1 open-"
        "tracking images of ESPs (Mailchimp, SendGrid...); newsletter templates' archive link",
    ),
    Robot(
        "lead-gateway",
        "a lead-distribution gateway",
        _lead_gateway,
        WEAK,
        "ADF (Auto-lead Data Format) XML bodies and lead-routing subjects",
    ),
    Robot(
        "fax-gateway",
        "a fax-to-mail gateway",
        _fax_gateway,
        WEAK,
        "eFax, Fax2Mail, RingCentral, HylaFAX, RightFax, FRITZ!Box fax-to-mail: subjects, "
        "X-Mailer values, fax@/faxmail@ senders, CSID/TSID station ids",
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
