"""Bytes in a declared (or missing, or lying) charset -> text, repaired by segment, not by part.

Pure. The declared charset is trusted while it decodes. When it does not, the whole text is
tried as UTF-8, then in the declared charset's family (the superset clients really used:
windows-1252 for latin-1, cp932 for Shift_JIS and ISO-2022-JP, cp949 for EUC-KR...), then in
the charset a detector finds. When nothing decodes the whole, it is decoded in the declared
charset and only the bytes that fail are repaired, one run at a time: two bad bytes in a
50 KB UTF-8 part cost two characters, not the part's Cyrillic.

A subject or a name is too short for a detector: there every charset that reads the bytes
is weighed by the oddities of its reading (symbols glued to letters, scripts mixed inside a
word, rare characters of a wide charset...), and a single-byte label, which reads any bytes,
is doubted when its reading is odd. 7-bit bytes with ISO-2022-JP escapes are ISO-2022-JP
whatever their label says.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterator

from charset_normalizer import from_bytes

from helpdeskd.core.oddities import JAPANESE, oddities

# Labels seen in real mail that Python does not know, or knows only as a narrower codec.
CHARSET_ALIASES = {
    "iso-gb2312": "gb18030",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "utf8": "utf-8",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "shift-jis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "ansi_x3.4-1968": "ascii",
}
# Widenings that are not repairs: no defect is recorded for them.
SILENT_ALIASES = frozenset({"gb2312", "gbk", "utf8"})
# When these fail, the bytes are most likely latin-1 written by a careless client.
WESTERN = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "iso8859-15", "cp1252"})
# What a client that declared the key most likely wrote instead (Python codec names).
FAMILIES: dict[str, tuple[str, ...]] = {
    "iso8859-1": ("cp1252",),
    "iso8859-15": ("cp1252",),
    "iso2022_jp": ("iso2022-jp-ms", "cp932", "euc_jp"),
    "shift_jis": ("cp932", "euc_jp"),
    "cp932": ("euc_jp",),
    "euc_jp": ("cp932",),
    "euc_kr": ("cp949",),
    "iso2022_kr": ("cp949",),
    "big5": ("cp950", "big5hkscs"),
    "gb18030": ("big5",),
    "koi8-r": ("koi8-u", "cp1251"),
    "iso8859-5": ("cp1251", "koi8-r"),
    "cp1251": ("koi8-r",),
    "iso8859-2": ("cp1250",),
    "iso8859-7": ("cp1253",),
    "iso8859-9": ("cp1254",),
    "iso8859-8": ("cp1255",),
}
CHARSET_LABEL = re.compile(r"[a-z0-9_.:+-]{1,40}")
ESCAPED_RUN = re.compile("[\udc80-\udcff]+")  # bytes a codec could not read, escaped
DETECT_BYTES = 64 * 1024  # the detector reads no more than this: enough to be right
# The charsets mail is written in, most used first (charset-normalizer's names).
MAIL_CHARSETS = (
    *("cp1252", "cp1250", "iso8859_2", "cp1251", "koi8_r", "cp1253", "cp1254", "cp1255"),
    *("cp1256", "cp1257", "gb18030", "big5", "cp932", "euc_jp", "cp949", "cp874"),
)
DETECT_MIN_8BIT = 24  # fewer 8-bit bytes than this and detectors guess at random
EIGHT_BIT = bytes(range(0x80, 0x100))
JIS_ESCAPE = re.compile(rb"\x1b(\$[@B]|\$\(D|\([BJI])")
C1_CONTROLS = re.compile("[\x80-\x9f]")  # never text: bytes of another charset read as latin-1
# Too few bytes for a detector (a subject, a name): each of these readings is weighed by what
# real text never holds. Ties go to the first, so windows-1252 keeps Müller.
SHORT_CHARSETS = (
    *("cp1252", "cp932", "gb18030", "euc_jp", "big5", "cp949", "cp1251", "koi8-r", "cp1250"),
    *("cp1253", "cp1255", "cp1256", "cp1257"),
)
LIE = 2  # oddities that make a single-byte label doubtful
# A reading of its own for short text: UTF-8 where the bytes are UTF-8, each other run read
# on its own (a UTF-8 subject a client appended a latin-1 word to).
UTF8_MIXED = "utf-8+cp1252"
UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def decode_text(
    data: bytes,
    charset: str | None,
    defects: list[str],
    *,
    what: str = "text",
    hints: tuple[str, ...] = (),
) -> str:
    """Decode bytes in a declared charset, repairing instead of raising. `hints` are other
    charsets the message declares, tried before a detector's guess."""
    label = (charset or "").strip().strip("\"'").split("*")[0].lower()
    codec = codec_for(label, defects)
    if codec not in JAPANESE and data.isascii() and JIS_ESCAPE.search(data):
        defects.append(f"{what} in charset {label or 'none'} decoded as iso-2022-jp")
        return repair_segments(data, "iso2022-jp-ms")
    if codec is not None and (codec not in WESTERN or not _is_multibyte_utf8(data)):
        try:
            text = _decode(data, codec)
        except (LookupError, ValueError):
            text = None
        if text is not None and not _lies(data, text, codec):
            return text
        if text is None and codec != "ascii" and _mostly_right(data, codec):
            defects.append(f"{what} in charset {label}: a few bad bytes repaired where they are")
            return repair_segments(data, codec)
    for candidate in _candidates(data, codec, hints):
        try:
            text = _decode(data, candidate)
        except (LookupError, ValueError):
            continue
        if candidate != codec and not (codec is None and candidate in ("ascii", "utf-8")):
            defects.append(f"{what} in charset {label or 'none'} decoded as {candidate}")
        return text
    primary = codec if codec is not None and codec != "ascii" else "utf-8"
    defects.append(f"{what} in charset {label or 'none'}: undecodable bytes repaired")
    if len(data) > DETECT_BYTES:  # text in no charset at all, and long: binary or hostile
        return data.decode("cp1252", "replace")
    return repair_segments(data, primary)


