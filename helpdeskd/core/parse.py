"""Raw message bytes -> Inbound.

Pure: no I/O, no clock, no environment. Whatever the bytes, the result is an Inbound or a
ParseError whose message is the quarantine reason; the repairs made on the way are listed in
`Inbound.defects`.

The stdlib parser runs with the compat32 policy: on the corpus it never raises and is about ten
times faster than `email.policy.default`, whose header objects choke on unknown charsets and
take seconds on hostile nesting. Header decoding (RFC 2047, charsets) is done here instead, so
that every charset problem ends in a repair, not an exception.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from html.parser import HTMLParser
from io import BytesIO

from helpdeskd.core.address import mailboxes, usable
from helpdeskd.core.charsets import WESTERN, codec_for, decode_text, raw_jis
from helpdeskd.model import Attachment, Inbound


class ParseError(ValueError):
    """The message cannot be turned into an Inbound; str(error) is the quarantine reason."""


@dataclass(frozen=True)
class Limits:
    max_parts: int = 500
    max_depth: int = 20
    max_headers: int = 1000
    max_attachment_bytes: int = 50 * 1024 * 1024  # in total; beyond it only the metadata is kept


DEFAULT_LIMITS = Limits()

# Besides every message/* part, kept whole as an attachment: a bounce's original headers.
KEPT_WHOLE = frozenset({"text/rfc822-headers"})

# C0 and C1 controls never reach a subject, a name or a file name (nor a template).
CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")
FOLD = re.compile(r"\r\n?(?=[ \t])|\n(?=[ \t])")
ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([qQbB])\?(.*?)\?=", re.DOTALL)
BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;"]+))', re.IGNORECASE)
UNFOLDED_BOUNDARY = re.compile(
    rb"^(Content-Type:[ \t]*multipart/[^\r\n]*;[ \t]*(?:\r\n|\r|\n))(boundary[ \t]*=)",
    re.IGNORECASE | re.MULTILINE,
)
DELIMITER_LINE = re.compile(rb"^--([^\r\n]*?)[ \t]*(?=\r|\n|\Z)", re.MULTILINE)
SPACED_COLON = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:")
HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
PREAMBLE_LINES = 5
LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
FIELD_START = re.compile(rb"(?<=\n)(?=[^ \t])|(?<=\r)(?=[^ \t\n])")
CHARSET_PARAM = re.compile(rb'charset\s*=\s*"?([A-Za-z0-9_.:-]+)', re.IGNORECASE)
BARE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def parse(
    raw: bytes, *, envelope_from: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Inbound:
    """Turn raw message bytes into an Inbound, or raise ParseError with the reason."""
    defects: list[str] = []
    msg = _parse_structure(raw, limits, defects)
    count = len(msg.keys())
    if count == 0:
        raise ParseError("no header fields: not a mail message")
    if count > limits.max_headers:
        raise ParseError(f"too many header fields: {count} (limit {limits.max_headers})")
    headers = _headers(msg, defects)
    body = _Body(limits, defects, tuple(_declared_charsets(raw)))
    body.visit(msg, 0)
    body.settle_spare_html()
    return _inbound(msg, headers, body, envelope_from, defects)


def _inbound(
    msg: Message,
    headers: tuple[tuple[str, str], ...],
    body: _Body,
    envelope_from: str | None,
    defects: list[str],
) -> Inbound:
    first = _first_values(headers).get
    envelope = _envelope(envelope_from, first("return-path"))
    from_name, from_addr = _sender(msg, envelope, defects)
    return Inbound(
        message_id=next(iter(_message_ids(first("message-id"))), None),
        from_addr=from_addr,
        from_name=from_name,
        to=_addresses(msg, "to", defects),
        cc=_addresses(msg, "cc", defects),
        reply_to=_addresses(msg, "reply-to", defects),
        subject=first("subject") or "",
        date=first("date"),
        in_reply_to=_message_ids(first("in-reply-to")),
        references=_message_ids(" ".join(v for k, v in headers if k.lower() == "references")),
        text=_readable(body.text()),
        html="\n".join(body.twin) if body.twin else None,
        content_type=msg.get_content_type(),
        attachments=tuple(body.attachments),
        headers=headers,
        envelope_from=envelope,
        defects=tuple(dict.fromkeys(defects)),
    )


def header_summary(raw: bytes) -> tuple[str, str]:
    """Sender and subject of a message that may not parse at all (for the quarantine list):
    decoded when the header block can be read, empty strings when not."""
    try:
        head = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
        sender = decode_header_value(head.get("From", ""))
        return sender, decode_header_value(head.get("Subject", ""))
    except Exception:  # whatever the bytes, the list shows what it can
        return "", ""


def _first_values(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Lower-cased name -> value of its first occurrence (a repeated Subject is ignored)."""
    values: dict[str, str] = {}
    for name, value in headers:
        values.setdefault(name.lower(), value)
    return values


