"""How urgent a new message says it is (pure): the priority chosen on the status page's form,
else the policy's keywords, read as a person reads them: not when negated close before ("we are
not down", "no outage"), and not in the earlier mail a message quotes."""

from __future__ import annotations

import functools
import re

from helpdeskd.core.quotes import split_reply

NEGATIONS = frozenset(
    {"no", "not", "never", "without", "nothing", "none", "nor", "neither", "cannot", "hardly"}
)
REACH = 3  # words before a keyword that can negate it ("not completely down")
# a negation reaches no further than its clause: "not sure why, but the site is down"
_CLAUSE = re.compile(r"[.!?;:,()\n]|\bbut\b|\bhowever\b")
_WORD = re.compile(r"[\w']+")
# the line the status page's form writes for the priority chosen there
CHOSEN = re.compile(r"^Priority:\s*(P[1-4])\s*$", re.I | re.M)


def priority_of(
    subject: str, text: str, keywords: dict[str, tuple[str, ...]], default: str
) -> tuple[str, str]:
    """The priority and why: chosen on the form, a keyword, or the default."""
    if not _could_say(subject, text, keywords):
        return default, "default"  # most mail: no quote to split off, no keyword to weigh
    new = split_reply(text).new[:4000]
    chosen = CHOSEN.search(new)
    if chosen:
        return chosen[1].upper(), "chosen on the new-case form"
    said = f"{subject}\n{new}".lower().replace("\u2019", "'")
    for priority, words in sorted(keywords.items()):
        for word in words:
            if any(not negated(said, m.start()) for m in _found(word, said)):
                return priority, f"keyword {word!r}"
    return default, "default"


def _could_say(subject: str, text: str, keywords: dict[str, tuple[str, ...]]) -> bool:
    """Whether the whole text holds the form's line or any keyword at all: what its new
    part says is a part of it, so without one the answer is the default."""
    said = f"{subject}\n{text}".lower().replace("\u2019", "'")
    words = [w for found in keywords.values() for w in found]
    return bool(CHOSEN.search(text)) or any(_keyword(w).search(said) for w in words)


def _found(word: str, text: str) -> list[re.Match]:
    return list(_keyword(word).finditer(text))


@functools.lru_cache(maxsize=256)
def _keyword(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(word)}\b")


def negated(text: str, start: int) -> bool:
    """A negation among the few words before `start`, in the same clause."""
    clause = _CLAUSE.split(text[:start])[-1]
    before = _WORD.findall(clause)[-REACH:]
    return any(w in NEGATIONS or w.endswith("n't") or w.endswith("nt'") for w in before)
