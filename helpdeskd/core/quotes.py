"""Split a reply into its new text and what it carries along (quoted history, signature).

A case stores and forwards only what the writer just wrote. The approach is the one of
discourse/email_reply_trimmer (MIT): every line gets a one-letter kind, the kinds of a
message form a string such as ``"tteebqqq"``, and a short list of regular expressions over
that string decides where the new text ends. Both the line patterns and the trimming steps
are tables, so a new mail client's quote header is one more entry, not more code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

EMPTY = "e"
DELIMITER = "d"  # a line of only -_=+~#* and the like: everything below it is cut
SIGNATURE = "s"  # "Sent from my iPhone" and its cousins: the line alone is cut
EMBEDDED = "b"  # the start of an earlier mail: "On ... wrote:", "-----Original Message-----"
HEADER = "h"  # "From: ...", "Sent: ..." of an earlier mail pasted by Outlook and others
QUOTE = "q"
TEXT = "t"

# "On Mon, 1 Jan 2024 at 10:00, Alice <a@example.com> wrote:" in the languages seen in the
# wild, as (opening word, closing words). The sentence may wrap over a few lines; the
# span is bounded so a stray "On" in prose cannot make the search quadratic.
_ON_DATE_SOMEONE_WROTE = (
    ("在", "写道"),
    ("Op", r"het\svolgende\sgeschreven|schreef[^:]+"),
    ("In message", "writes"),
    ("On", "wrote|writes|says|said"),
    ("At", "wrote|writes|says|said"),
    ("Le", r"nous\sa\sdit|a\s+écrit"),
    ("Am", r"schrieben\sSie"),
    ("Am", r"geschrieben|schrieb[^:]+"),
    ("Il", r"ha\sscritto"),
    ("Dnia|Dňa", r"napisał(?:\(a\))?"),
    ("Em", "escreveu"),
    ("El", "escribió"),
)


def _on_date_someone_wrote(opening: str, closing: str) -> str:
    # The date's digits are required so that prose such as "On Monday the customer said"
    # is not taken for the start of an earlier mail.
    words = rf"\b(?:{opening}|{closing})\b"
    span = rf"(?=.{{0,200}}?\d)(?:(?!{words}).){{1,400}}?"
    return rf"(?i)^[[:blank:]<>-]*(?:{opening}) {span}(?:{closing})[[:blank:].:>-]*$"


_ON_DATE_SOMEONE_WROTE_PATTERNS = tuple(
    _on_date_someone_wrote(opening, closing) for opening, closing in _ON_DATE_SOMEONE_WROTE
)
# The case-sensitive markers below come with a word they never match without: the whole
# text is searched for one only when its word is in it.
# "Max <max@example.com> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:"
_SOMEONE_WROTE_ON_DATE = (
    ("wrote", r"^[^\n]{0,200}\bwrote\s+on\b[^:]{1,200}:"),
    ("schrieb", r"^[^\n]{0,200}\bschrieb\s+am\b[^:]{1,200}:"),
)
# "23 mar 2017 21:25 "Neil" <meta@example.com> napisał(a):", "... пользователь X написал:"
_DATE_SOMEONE_WROTE = (
    ("написал:", r"\d{4}.{1,80}пользователь(?:.{0,80}\n)?.{0,80}?написал:"),
    ("napisał(a):", r"\d{4}(?:.{1,80}\n)?.{0,80}?napisał\(a\):"),
    ("пише:", r"\d{4}(?:.{1,80}\n)?.{0,80}?пише:"),
)
# "2015-10-18 0:17 GMT+03:00 Matt <info@example.org>:", "вт, 5 янв. 2016 г. в 23:39, X <x@y.z>:"
_DATE_SOMEONE_EMAIL = ("@", r"\d{4}.{1,80}<[^@<>]{1,200}@[^@<>.]{1,200}\.[^@<>]{1,200}>:?$")
_SOMEONE_WROTE_ON_DATE_PATTERNS = tuple(pattern for _, pattern in _SOMEONE_WROTE_ON_DATE)
_DATE_SOMEONE_WROTE_PATTERNS = tuple(pattern for _, pattern in _DATE_SOMEONE_WROTE)
_DATE_SOMEONE_EMAIL_PATTERN = _DATE_SOMEONE_EMAIL[1]

# The line kinds, tried in this order; a line that matches none is TEXT.
LINE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (EMPTY, (r"^\s*$",)),
    (DELIMITER, (r"^[[:blank:]]*[-_,=+~#*ᐧ—]+[[:blank:]]*$",)),
    (
        SIGNATURE,
        (
            r"(?i)^[[:blank:]]*從我的 iPhone 傳送",
            r"(?i)^[[:blank:]]*\w+ from mobile",
            r"(?i)^[[:blank:]]*[(<]*Sent (?:from|via|with|by) .+",
            r"(?i)^[[:blank:]]*From my .{1,20}",
            r"(?i)^[[:blank:]]*Get Outlook for ",
            r"(?i)^[[:blank:]]*Envoyé depuis (?:mon|Yahoo Mail)",
            r"(?i)^[[:blank:]]*Von meinem .+ gesendet",
            r"(?i)^[[:blank:]]*Diese Nachricht wurde von .+ gesendet",
            r"(?i)^[[:blank:]]*Inviato da ",
            r"(?i)^[[:blank:]]*Sendt fra min ",
            r"(?i)^[[:blank:]]*Enviado do meu ",
            r"(?i)^[[:blank:]]*Enviado desde mi ",
            r"(?i)^[[:blank:]]*Verzonden met ",
            r"(?i)^[[:blank:]]*Verstuurd vanaf mijn ",
            r"(?i)^[[:blank:]]*från min ",
        ),
    ),
    (
        EMBEDDED,
        (
            *_ON_DATE_SOMEONE_WROTE_PATTERNS,
            # "Am 18.09.2013 um 16:24 schrieb Alice <a@example.com>:" and Nordic cousins
            r"^[[:blank:]>]*Op\s.+\sschreef\s[^:]+:",
            r"^[[:blank:]>]*Am\s.+\sschrieb\s[^:]+:",
            r"^[[:blank:]>]*Den\s.+\sskrev\s[^:]+:",
            r"^[[:blank:]>]*søn\.\s.+\sskrev\s[^:]+:",
            *_DATE_SOMEONE_WROTE_PATTERNS,
            _DATE_SOMEONE_EMAIL_PATTERN,
            *_SOMEONE_WROTE_ON_DATE_PATTERNS,
            r"^[[:blank:]>]*20\d\d-\d\d-\d\d \d\d:\d\d GMT\+\d\d:\d\d [\w \t]+$",
            r"^.+ via .+ (?:wrote|schrieb):?[[:blank:]]*$",
            r"^.*\w@[\w-]+\.[\w.-]*\w\b.+wrote:?$",
            r"(?i)^[[:blank:]>]*Posted by .+ on \d{2}/\d{2}/\d{4}$",
            # forwarded and Outlook-style original mail markers
            r"(?i)^[[:blank:]>]*Begin forwarded message:",
            r"(?i)^[[:blank:]>]*Début du message transféré :",
            r"(?i)^[[:blank:]>*]*-{2,}[[:blank:]]*(?:Forwarded Message|Original Message"
            r"|Reply Message|Message transféré|Ursprüngliche Nachricht|Mensaje original"
            r"|原始邮件)[[:blank:]]*-{2,}",
        ),
    ),
    (
        HEADER,
        (
            # headers whose value holds a date
            r"^[[:blank:]*]*(?:Sendt|Sent|Date|Le|Gesendet|Enviada em|Enviado|Fecha|Data|Datum"
            r"|Skickat|发送时间)[[:blank:]*]*:.*\d+",
            # headers whose value holds words
            r"(?i)^[[:blank:]*]*(?:From|To|Cc|Reply-To|Subject|Fra|Til|Emne|De|Expéditeur|À"
            r"|Destinataire|Répondre à|Objet|Von|An|Betreff|Para|Assunto|Asunto|Da"
            r"|Risposta|A|Oggetto|Van|Beantwoorden - Aan|Aan|Onderwerp|Från|Till|Ämne"
            r"|发件人|收件人|主题)[[:blank:]*]*:.*\w+",
        ),
    ),
    (QUOTE, (r"^[[:blank:]]*>",)),
)

# Unicode blanks too: French clients put a no-break space before the colon of "a écrit :".
_BLANK = r" \t\xa0\u202f"


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern.replace("[:blank:]", _BLANK), flags)


def _any_of(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """A kind's patterns as at most two regexes, each pattern an alternative in a group of
    its own flags: a line is tried against a kind in one or two searches, not one a pattern.
    Those anchored at the start share their `^`, so the engine tries them there only."""
    anchored, anywhere = [], []
    for pattern in patterns:
        flags, body = ("i", pattern[4:]) if pattern.startswith("(?i)") else ("", pattern)
        if body.startswith("^"):
            anchored.append(f"(?{flags}:{body[1:]})")
        else:
            anywhere.append(f"(?{flags}:{body})")
    combined = ([f"^(?:{'|'.join(anchored)})"] if anchored else []) + (
        [f"(?:{'|'.join(anywhere)})"] if anywhere else []
    )
    return tuple(_compile(p) for p in combined)


_COMPILED_KINDS = tuple((kind, _any_of(patterns)) for kind, patterns in LINE_KINDS)
# A wrapped quote header is joined into one line before the lines are classified.
# (marker, the word it needs; "" for the case-insensitive ones, which are always searched)
_WRAPPED_MARKERS = tuple(
    (_compile(p, re.MULTILINE | re.DOTALL), "") for p in _ON_DATE_SOMEONE_WROTE_PATTERNS
) + tuple(
    (_compile(p, re.MULTILINE), word)
    for word, p in (*_SOMEONE_WROTE_ON_DATE, *_DATE_SOMEONE_WROTE, _DATE_SOMEONE_EMAIL)
)
# Some clients quote with the writer's initials, "C> text"; for classification that is ">".
_INITIALS_QUOTE = re.compile(r"^(?:[ \t]*[^\W\d_]*>)+")
_INITIALS = re.compile(r"[^\W\d_]+>")
# No header, signature or delimiter is this long; longer lines are text or quote, which also
# keeps the patterns with two open-ended parts from costing time quadratic in a line's length.
_LONGEST_MARKER = 1000
_QUOTE = _compile(dict(LINE_KINDS)[QUOTE][0])
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_CODE_FENCE_OPEN = re.compile(r"^```")
_CODE_FENCE_CLOSE = re.compile(r"^ {0,3}```\s*$")
_BLANK_EDGES = re.compile(r"\A(?:[^\S\n]*\n)+|(?:\n[^\S\n]*)+\Z|\A\s+\Z")


@dataclass(frozen=True)
class Reply:
    new: str  # what the writer wrote in this message
    elided: str  # what was cut: quoted history, pasted headers, signature


@functools.lru_cache(maxsize=16)
def split_reply(text: str) -> Reply:
    """The new text of a reply and, apart, the history and signature it carries. Kept for
    the few last texts: the priority, the outcome and the survey each ask of the same one."""
    lines = _prepare(text).split("\n")
    kept = _trim(_kinds(lines), list(range(len(lines))))
    kept_set = set(kept)
    new = "\n".join(lines[i] for i in kept)
    elided = "\n".join(line for i, line in enumerate(lines) if i not in kept_set)
    return Reply(new=_strip_blank_lines(new), elided=_strip_blank_lines(elided))


def _strip_blank_lines(text: str) -> str:
    """Leading and trailing blank lines go; the first line's indentation stays (code)."""
    return _BLANK_EDGES.sub("", text)