# --- structure ---------------------------------------------------------------------------


def _parse_structure(raw: bytes, limits: Limits, defects: list[str]) -> Message:
    """The stdlib parse, kept to bounded depth: its cost grows with lines x nesting depth."""
    raw = _repair_header_block(_skip_preamble(raw, defects), defects)
    raw = _repair_boundary_folds(raw, defects)
    cut = _nesting_cut(raw, limits.max_depth)
    if cut is not None:
        defects.append(f"MIME nesting deeper than {limits.max_depth}: the rest was not parsed")
        raw = raw[:cut]
    try:
        return BytesParser(policy=policy.compat32).parsebytes(raw)
    except RecursionError:
        # Nested message/rfc822 parts need no boundary, so the scan above cannot see them.
        defects.append("MIME structure too deeply nested: the body was kept unparsed")
        return BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)


def _skip_preamble(raw: bytes, defects: list[str]) -> bytes:
    """Drop a few leading lines that are not header fields ("---- Original message ----")."""
    lines = raw[:4096].splitlines(keepends=True)[: PREAMBLE_LINES + 1]
    for skipped, line in enumerate(lines):
        if HEADER_LINE.match(line) or line.startswith(b"From "):
            if skipped:
                defects.append(f"{skipped} line(s) before the header fields dropped")
            return raw[sum(len(x) for x in lines[:skipped]) :]
        if not line.strip() and skipped == 0:
            return raw  # the parser itself copes with a blank first line
    return raw


def _repair_header_block(raw: bytes, defects: list[str]) -> bytes:
    """Mend the top-level header block before the parser ends it early or reads it wrongly."""
    lines: list[bytes] = []
    for match in LINE.finditer(raw):
        line = match.group()
        if not line.strip(b"\r\n") or not line:
            break
        lines.append(line)
    head = b"".join(lines)
    lines = _close_colon_spacing(lines, defects)
    mended = _transcode_8bit(_join_loose_lines(lines, defects), raw, defects)
    return raw if mended == head else mended + raw[len(head) :]


def _close_colon_spacing(lines: list[bytes], defects: list[str]) -> list[bytes]:
    """Obsolete syntax (RFC 5322 §4.5) allows white space before the colon: `Subject : Hi`.
    The stdlib parser would end the header block at such a line."""
    mended = [SPACED_COLON.sub(rb"\1:", x) for x in lines]
    if mended != lines:
        defects.append("white space before a header field's colon removed")
    return mended


def _join_loose_lines(lines: list[bytes], defects: list[str]) -> bytes:
    """A line that is no header field, followed by more fields, continues the one before.

    Some exporters and gateways unfold Received fields without their leading white space; the
    stdlib parser would end the header block there and take From and Subject for body text.
    """
    is_field = [bool(HEADER_LINE.match(x)) or x[:1] in b" \t" for x in lines]
    last_field = max((i for i, field in enumerate(is_field) if field), default=-1)
    loose = {i for i in range(1, last_field) if not is_field[i]}  # a set: asked once per line
    if loose:
        defects.append(f"{len(loose)} header line(s) without leading white space joined")
    return b"".join(b" " + x if i in loose else x for i, x in enumerate(lines))


