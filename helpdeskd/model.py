"""Frozen values shared by the core and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Inbound:
    """One parsed message: everything the core needs, nothing of the wire format."""

    message_id: str | None  # without angle brackets
    from_addr: str  # lower-cased address, "" when there is none
    from_name: str
    to: tuple[str, ...]  # addresses, lower-cased
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    date: str | None  # the Date header as sent
    in_reply_to: tuple[str, ...]  # message ids without angle brackets
    references: tuple[str, ...]
    text: str  # the readable body: text/plain preferred, HTML turned into text
    html: str | None  # the HTML part as sent, when there was one
    content_type: str  # of the whole message, e.g. "multipart/report"
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]  # every top-level header, decoded, in order
    envelope_from: str | None = None  # SMTP MAIL FROM / Return-Path when known
    defects: tuple[str, ...] = ()  # what the parser had to repair

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively; None when absent."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]
