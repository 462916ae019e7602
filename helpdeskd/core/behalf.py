"""A case opened on a customer's behalf: an engineer's forward with `#for` on its first line,
read as the customer's own mail (pure).

The forwarded message is the attached one (message/rfc822) or, inline, what follows a forward
marker ("---------- Forwarded message ---------", "Begin forwarded message:", "-----Original
Message-----") with its From/Subject/To/Cc lines. `#for ADDRESS` names the customer when the
forward hides the address. The engineer's words above the forward become an internal note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from helpdeskd.core.address import mailboxes, usable
from helpdeskd.core.commands import INVISIBLE_LEAD
from helpdeskd.core.parse import ParseError, parse
from helpdeskd.model import Inbound

FORWARD_LINE = "---------- Forwarded message ---------"  # as Gmail writes it; one we read
FOR_LINE = re.compile(r"\s*#for(?:\s+(?P<address>\S*))?\s*$", re.I)
MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|original message)\s*-{2,}"
    r"|begin forwarded message:)\s*$",
    re.I | re.M,
)
FIELD = re.compile(r"(?P<name>from|to|cc|subject|date|sent)\s*:\s*(?P<value>.*)", re.I)
FORWARD_PREFIX = re.compile(r"^\s*(?:(?:fwd?|wg|tr)\s*:\s*)+", re.I)


@dataclass(frozen=True)
class OnBehalf:
    original: Inbound  # the customer's mail, as if they had written to support themselves
    note: str  # the engineer's words above the forward
    engineer: str


def asks(inbound: Inbound) -> bool:
    """The first line that is not blank is `#for` or `#for ADDRESS`."""
    first = next((line for line in _lines(inbound.text) if line.strip()), "")
    return FOR_LINE.fullmatch(first) is not None


def unwrap(inbound: Inbound) -> OnBehalf | str:
    """The forwarded mail as the customer's, or why it cannot be read (for the engineer)."""
    lines = _lines(inbound.text)
    at = next(i for i, line in enumerate(lines) if line.strip())
    named = (FOR_LINE.fullmatch(lines[at])["address"] or "").strip("<>").lower()
    if named and not usable(named):
        return f'"{named}" is not an email address; accepted: #for or #for ADDRESS'
    rest = "\n".join(lines[at + 1 :])
    found = _attached(inbound) or _inline(inbound, rest)
    if isinstance(found, str):
        return found
    original, note = found
    if named:
        original = replace(original, from_addr=named, from_name="")
    if not usable(original.from_addr):
        return (
            "the forward does not show the customer's address: write #for ADDRESS on the first line"
        )
    return OnBehalf(original, note.strip(), inbound.from_addr)


def _lines(text: str) -> list[str]:
    return INVISIBLE_LEAD.sub("", text).splitlines()


def _attached(inbound: Inbound) -> tuple[Inbound, str] | str | None:
    """The first attached message, read as mail of its own; the whole text is the note."""
    attached = next((a for a in inbound.attachments if a.content_type == "message/rfc822"), None)
    if attached is None:
        return None
    try:
        original = parse(attached.data)
    except ParseError as exc:
        return f"the attached message cannot be read: {exc}"
    note = "\n".join(_lines(inbound.text)[1:])
    original = replace(
        original,
        message_id=inbound.message_id,
        in_reply_to=(),
        references=(),
        headers=(),
        envelope_from=None,
    )
    return original, note


def _inline(inbound: Inbound, text: str) -> tuple[Inbound, str] | str:
    marker = MARKER.search(text)
    if marker is None:
        return (
            "#for needs a forwarded message: forward the customer's mail inline or as an "
            "attachment, with #for on the first line"
        )
    fields, body = _header_block(text[marker.end() :])
    sender = next(iter(mailboxes(fields.get("from", ""))), None)
    original = replace(
        inbound,
        from_addr=sender.address if sender else "",
        from_name=sender.phrase.strip('"') if sender else "",
        to=tuple(m.address for m in mailboxes(fields.get("to", "")) if m.address),
        cc=tuple(m.address for m in mailboxes(fields.get("cc", "")) if m.address),
        subject=fields.get("subject") or FORWARD_PREFIX.sub("", inbound.subject),
        text=body,
        html=None,
        in_reply_to=(),
        references=(),
        headers=(),
        envelope_from=None,
    )
    return original, text[: marker.start()]


def _header_block(text: str) -> tuple[dict[str, str], str]:
    """The forward's From/To/Cc/Subject lines, up to the first blank line after them, and the
    text below."""
    lines = text.lstrip("\n").splitlines()
    fields: dict[str, str] = {}
    count = 0
    for line in lines:
        match = FIELD.fullmatch(line.strip())
        if not match:
            break
        fields.setdefault(match["name"].lower(), match["value"].strip())
        count += 1
    return fields, "\n".join(lines[count:]).strip() + "\n"