def _transcode_8bit(head: bytes, raw: bytes, defects: list[str]) -> bytes:
    """Raw 8-bit header bytes become UTF-8, each field on its own (a UTF-8 Subject beside a
    latin-1 From name): read as UTF-8 where they are, else in the charset that reads them
    best, a charset the message declares first."""
    if head.isascii():
        return head
    hints = tuple(_declared_charsets(raw))
    return b"".join(
        field
        if field.isascii()
        else decode_text(field, "utf-8", defects, what="8-bit header field", hints=hints).encode()
        for field in FIELD_START.split(head)
    )


def _declared_charsets(raw: bytes) -> list[str]:
    """Charsets the message declares, multi-byte ones first: latin-1 would accept anything."""
    labels = [x.decode("ascii").lower() for x in CHARSET_PARAM.findall(raw)]
    unique = [x for x in dict.fromkeys(labels) if codec_for(x, []) not in (None, "ascii")]
    return sorted(unique, key=lambda x: codec_for(x, []) in WESTERN)


def _repair_boundary_folds(raw: bytes, defects: list[str]) -> bytes:
    """A boundary parameter folded without leading white space would lose the whole part."""
    mended, count = UNFOLDED_BOUNDARY.subn(rb"\1 \2", raw)
    if count:
        defects.append(f"{count} boundary parameter(s) folded without white space joined")
    return mended


def _nesting_cut(raw: bytes, max_depth: int) -> int | None:
    """Offset of the first boundary line that opens a level deeper than max_depth, if any."""
    declared = {a or b for a, b in BOUNDARY_PARAM.findall(raw)}
    if len(declared) <= max_depth:
        return None
    open_levels: list[bytes] = []
    for line in DELIMITER_LINE.finditer(raw):
        token = line.group(1)
        closing = token.endswith(b"--") and token[:-2] in declared
        boundary = token[:-2] if closing else token
        if boundary in open_levels:
            del open_levels[open_levels.index(boundary) + (0 if closing else 1) :]
        elif boundary in declared and not closing:
            open_levels.append(boundary)
            if len(open_levels) > max_depth:
                return line.start()
    return None