def _lies(data: bytes, text: str, codec: str) -> bool:
    """A label that decodes but cannot be right: C1 controls are never text, and a few bytes
    that read oddly more than once in a single-byte charset (where any bytes decode) may
    read better in another one. One oddity is a name spelt oddly, not a lie."""
    if C1_CONTROLS.search(text):
        return True
    return _few_8bit(data) and _single_byte(codec) and oddities(text, codec) >= LIE


def _candidates(data: bytes, codec: str | None, hints: tuple[str, ...]) -> Iterator[str]:
    """The charsets to try, in order; the detector, the costly one, runs only when none of
    the others decodes. Too few bytes for it: every likely reading, the least odd first."""
    family = FAMILIES.get(codec or "", ())
    hinted = [c for h in hints if (c := codec_for(h.lower(), [])) and c != "ascii"]
    if not data.isascii() and _few_8bit(data):
        own = [codec] if codec and codec not in ("ascii", "utf-8") else []
        mixed = [UTF8_MIXED] if UTF8_SEQUENCE.search(data) else []
        yield "utf-8"
        yield from _least_odd(data, [*mixed, *own, *hinted, *family, *SHORT_CHARSETS])
        return
    # 7-bit bytes always "decode" as UTF-8: an ISO-2022 family must go first for them
    found = [*family, "utf-8"] if data.isascii() else ["utf-8", *hinted, *family]
    yield from dict.fromkeys(found)
    detected = detect(data)
    yield from dict.fromkeys(c for c in (detected, "cp1252") if c and c not in found)


@functools.cache
def _single_byte(codec: str) -> bool:
    """Does every byte read as one character (so any bytes "decode")?"""
    text = _decode(EIGHT_BIT, codec, "replace")
    return len(text) == len(EIGHT_BIT) and text.count("\ufffd") < 16


def _few_8bit(data: bytes) -> bool:
    return len(data) - len(data.translate(None, EIGHT_BIT)) < DETECT_MIN_8BIT


def _least_odd(data: bytes, codecs_: list[str]) -> list[str]:
    """The codecs that read the bytes, the reading with the fewest oddities first (ties in
    the order given)."""
    readings = []
    for index, name in enumerate(dict.fromkeys(codecs_)):
        try:
            text = _decode(data, name)
        except (LookupError, ValueError):
            continue
        readings.append((oddities(text, name), index, name))
    return [name for _, _, name in sorted(readings)]


def _mostly_right(data: bytes, codec: str) -> bool:
    """A few bad bytes in text the declared charset reads (a truncated character, a pasted
    latin-1 word) are repaired where they are; a label that fails throughout is wrong."""
    bad = _decode(data, codec, "replace").count("\ufffd")
    eight_bit = len(data) - len(data.translate(None, EIGHT_BIT))
    return bad * 10 <= eight_bit