def _prepare(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for marker, word in _WRAPPED_MARKERS:
        if word in text:
            text = marker.sub(_join_wrapped_marker, text)
    return _strip_blank_lines(text)


def _join_wrapped_marker(match: re.Match[str]) -> str:
    # A quote header wrapped by the mail client is one line for classification; a match
    # over many lines is prose that happened to fit the pattern, left as it was.
    found = match.group(0)
    return found if found.count("\n") > 4 else re.sub(r"\n+\s*", " ", found)


def _kinds(lines: list[str]) -> str:
    kinds = [_kind(line) for line in lines]
    for start, end in _code_blocks(lines):
        kinds[start : end + 1] = TEXT * (end + 1 - start)
    return "".join(kinds)


def _kind(line: str) -> str:
    if len(line) > _LONGEST_MARKER:
        return QUOTE if _QUOTE.match(line) else TEXT
    if "](" in line:  # most lines hold no link and no quote: their substitutions are skipped
        line = _MARKDOWN_LINK.sub(r"\1", line)
    if ">" in line:
        line = _INITIALS_QUOTE.sub(lambda m: _INITIALS.sub(">", m.group(0)), line)
    for kind, patterns in _COMPILED_KINDS:
        if any(p.search(line) for p in patterns):
            return kind
    return TEXT


def _code_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line of each fenced code block: what is written there is all text."""
    blocks, start = [], None
    for i, line in enumerate(lines):
        if start is None and _CODE_FENCE_OPEN.match(line):
            start = i
        elif start is not None and _CODE_FENCE_CLOSE.match(line):
            blocks.append((start, i))
            start = None
    return blocks


# An action takes the kinds string, the kept line numbers and the match; it returns both cut.
_Action = Callable[[str, list[int], re.Match[str]], tuple[str, list[int]]]


def _keep_before(kinds: str, kept: list[int], m: re.Match[str]) -> tuple[str, list[int]]:
    return kinds[: m.start()], kept[: m.start()]


def _keep_through(kinds: str, kept: list[int], m: re.Match[str]) -> tuple[str, list[int]]:
    at = m.start("at") if "at" in m.re.groupindex else m.start()
    return kinds[: at + 1], kept[: at + 1]


def _keep_from(kinds: str, kept: list[int], m: re.Match[str]) -> tuple[str, list[int]]:
    return kinds[m.start("at") :], kept[m.start("at") :]


def _drop(kinds: str, kept: list[int], m: re.Match[str]) -> tuple[str, list[int]]:
    kind = m.group(0)
    return kinds.replace(kind, ""), [i for i, k in zip(kept, kinds, strict=True) if k != kind]


def _as_headers(kinds: str, kept: list[int], m: re.Match[str]) -> tuple[str, list[int]]:
    start, end = m.span("at")
    return kinds[:start] + HEADER * (end - start) + kinds[end:], kept


# Applied in order to the kinds of the lines still kept; each step runs once, on the first
# match of its pattern; a cut is made at the match's start, or at the group "at" if named.
TRIM_STEPS: tuple[tuple[str, str, _Action], ...] = (
    ("a delimiter line ends the new text", r"d", _keep_before),
    ("mobile signatures go, wherever they are", r"s", _drop),
    ("a reply written below the whole quote", r"^b[^t]+(?P<at>t[et]*)$", _keep_from),
    # te*b[^q]*$, written to try only the stretch after the last quote: linear, not quadratic
    ("an earlier mail not quoted", r"(?<![^q])(?>[^q]*?(?P<at>t)e*b)[^q]*$", _keep_through),
    ("an earlier mail quoted, little text after", r"te*b[eqbh]*(?:te*){0,6}$", _keep_through),
    ("quoted history ending the mail", r"t?(?<![qbe])[qbe]+$", _keep_through),
    ("remaining quote headers go", r"b", _drop),
    # h+[hte]+h+e, tried once per stretch of h, t and e for the same reason
    ("wrapped pasted headers", r"(?<![hte])[te]*(?P<at>h[hte]+he)", _as_headers),
    ("three pasted headers start an earlier mail", r"t[eq]*h{3,}", _keep_through),
    ("remaining pasted headers go", r"h", _drop),
    ("quote and blank lines after the text", r"(?<=[^eq])[eq]+$", _keep_before),
)
_COMPILED_STEPS = tuple((re.compile(p), action) for _, p, action in TRIM_STEPS)


def _trim(kinds: str, kept: list[int]) -> list[int]:
    for pattern, action in _COMPILED_STEPS:
        match = pattern.search(kinds)
        if match:
            kinds, kept = action(kinds, kept, match)
    return kept