class _Body:
    """Walks the MIME tree once, within the limits, collecting body text and attachments."""

    def __init__(self, limits: Limits, defects: list[str], charsets: tuple[str, ...]) -> None:
        self.limits = limits
        self.defects = defects
        self.charsets = charsets  # what the message declares: for raw 8-bit file names
        self.plain: list[str] = []  # the body text: plain parts, or HTML chosen and converted
        self.twin: list[str] = []  # the body's HTML, as sent: an alternative or the text itself
        self.spare: list[tuple[Message, str]] = []  # HTML parts not (yet) used as the text
        self.attachments: list[Attachment] = []
        self.parts = 0
        self.kept_bytes = 0

    def text(self) -> str:
        if self.plain:
            return "\n".join(self.plain)
        return html_to_text("\n".join(html for _, html in self.spare))

    def settle_spare_html(self) -> None:
        """HTML outside any alternative: beside a plain text it is a file the customer sent
        (kept as an attachment); without one it is the body itself."""
        if self.plain:
            for part, _ in self.spare:
                self.attach(part, part.get_payload(decode=True) or b"")
            self.spare = []
        else:
            self.twin += [html for _, html in self.spare]

    def visit(self, part: Message, depth: int, *, resource: bool = False) -> None:
        self.parts += 1
        ctype = part.get_content_type()
        if self.parts > self.limits.max_parts:
            self.defects.append(f"more than {self.limits.max_parts} MIME parts: the rest skipped")
        elif depth > self.limits.max_depth:
            self.defects.append(f"MIME nesting deeper than {self.limits.max_depth}: skipped")
        elif ctype in KEPT_WHOLE or part.get_content_maintype() == "message":
            self.attach(part, _payload_bytes(part, self.defects))
        elif part.get_content_maintype() == "multipart" and not part.is_multipart():
            self.defects.append(f"{ctype} without a usable boundary: kept as text")
            self.plain.append(_normalise_lines(_text_of(part, self.defects)))
        elif ctype == "multipart/alternative":
            self.visit_alternative(part, depth)
        elif ctype == "multipart/related":
            self.visit_related(part, depth)
        elif part.is_multipart():
            for child in _children(part):
                self.visit(child, depth + 1)
        else:
            self.visit_leaf(part, resource=resource)

    def visit_alternative(self, part: Message, depth: int) -> None:
        """One version is the text: the plain one, unless it is a stub or clearly shorter
        than the HTML one (walked through nested alternatives and related parts). The HTML
        of the other versions is the text's twin: the same content, kept with the message
        (Inbound.html), never as an attachment; their images and named files stay files."""
        plain, spare = self.plain, self.spare
        versions: list[tuple[list[str], list[tuple[Message, str]]]] = []
        for child in _children(part):
            self.plain, self.spare = [], []
            self.visit(child, depth + 1)
            versions.append((self.plain, self.spare))
        text = next((p for p, _ in versions if p), [])
        html = next((h for _, h in reversed(versions) if h), [])  # the last is the richest
        html_text = html_to_text("\n".join(x for _, x in html)) if html else ""
        if html and weaker_than_html("\n".join(text), html_text):
            if text:
                self.defects.append("the plain text was a stub: the HTML version is the text")
            text = [html_text]
        beside = [h for p, hs in versions if p is text for h in hs]  # beside the text: files
        self.twin += [x for p, hs in versions if p is not text for _, x in hs]
        self.plain = plain + text
        self.spare = spare + beside

    def visit_related(self, part: Message, depth: int) -> None:
        """The first part is the body (RFC 2387); the others are resources it refers to."""
        children = _children(part)
        for index, child in enumerate(children):
            self.visit(child, depth + 1, resource=index > 0)

    def visit_leaf(self, part: Message, *, resource: bool = False) -> None:
        ctype = part.get_content_type()
        if resource or _is_attachment(part) or ctype not in ("text/plain", "text/html"):
            self.attach(part, part.get_payload(decode=True) or b"")
            return
        text = _normalise_lines(_text_of(part, self.defects))
        if ctype == "text/plain":
            self.plain.append(text)
        else:
            self.spare.append((part, text))

    def attach(self, part: Message, data: bytes) -> None:
        size = len(data)
        if self.kept_bytes + size > self.limits.max_attachment_bytes:
            self.defects.append("attachments over the size limit: kept without their data")
            data = b""
        self.kept_bytes += len(data)
        name = _filename(part, self.defects, self.charsets)
        self.attachments.append(Attachment(name, part.get_content_type(), size, data))


def _text_of(part: Message, defects: list[str]) -> str:
    data = part.get_payload(decode=True) or b""
    return decode_text(data, part.get_content_charset(), defects)


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return disposition == "attachment" or part.get_filename() is not None


def _filename(part: Message, defects: list[str], charsets: tuple[str, ...] = ()) -> str | None:
    _mend_8bit_params(part, defects, charsets)
    try:
        value = part.get_param("filename", None, "content-disposition")
        value = value if value is not None else part.get_param("name", None, "content-type")
    except (LookupError, ValueError):
        return None
    if isinstance(value, tuple):  # RFC 2231: the bytes, percent-decoded as latin-1
        charset, _, text = value
        name = decode_text(_rfc2231_bytes(text), charset, defects, what="file name")
    else:
        name = decode_header_value(value, defects) if value else ""
    return _clean(name) or None


def _rfc2231_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:  # already decoded from raw 8-bit by _mend_8bit_params
        return text.encode("utf-8", "surrogateescape")


def _mend_8bit_params(part: Message, defects: list[str], charsets: tuple[str, ...]) -> None:
    """Raw 8-bit file names (UTF-8 mostly) would otherwise come back as U+FFFD."""
    for name in ("content-disposition", "content-type"):
        value = next((str(v) for k, v in part.raw_items() if k.lower() == name), None)
        if value is None:
            continue
        hints = (part.get_content_charset() or "", *charsets)
        mended = _unescape_8bit(value, defects, hints)
        if mended != value:
            part.replace_header(name, mended)