def _is_multibyte_utf8(data: bytes) -> bool:
    """Non-ASCII bytes that are valid UTF-8 are UTF-8, whatever single-byte label they wear:
    text in a single-byte charset is almost never valid UTF-8 by chance."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode(data: bytes, codec: str, errors: str = "strict") -> str:
    if codec == "iso2022-jp-ms":
        return iso2022jp_ms(data, errors)
    if codec == UTF8_MIXED:
        return repair_segments(data, "utf-8")
    return data.decode(codec, errors)


def detect(data: bytes) -> str | None:
    """The charset a maintained detector finds, as a Python codec name. A few bytes (a name,
    a subject) are too few to tell Müller in windows-1252 from 黮 in GB18030: none then."""
    if len(data) - len(data.translate(None, EIGHT_BIT)) < DETECT_MIN_8BIT:
        return None
    found = from_bytes(data[:DETECT_BYTES], cp_isolation=list(MAIL_CHARSETS))
    # among equally clean readings, the charset mail most often uses: the detector alone
    # tells windows-1252 from ISO-8859-10 or -14 by chance
    ranked = sorted(found, key=lambda m: (round(m.chaos, 1), MAIL_CHARSETS.index(m.encoding)))
    return codecs.lookup(ranked[0].encoding).name if ranked else None


def codec_for(label: str, defects: list[str]) -> str | None:
    """Python's name for a charset label; None when it is not a known text encoding."""
    if not label or label in ("us-ascii", "ascii"):
        return "ascii" if label else None
    if not CHARSET_LABEL.fullmatch(label):
        defects.append("unusable charset label")
        return None
    name = CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(name)
    except LookupError:
        defects.append(f"unknown charset {label}")
        return None
    if not getattr(info, "_is_text_encoding", True):
        defects.append(f"charset {label} is not a text encoding")
        return None
    if name != label and label not in SILENT_ALIASES:
        defects.append(f"charset {label} decoded as {name}")
    return info.name


def repair_segments(data: bytes, codec: str) -> str:
    """Decode in `codec`; each run of bytes it cannot read is read on its own, as UTF-8, in
    the codec's family, else as windows-1252. One pass in C, one call per bad run."""
    try:
        text = _decode(data, codec, "surrogateescape")
    except UnicodeDecodeError:  # a 7-bit codec failing on a 7-bit byte: no escape for it
        return _decode(data, codec, "replace")
    family = FAMILIES.get(codec, ())
    return ESCAPED_RUN.sub(lambda run: _read_run(run.group(), family), text)


def _read_run(escaped: str, family: tuple[str, ...]) -> str:
    raw = escaped.encode("utf-8", "surrogateescape")
    for codec in ("utf-8", *family, "cp1252"):
        try:
            text = _decode(raw, codec)
        except (LookupError, ValueError):
            continue
        if text.isprintable():
            return text
    return raw.decode("cp1252", "replace")


def raw_jis(text: str) -> str:
    """Raw ISO-2022-JP in a header field, without an encoded word: its escapes give it away."""
    if "\x1b" not in text or not text.isascii():
        return text
    data = text.encode("ascii")
    if not JIS_ESCAPE.search(data):
        return text
    return repair_segments(data, "iso2022-jp-ms")


def iso2022jp_ms(data: bytes, errors: str = "strict") -> str:
    """ISO-2022-JP as Microsoft and most Japanese clients write it (CP50220): JIS X 0208 with
    the NEC and IBM extensions (①, ㈱, 髙...), which Python's iso2022_jp codecs refuse. The
    two-byte runs are moved to their Shift_JIS codes and read as cp932."""
    out = bytearray()
    mode = b"(B"
    position = 0
    for escape in JIS_ESCAPE.finditer(data):
        out += _jis_run(data[position : escape.start()], mode)
        mode, position = escape.group(1), escape.end()
    out += _jis_run(data[position:], mode)
    return bytes(out).decode("cp932", errors)


def _jis_run(run: bytes, mode: bytes) -> bytes:
    if mode == b"(I":  # half-width katakana
        return bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in run)
    if mode not in (b"$@", b"$B"):
        return run
    out = bytearray()
    for index in range(0, len(run) - 1, 2):
        out += _sjis(run[index], run[index + 1])
    return bytes(out) + run[len(run) - len(run) % 2 :]


def _sjis(first: int, second: int) -> bytes:
    if not (0x21 <= first <= 0x7E and 0x21 <= second <= 0x7E):
        return bytes([first, second])  # not JIS: left for cp932 (or the repair) to read
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    odd_row = second + (0x1F if second < 0x60 else 0x20)
    trail = odd_row if first % 2 else second + 0x7E
    return bytes([lead, trail])
