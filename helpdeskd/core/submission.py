"""What a person does on the status page, written as the mail it stands for (pure).

A reply, a reopening, an escalation request, a rating and a new case from the form all become
one RFC 5322 message from the signed-in address to the support address. It enters the same
spool and pipeline as mail, so routing, SLA clocks, notifications and the history are the ones
mail gets; only the spool records that it came through the web.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from helpdeskd.core.behalf import FORWARD_LINE
from helpdeskd.model import Case
from helpdeskd.names import PRIORITIES


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Submission:
    sender: str
    subject: str
    text: str
    uploads: tuple[Upload, ...] = ()


def on_case(case: Case, sender: str, text: str, uploads: tuple[Upload, ...] = ()) -> Submission:
    """A message on an existing case: the tag in the subject routes it like a reply."""
    return Submission(sender, f"Re: [{case.reference}] {case.subject}", text, uploads)


def escalation_request(case: Case, sender: str, reason: str) -> Submission:
    return on_case(case, sender, f"#escalate {one_line(reason)}".rstrip())


def rating(case: Case, sender: str, score: int, comment: str) -> Submission:
    if not 1 <= score <= 5:
        raise ValueError("a rating is a whole number from 1 to 5")
    return on_case(case, sender, f"{score}\n{comment.strip()}".rstrip())


def new_case(
    sender: str,
    subject: str,
    description: str,
    priority: str,
    environment: str,
    uploads: tuple[Upload, ...] = (),
) -> Submission:
    """`priority`: the one chosen on the form; the line naming it makes it the case's."""
    lines = [description.strip(), ""]
    if priority in PRIORITIES:
        lines.append(f"Priority: {priority}")
    if environment.strip():
        lines.append(f"Environment: {one_line(environment)}")
    return Submission(sender, one_line(subject), "\n".join(lines).strip(), uploads)


def for_customer(sub: Submission, customer: str) -> Submission:
    """An engineer's new case on a customer's behalf: the forward with `#for ADDRESS` that an
    engineer would mail, so it opens the case as mail does (see core/behalf.py)."""
    text = f"#for {customer}\n(opened on the status page)\n\n{FORWARD_LINE}\n\n{sub.text}"
    return replace(sub, text=text)


def one_line(text: str) -> str:
    return " ".join(text.split())


def as_mail(sub: Submission, support: str, message_id: str, now: datetime) -> bytes:
    """The submission as the bytes a mail client would have sent."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sub.sender
    msg["To"] = support
    msg["Subject"] = sub.subject or "(no subject)"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(sub.text + "\n")
    for up in sub.uploads:
        maintype, _, subtype = up.content_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(up.data, maintype=maintype, subtype=subtype, filename=up.filename)
    return msg.as_bytes()