def _payload_bytes(part: Message, defects: list[str]) -> bytes:
    """The part's content as on the wire (without the part's own header fields)."""
    if not part.is_multipart():
        return part.get_payload(decode=True) or b""
    buffer = BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0).flatten(part)
    except Exception as error:  # the generator has many ways to refuse what the parser took
        defects.append(f"could not re-serialise a {part.get_content_type()} part: {error!r}")
        return b""
    flat = buffer.getvalue()
    head_end = flat.find(b"\n\n")
    return flat[head_end + 2 :] if head_end >= 0 else b""


# --- header fields -----------------------------------------------------------------------


def _headers(msg: Message, defects: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (_clean(name), decode_header_value(value, defects)) for name, value in msg.raw_items()
    )


def decode_header_value(value: object, defects: list[str] | None = None) -> str:
    """Unfold and decode a raw header value (8-bit bytes, RFC 2047) to one clean line."""
    defects = [] if defects is None else defects
    text = raw_jis(_unfold(_unescape_8bit(str(value), defects)))
    return _clean(_decode_encoded_words(text, defects))


def _unfold(value: str) -> str:
    return FOLD.sub("", value)


def _clean(value: str) -> str:
    """No line breaks survive: decoded values end up in the headers of outgoing mail."""
    return CONTROLS.sub("", LINE_BREAKS.sub(" ", value).replace("\t", " ")).strip()


def _unescape_8bit(value: str, defects: list[str], hints: tuple[str, ...] = ()) -> str:
    """The parser keeps raw 8-bit header bytes as surrogates; decode them as text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", "surrogateescape")
    return decode_text(data, "utf-8", defects, what="8-bit header", hints=hints)


def _decode_encoded_words(text: str, defects: list[str]) -> str:
    pieces: list[tuple[str | None, bytes | str]] = []
    position = 0
    for word in ENCODED_WORD.finditer(text):
        between = text[position : word.start()]
        # White space between two encoded words is not part of the text (RFC 2047 §6.2).
        if between and not (between.isspace() and pieces and pieces[-1][0] is not None):
            pieces.append((None, between))
        charset, data = word.group(1), _word_bytes(word.group(2), word.group(3))
        if pieces and pieces[-1][0] == charset.lower():
            # Joined before decoding: clients split multi-byte characters between words.
            pieces[-1] = (charset.lower(), pieces[-1][1] + data)  # type: ignore[operator]
        else:
            pieces.append((charset.lower(), data))
        position = word.end()
    pieces.append((None, text[position:]))
    return "".join(
        p if isinstance(p, str) else decode_text(p, c, defects, what="header") for c, p in pieces
    )


def _word_bytes(encoding: str, encoded: str) -> bytes:
    data = encoded.encode("ascii", "replace")
    if encoding in "qQ":
        return _unquote(data.replace(b"_", b" "))
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return encoded.encode("ascii", "replace")


def _unquote(data: bytes) -> bytes:
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


# --- addresses and ids -------------------------------------------------------------------


def _sender(msg: Message, envelope: str | None, defects: list[str]) -> tuple[str, str]:
    """From's first usable address; failing that Reply-To, Sender, then the envelope sender,
    so a broken From never sends an answer to a name. The name is From's in every case."""
    from_pairs = _address_pairs(msg, "from", defects)
    name = next((n for n, a in from_pairs if usable(a)), None)
    name = name if name is not None else next((n for n, _ in from_pairs if n), "")
    for field in ("from", "reply-to", "sender"):
        pairs = from_pairs if field == "from" else _address_pairs(msg, field, defects)
        address = next((a for _, a in pairs if usable(a)), None)
        if address:
            if field != "from":
                defects.append(f"From has no usable address: the sender is {field}'s")
            return name, address
    if envelope and usable(envelope):
        defects.append("From has no usable address: the sender is the envelope sender")
        return name, envelope
    defects.append("no usable sender address in From, Reply-To, Sender or the envelope")
    return name, ""


def _addresses(msg: Message, name: str, defects: list[str]) -> tuple[str, ...]:
    """Recipients: only real addresses ("To: undisclosed-recipients:;" holds none)."""
    pairs = _address_pairs(msg, name, defects)
    return tuple(dict.fromkeys(address for _, address in pairs if usable(address)))


