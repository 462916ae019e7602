"""Outgoing mail in its wire form, written once (pure).

`email.message.EmailMessage` with the `default` policy parses every header it is given into the
header registry and folds it again when serialised: most of the cost of an acknowledgement. Our
headers are few and known, so they are folded here as they are written (RFC 5322 section 2.2.3,
RFC 2047 encoded-words for text that is not ASCII, RFC 2231 for attachment names) and the body is
encoded with the C codecs of `binascii`. The result parses back, with `email.policy.default`,
to exactly the values given: no leading space, nothing lost at a fold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from email import quoprimime
from urllib.parse import quote

CRLF = "\r\n"
LINE = 78  # RFC 5322's "SHOULD" length of a header line
ENCODED_LINE = 76  # RFC 2047: a line holding an encoded-word is at most 76 characters
ENCODED_WORD = 75
HARD_LIMIT = 998  # RFC 5322's "MUST": longer words are written as encoded-words
SPECIALS = frozenset('()<>@,:;."[]\\')  # a display name with one of these is quoted
EW_OVERHEAD = len("=?utf-8?q??=")


def header(name: str, words: list[str]) -> str:
    """`name: words...` with a fold (CRLF and the space that was there) wherever the line would
    grow past its length; a word is never split and a line never holds only blanks."""
    line, lines, started = f"{name}:", [], False
    for word in words:
        limit = ENCODED_LINE if word.startswith("=?") else LINE
        if word and started and len(line) + 1 + len(word) > limit:
            lines.append(line)
            line = ""
        line += " " + word
        started = started or bool(word)
    return CRLF.join([*lines, line])


def unstructured(name: str, value: str) -> str:
    """A header of free text (Subject): plain words when it is ASCII, else encoded-words."""
    words = value.split(" ")
    if value.isascii() and "=?" not in value and all(len(w) < HARD_LIMIT - 2 for w in words):
        return header(name, words)
    return header(name, encoded_words(value, ENCODED_LINE - len(name) - 2))


def encoded_words(text: str, first: int = ENCODED_WORD) -> list[str]:
    """RFC 2047 Q encoding in words of at most 75 characters (`first` for the one that shares
    its line with the header's name), cut between characters, never inside a UTF-8 sequence;
    the blanks between encoded-words vanish when they are read."""
    words, chunk, size = [], [], EW_OVERHEAD
    for char in text:
        grows = quoprimime.header_length(char.encode())
        room = ENCODED_WORD if words else max(first, EW_OVERHEAD + 12)
        if chunk and size + grows > room:
            words.append(quoprimime.header_encode("".join(chunk).encode(), "utf-8"))
            chunk, size = [], EW_OVERHEAD
        chunk.append(char)
        size += grows
    if chunk:
        words.append(quoprimime.header_encode("".join(chunk).encode(), "utf-8"))
    return words


def address(name: str, addr_spec: str, first: int = ENCODED_WORD) -> tuple[str, list[str]]:
    """A mailbox with its display name: as it reads (for the history) and as header words."""
    if not name:
        return addr_spec, [addr_spec]
    shown = quoted(name) if SPECIALS & set(name) else name
    text = f"{shown} <{addr_spec}>"
    if name.isascii():
        # a quoted name is kept in one word: no fold inside the quotes
        words = [shown] if shown is not name else name.split(" ")
        return text, [*words, f"<{addr_spec}>"]
    return text, [*phrase_words(name, first), f"<{addr_spec}>"]


def phrase_words(name: str, first: int) -> list[str]:
    """A display name that is not all ASCII: its ASCII words as they are (quoted if need be),
    each run of other words in encoded-words with the blanks inside them. Small encoded-words
    read the same in every client: Python's parser reads a blank between two encoded-words of
    a phrase, where RFC 2047 says there is none."""
    words: list[str] = []
    run: list[str] = []

    def encode_run() -> None:
        if run:
            words.extend(encoded_words(" ".join(run), first if not words else ENCODED_WORD))
            run.clear()

    for word in name.split(" "):
        if word.isascii():
            encode_run()
            words.append(quoted(word) if SPECIALS & set(word) else word)
        else:
            run.append(word)
    encode_run()
    return words


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_lines(body: str) -> list[str]:
    """Lines as the mail's reader sees them: CRLF, CR and LF each end one."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def text_part(lines: list[str], subtype: str = "plain") -> tuple[list[str], bytes]:
    """The headers and the encoded body of a UTF-8 text part: 7bit when it is ASCII in short
    lines, else quoted-printable (safe through any relay, 8BITMIME or not)."""
    if all(line.isascii() and len(line) <= LINE for line in lines):
        cte, data = "7bit", CRLF.join([*lines, ""]).encode("ascii")
    else:
        encoded = binascii.b2a_qp("\n".join([*lines, ""]).encode(), istext=True)
        cte, data = "quoted-printable", encoded.replace(b"\n", b"\r\n")
    content_type = f'Content-Type: text/{subtype}; charset="utf-8"'
    return [content_type, f"Content-Transfer-Encoding: {cte}"], data


def attachment_part(content_type: str, filename: str, data: bytes) -> tuple[list[str], bytes]:
    headers = [
        f"Content-Type: {content_type}",
        f"Content-Disposition: attachment; {filename_parameter(filename)}",
        "Content-Transfer-Encoding: base64",
    ]
    return headers, base64.encodebytes(data).replace(b"\n", b"\r\n")


def filename_parameter(filename: str) -> str:
    if filename.isascii():
        return f"filename={quoted(filename)}"
    return f"filename*=utf-8''{quote(filename, safe='')}"


def message(headers: list[str], parts: list[tuple[list[str], bytes]], seed: str) -> bytes:
    """The whole message: one part as it is, several in a multipart/mixed."""
    part_headers, body = parts[0] if len(parts) == 1 else multipart("mixed", parts, seed)
    return _block([*headers, "MIME-Version: 1.0", *part_headers]) + body


def multipart(
    subtype: str, parts: list[tuple[list[str], bytes]], seed: str
) -> tuple[list[str], bytes]:
    """A multipart part (mixed: text and attachments; alternative: plain text and HTML) whose
    boundary is derived from `seed` (the Message-ID) and the subtype, and checked against
    what it encloses."""
    boundary = f"=_hd_{subtype[:3]}_" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    while any(boundary.encode() in body for _, body in parts):
        boundary += "_"
    mark = f"--{boundary}".encode()
    out = []
    for part_headers, body in parts:
        # the CRLF before a boundary belongs to the boundary, not to the part
        out += [mark, b"\r\n", _block(part_headers), body, b"\r\n"]
    out.append(mark + b"--\r\n")
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], b"".join(out)


def _block(headers: list[str]) -> bytes:
    """Header lines and the blank line that ends them. Non-ASCII can only be in an address
    (SMTPUTF8), everything else was encoded above."""
    return (CRLF.join(headers) + CRLF + CRLF).encode()
