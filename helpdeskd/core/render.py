"""jinja2 templates -> the outgoing mail's bytes, with every header built safely (pure).

A template's first line is `Subject: ...`, then a blank line, then the plain-text body. Values
that came from a customer can never add a header: CR and LF are removed from every header value.
The bytes are written once, by `core/mime.py`, and stored as they are sent.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from helpdeskd.config import Config
from helpdeskd.core import mime, sla
from helpdeskd.core.commands import describe_commands
from helpdeskd.model import Case, Mail

LINE_BREAKS = re.compile(r"[\r\n]+")


@dataclass(frozen=True)
class Threading:
    message_id: str  # without angle brackets
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rendered:
    """An outgoing mail: its wire bytes (CRLF) and what the case history shows of it."""

    raw: bytes
    sender: str  # the From header as it reads: display name and address
    subject: str
    body: str  # the plain text, lines ended by LF


# A configuration's templates are read and compiled once, and never looked at again (no stat
# of the file a mail): a reload (SIGHUP) loads a new configuration, which reads them afresh.
# Keyed by identity; the configuration is kept beside its environment, so no id is reused.
_LOADED: dict[int, tuple[Config, jinja2.Environment]] = {}
_LOADED_KEPT = 4  # the running configuration and the few before it
_LOADING = threading.Lock()


def templates_of(config: Config) -> jinja2.Environment:
    """The jinja2 environment of the configuration's templates folder."""
    with _LOADING:
        found = _LOADED.get(id(config))
        if found is None:
            found = _LOADED[id(config)] = (config, environment(config.helpdesk.templates))
            while len(_LOADED) > _LOADED_KEPT:
                del _LOADED[next(iter(_LOADED))]
        return found[1]


def environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        auto_reload=False,
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
) -> Rendered:
    context = template_context(mail, case, config, now, extra or {})
    text = templates_of(config).get_template(f"{mail.template}.txt")
    subject, body = split_template(text.render(context))
    subject = subject_for(case, subject)
    sender_name = mail.context.get("engineer")
    display = f"{sender_name} via {config.helpdesk.name}" if sender_name else config.helpdesk.name
    sender, sender_words = mime.address(
        clean(display), config.helpdesk.address, mime.ENCODED_LINE - len("From: ")
    )
    headers = [
        mime.header("From", sender_words),
        mime.header("To", address_list(mail.to)),
        *([mime.header("Cc", address_list(mail.cc))] if mail.cc else []),
        mime.unstructured("Subject", subject),
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{clean(threading.message_id)}>",
        *threading_headers(threading),
        *loop_headers(mail, config),
    ]
    lines = mime.text_lines(body)
    text = mime.text_part(lines)
    if has_html(config.helpdesk.templates, mail.template):
        html = templates_of(config).get_template(f"{mail.template}.html")
        html_part = mime.text_part(mime.text_lines(html.render(context)), "html")
        text = mime.multipart("alternative", [text, html_part], threading.message_id)
    parts = [text, *(attachment_part(a) for a in mail.attachments)]
    raw = mime.message(headers, parts, threading.message_id)
    return Rendered(raw, sender, subject, "".join(f"{line}\n" for line in lines))


def address_list(addresses: tuple[str, ...]) -> list[str]:
    """The words of a To or Cc header: addresses separated by commas."""
    return [f"{clean(a)}," for a in addresses[:-1]] + [clean(a) for a in addresses[-1:]]


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


def threading_headers(threading: Threading) -> list[str]:
    found = []
    if threading.in_reply_to:
        found.append(f"In-Reply-To: <{clean(threading.in_reply_to)}>")
    if threading.references:
        found.append(mime.header("References", [f"<{clean(r)}>" for r in threading.references]))
    return found


def loop_headers(mail: Mail, config: Config) -> list[str]:
    """What makes other systems' auto-responders, and ours, leave this mail alone."""
    found = []
    if mail.automatic:
        precedence = "auto_reply" if mail.automatic == "auto-replied" else "bulk"
        found += [
            f"Auto-Submitted: {clean(mail.automatic)}",
            "X-Auto-Response-Suppress: All",
            f"Precedence: {precedence}",
        ]
    found.append(f"X-Loop: {config.helpdesk.address}")
    if mail.reply_to:
        found.append(f"Reply-To: {clean(mail.reply_to)}")
    return found


def attachment_part(attachment) -> tuple[list[str], bytes]:
    maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition("/")
    if maintype in ("message", "multipart") or not subtype:
        maintype, subtype = "application", "octet-stream"
    content_type = clean(f"{maintype}/{subtype}").replace(" ", "").replace(";", "")
    filename = clean(attachment.filename or "attachment")
    return mime.attachment_part(content_type, filename, attachment.data)