def _address_pairs(msg: Message, name: str, defects: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs of every field of that name: split first,
    decoded after, so a comma inside an encoded name never splits a mailbox."""
    raw = [
        _clean(_unfold(_unescape_8bit(str(v), defects)))
        for k, v in msg.raw_items()
        if k.lower() == name
    ]
    pairs = [
        (_display_name(box.phrase, defects), _clean(box.address))
        for value in raw
        for box in mailboxes(value)
    ]
    if raw and not any(usable(address) for _, address in pairs):
        pairs += _salvage_addresses(name, raw, defects)
    return pairs


def _salvage_addresses(name: str, raw: list[str], defects: list[str]) -> list[tuple[str, str]]:
    """Addresses hidden in an encoded word show once the field is decoded."""
    decoded = [_decode_encoded_words(v, defects) for v in raw]
    found = [a.lower() for v in decoded for a in BARE_ADDRESS.findall(v) if usable(a.lower())]
    if found:
        defects.append(f"addresses salvaged from a malformed {name} field")
    return [("", a) for a in found]


def _display_name(display: str, defects: list[str]) -> str:
    name = _clean(_decode_encoded_words(display, defects))
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return name


def _message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = MESSAGE_ID.findall(value) or value.split()
    return tuple(dict.fromkeys(i.strip("<>") for i in found if i.strip("<>")))


def _envelope(given: str | None, return_path: str | None) -> str | None:
    value = given if given is not None else return_path
    if value is None:
        return None
    return _clean(value).strip("<>").strip().lower()


# --- body text ---------------------------------------------------------------------------

# What a plain part says when it is only there for clients that cannot show HTML.
STUB_TEXT = re.compile(
    r"html[- ]?(?:message|mail|e-?mail|format|version|content)"
    r"|(?:support|display|read|view)\w*\s+html|html[- ]?(?:capable|enabled|compatible)"
    r"|view (?:this|it|the) \w+ (?:in|with|online)"
    r"|(?:open|view) (?:it |this )?in (?:a|your) (?:web )?browser|plain[- ]text version",
    re.IGNORECASE,
)
STUB_LENGTH = 300  # a stub is short: longer plain text is the customer's, whatever it says
HTML_WORTH = 200  # HTML text shorter than this never wins over a plain version


def weaker_than_html(plain: str, html_text: str) -> bool:
    """Is the plain version a stub, or clearly shorter than the HTML version's text?"""
    plain_length = len(" ".join(plain.split()))
    html_length = len(" ".join(html_text.split()))
    if plain_length == 0 or html_length == 0:
        return html_length > 0
    if plain_length < STUB_LENGTH and STUB_TEXT.search(plain):
        return html_length > plain_length
    return html_length >= HTML_WORTH and plain_length * 3 < html_length


def _readable(text: str) -> str:
    """The body goes into templates and engineers' mail: no control characters but line
    breaks and tabs (a form feed is a line break)."""
    return TEXT_CONTROLS.sub("", text.replace("\x0c", "\n"))


def _normalise_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"),
        *("fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4"),
        *("h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section"),
        *("table", "tbody", "td", "th", "thead", "tr", "ul"),
    }
)
HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextExtractor(HTMLParser):
    """HTML -> readable text: block elements break lines, hidden elements are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, +1)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, -1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or tag in BLOCK_TAGS:
            self.pieces.append("\n")

    def _tag(self, tag: str, step: int) -> None:
        if tag in HIDDEN_TAGS:
            self.hidden = max(0, self.hidden + step)
        elif tag == "br" and step > 0:
            self.pieces.append("\n")
        elif tag in BLOCK_TAGS:
            self.pre = max(0, self.pre + step) if tag == "pre" else self.pre
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if not self.pieces or self.pieces[-1].endswith("\n"):
                data = data.lstrip()  # HTML ignores white space at the start of a line
        self.pieces.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = [line.rstrip().replace("\xa0", " ") for line in "".join(extractor.pieces).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
