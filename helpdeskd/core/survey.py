"""The satisfaction survey: when to ask, what counts as a rating, the rating itself (pure).

A customer is asked once per case, when it is resolved or closed and the plan says
`survey = true`. A reply whose first line is one number from 1 to 5 is a rating (what follows is
its comment); anything else is an ordinary reply. The mail pipeline and the status page both
record a rating through `rate()`, and the store keeps it with one call (`Ratings.record`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from helpdeskd.config import Config
from helpdeskd.core import sla
from helpdeskd.model import Case

ASKED = "survey"  # the notice recorded on a case once its customer was asked
SCORES = range(1, 6)
SCORE_LINE = re.compile(r"([1-5])(?:\s*/\s*5)?[.!]?")


@dataclass(frozen=True)
class Rating:
    case_id: int
    score: int  # 1..5
    comment: str
    by: str  # the address that rated
    at: datetime


def should_ask(case: Case, config: Config, cause: str) -> bool:
    """`cause` is who settled the case: engineer, customer or timeout (the closing rule)."""
    if ASKED in case.notices or not sla.plan_of(case, config).survey:
        return False
    return cause != "timeout" or config.policy.survey_after_auto_close


def asked(case: Case) -> Case:
    return replace(case, notices=case.notices | {ASKED})


def rating_of(text: str) -> tuple[int, str] | None:
    """(score, comment) when the first non-blank line is a single number 1-5, else None."""
    lines = text.strip().splitlines()
    if not lines or not SCORE_LINE.fullmatch(lines[0].strip()):
        return None
    return int(lines[0].strip()[0]), "\n".join(lines[1:]).strip()


def answer(case: Case, words: str) -> tuple[int, str] | None:
    """The rating in a customer's new words on a settled case that was sent the survey;
    None when the case was not asked or the words are not one."""
    if case.status not in sla.SETTLED or ASKED not in case.notices:
        return None
    return rating_of(words)


def rate(case: Case, score: int, comment: str, by: str, now: datetime) -> Rating:
    """The rating of a case whose customer was asked; ValueError when it cannot be one."""
    if ASKED not in case.notices:
        raise ValueError(f"case {case.reference} has not been sent a survey")
    if score not in SCORES:
        raise ValueError(f"a rating is a whole number from 1 to 5, not {score!r}")
    return Rating(case.id, score, comment.strip()[:4000], by, now)
