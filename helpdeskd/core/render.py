"""jinja2 templates -> EmailMessage, with every header built safely (pure).

A template's first line is `Subject: ...`, then a blank line, then the plain-text body. Values
that came from a customer can never add a header: CR and LF are removed from every header value.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from helpdeskd.config import Config
from helpdeskd.core import sla
from helpdeskd.core.commands import describe_commands
from helpdeskd.model import Case, Mail

LINE_BREAKS = re.compile(r"[\r\n]+")


@dataclass(frozen=True)
class Threading:
    message_id: str  # without angle brackets
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@functools.lru_cache(maxsize=8)
def environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(["html", "htm"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    return env


@functools.lru_cache(maxsize=64)
def has_html(directory: Path, template: str) -> bool:
    """A kind of mail with an HTML alternative (autoescaped) beside its plain text."""
    return (directory / f"{template}.html").is_file()


def local_time(moment: datetime | None, timezone: str = "UTC") -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def message_id_for(reference: str | None, domain: str, token: str) -> str:
    """Our Message-IDs carry the reference, so a reply whose client dropped the subject tag
    still finds its case."""
    return f"{reference or 'HD'}.{token}@{domain}"


def subject_for(case: Case | None, subject: str) -> str:
    subject = clean(subject)
    if case is None or case.reference in subject:
        return subject
    return f"[{case.reference}] {subject}"


def clean(value: str) -> str:
    return LINE_BREAKS.sub(" ", value or "").strip()


def render(
    mail: Mail,
    case: Case | None,
    config: Config,
    threading: Threading,
    now: datetime,
    extra: dict | None = None,
) -> EmailMessage:
    context = template_context(mail, case, config, now, extra or {})
    text = environment(config.helpdesk.templates).get_template(f"{mail.template}.txt")
    subject, body = split_template(text.render(context))
    msg = EmailMessage()
    sender_name = mail.context.get("engineer")
    display = f"{sender_name} via {config.helpdesk.name}" if sender_name else config.helpdesk.name
    msg["From"] = Address(clean(display), addr_spec=config.helpdesk.address)
    msg["To"] = ", ".join(clean(a) for a in mail.to)
    msg["Subject"] = subject_for(case, subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{threading.message_id}>"
    add_threading(msg, threading)
    add_loop_headers(msg, mail, config)
    msg.set_content(body)
    if has_html(config.helpdesk.templates, mail.template):
        html = environment(config.helpdesk.templates).get_template(f"{mail.template}.html")
        msg.add_alternative(html.render(context), subtype="html")
    for attachment in mail.attachments:
        add_attachment(msg, attachment)
    return msg


def template_context(
    mail: Mail, case: Case | None, config: Config, now: datetime, extra: dict
) -> dict:
    timezone = sla.calendar_of(case, config).timezone if case else config.helpdesk.timezone
    return {
        "helpdesk": config.helpdesk,
        "case": case,
        "now": now,
        "config": config,
        "timezone": timezone,
        "commands": describe_commands(),
        "reopen_window": config.policy.reopen_window.describe(),
        "omitted": (),
        "case_url": case_url(case, config),
        **extra,
        **mail.context,
    }


def case_url(case: Case | None, config: Config) -> str | None:
    """The case's page on the status page, when there is one."""
    if case is None or not config.web.enabled:
        return None
    return f"{config.web.base_url}/cases/{case.reference}"


def split_template(text: str) -> tuple[str, str]:
    first, _, body = text.partition("\n")
    if not first.lower().startswith("subject:"):
        raise ValueError("a mail template starts with a 'Subject:' line")
    return first.split(":", 1)[1].strip(), body.lstrip("\n")


def add_threading(msg: EmailMessage, threading: Threading) -> None:
    if threading.in_reply_to:
        msg["In-Reply-To"] = f"<{clean(threading.in_reply_to)}>"
    if threading.references:
        msg["References"] = " ".join(f"<{clean(r)}>" for r in threading.references)


def add_loop_headers(msg: EmailMessage, mail: Mail, config: Config) -> None:
    """What makes other systems' auto-responders, and ours, leave this mail alone."""
    if mail.automatic:
        msg["Auto-Submitted"] = mail.automatic
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "auto_reply" if mail.automatic == "auto-replied" else "bulk"
    msg["X-Loop"] = config.helpdesk.address
    if mail.reply_to:
        msg["Reply-To"] = clean(mail.reply_to)


def add_attachment(msg: EmailMessage, attachment) -> None:
    maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
    if maintype in ("message", "multipart") or not subtype:
        maintype, subtype = "application", "octet-stream"
    msg.add_attachment(
        attachment.data,
        maintype=maintype,
        subtype=subtype,
        filename=clean(attachment.filename or "attachment"),
    )
