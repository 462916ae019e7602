"""Search (pure): what gets indexed of a message, the words of a query, and how the rows the
store found are ranked and quoted.

Both stores find the rows that hold every word (a trigram index each); ranking and snippets
are done here, so SQLite and PostgreSQL answer a query the same way."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from helpdeskd.model import Attachment, Inbound

# attachments worth reading as text, whatever their name says
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml")
ATTACHMENT_TEXT_MAX = 200_000  # characters of one attachment kept: a log's head is enough
SNIPPET_WIDTH = 60  # characters each side of the first match
SUBJECT_WEIGHT = 3  # a word in the subject says more about the case than one in a reply
_NOT_A_WORD = re.compile(r"[%_\\\s]+")  # LIKE's wildcards are not searchable


@dataclass(frozen=True)
class Found:
    reference: str
    subject: str
    status: str
    customer: str | None
    opened_at: str
    score: float
    snippet: str


def words(query: str) -> list[str]:
    """The query's words, in order, each once, folded: "Invalid  SESSION" -> invalid, session."""
    return list(dict.fromkeys(w.lower() for w in _NOT_A_WORD.split(query) if w))


def indexed(inbound: Inbound, body: str) -> list[tuple[str, str]]:
    """(part, text) rows for a message applied to a case: its subject and stored text, and the
    text of each text-like attachment."""
    rows = [("message", f"{inbound.subject}\n{body}")]
    rows += [("attachment", text) for a in inbound.attachments if (text := attachment_text(a))]
    return rows


def attachment_text(attachment: Attachment) -> str | None:
    if not attachment.content_type.lower().startswith(TEXT_TYPES):
        return None
    text = attachment.data[: ATTACHMENT_TEXT_MAX * 4].decode("utf-8", errors="replace")
    name = attachment.filename or "attachment"
    return f"{name}\n{text[:ATTACHMENT_TEXT_MAX]}"


def rank(rows: list[dict], wanted: list[str], limit: int) -> list[Found]:
    """One result per case, best first: each word's occurrences counted (a log scale, so one
    long log does not drown the rest), the subject's weighing more; ties go to the newer case."""
    scores: dict[str, float] = defaultdict(float)
    best: dict[str, tuple[float, dict]] = {}
    for row in rows:
        text = row["body"].lower()
        score = sum(math.log1p(text.count(w)) for w in wanted)
        score += SUBJECT_WEIGHT * sum(w in (row["subject"] or "").lower() for w in wanted)
        scores[row["reference"]] += score
        if row["reference"] not in best or score > best[row["reference"]][0]:
            best[row["reference"]] = (score, row)
    newest = sorted(scores, key=lambda ref: (best[ref][1]["opened_at"] or "", ref), reverse=True)
    order = sorted(newest, key=lambda ref: -scores[ref])  # stable: the newer first on a tie
    return [_found(best[ref][1], round(scores[ref], 3), wanted) for ref in order[:limit]]


def _found(row: dict, score: float, wanted: list[str]) -> Found:
    return Found(
        row["reference"],
        row["subject"],
        row["status"],
        row["customer"],
        row["opened_at"],
        score,
        snippet(row["body"], wanted),
    )


def snippet(text: str, wanted: list[str]) -> str:
    """The text around the first word found, on one line, the words found in [brackets]."""
    folded = text.lower()
    hits = [at for w in wanted if (at := folded.find(w)) >= 0]
    first = min(hits) if hits else 0
    start, end = max(0, first - SNIPPET_WIDTH), first + SNIPPET_WIDTH
    shown = " ".join(text[start:end].split())
    for w in wanted:
        shown = re.sub(re.escape(w), lambda m: f"[{m[0]}]", shown, flags=re.I)
    return ("…" if start else "") + shown + ("…" if end < len(text) else "")
