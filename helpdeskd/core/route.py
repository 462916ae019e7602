"""Where a message goes: onto a case, a new case, or nowhere; always with its reason (pure).

The store lookups are done by the caller and handed in (`Candidates`), so every decision here is
a plain function of its arguments and can be tested without a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from helpdeskd.config import Config
from helpdeskd.config.terms import FOREVER
from helpdeskd.core import calendar, sla, survey
from helpdeskd.core.classify import Facts
from helpdeskd.core.quotes import split_reply
from helpdeskd.model import Case, Inbound


@dataclass(frozen=True)
class Candidates:
    """What the store knows about the message's references."""

    tagged: Case | None  # the case named by the subject tag, if that reference exists
    threaded: Case | None  # the case one of In-Reply-To/References belongs to
    threaded_id: str | None = None  # the Message-ID that matched
    recent_new_cases: int = 0  # cases this sender opened in the last hour


@dataclass(frozen=True)
class Decision:
    action: str  # follow_up | reopen | new | reject | ignore | keep
    reason: str
    case: Case | None = None  # the case followed up or reopened
    related: str | None = None  # for a new case: the reference it names


def tag_pattern(prefix: str) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(prefix)}-(\d{{4}})-(\d{{5,}})(?!\d)")


def tags(subject: str, prefix: str) -> list[str]:
    """Every reference in a subject, whatever `Re:`/`AW:`/brackets a client put around it."""
    return [m.group(0) for m in tag_pattern(prefix).finditer(subject)]


def route(
    inbound: Inbound, facts: Facts, found: Candidates, config: Config, now: datetime
) -> Decision:
    """The subject tag first, then In-Reply-To/References. Either way only people who belong
    on the case join it: a tag is easy to forge and a Message-ID easy to pass on. Auto-generated
    mail may follow a thread (an out-of-office reply, a bounce): it is kept on the case and
    changes nothing."""
    if found.tagged is not None:
        case, how = found.tagged, f"tag {found.tagged.reference}"
        trusted = trusted_for(facts, inbound.from_addr, case)
    elif found.threaded is not None:
        case, how = found.threaded, f"in-reply-to <{found.threaded_id}>"
        trusted = bool(facts.auto) or trusted_for(facts, inbound.from_addr, case)
    else:
        return new_case(facts, found, config, None, text=words(inbound))
    if trusted:
        auto = f", auto-generated ({', '.join(facts.auto)})" if facts.auto else ""
        return follow_up(case, how + auto, facts, config, now, late_rating(inbound, case))
    reason = f"new: {how} from a sender not on the case"
    return new_case(facts, found, config, reason, related=case.reference, text=words(inbound))


def words(inbound: Inbound) -> str:
    return f"{inbound.subject}\n{inbound.text[:4000]}".lower()


def trusted_for(facts: Facts, address: str, case: Case) -> bool:
    """Our own people, the case's contacts and participants, and whoever of its customer may
    open cases: a sender who may not open a case (authorized_only) or was demoted joins none
    by naming it."""
    sender = facts.sender
    return (
        sender.role in ("engineer", "staff")
        or address in case.contacts
        or address in case.participants
        or address == case.opener
        or (sender.role == "customer" and sender.may_open and sender.customer == case.customer)
    )


def follow_up(
    case: Case, reason: str, facts: Facts, config: Config, now: datetime, rating: bool = False
) -> Decision:
    """A closed case reopens for its customer within the window; our own people can always
    answer on it (an engineer's late reply must still reach the customer), and so can a
    customer's answer to its survey, which reopens nothing."""
    if case.status != "closed" or facts.sender.role in ("engineer", "staff"):
        return Decision("follow_up", reason, case)
    if within_reopen_window(case, config, now):
        return Decision("reopen", f"{reason}, reopens closed case", case)
    if rating:
        return Decision("follow_up", f"{reason}, a rating of the closed case", case)
    return Decision(
        "new", f"new: {reason} names a case closed too long ago", related=case.reference
    )


def within_reopen_window(case: Case, config: Config, now: datetime) -> bool:
    """The plan's own window when it names one ("forever" reopens whatever the age), else the
    helpdesk's."""
    window = sla.plan_of(case, config).terms.reopen_window or config.policy.reopen_window
    if window == FOREVER:
        return True
    closed = case.closed_at or case.updated_at
    return now <= calendar.add(sla.calendar_of(case, config), closed, window)


def new_case(
    facts: Facts,
    found: Candidates,
    config: Config,
    reason: str | None,
    related: str | None = None,
    text: str = "",
) -> Decision:
    sender = facts.sender
    base = reason or f"new: {sender.reason}"
    if not sender.address:
        reason = "kept: no usable sender address (From, Reply-To, Sender, envelope sender)"
        return Decision("keep", reason, related=related)
    if facts.auto and not (facts.alert and sender.role == "customer" and sender.may_open):
        return Decision(
            "keep",
            f"kept: auto-generated ({', '.join(facts.auto)}), threads nowhere",
            related=related,
        )
    may_open = sender.may_open
    if sender.role == "customer" and not may_open:
        opens = unauthorized_opens(config, text)
        if opens is None:
            policy = config.policy.unauthorized
            return Decision(
                "unauthorized", f"unauthorized: {sender.reason}, policy {policy}", related=related
            )
        base += f", {opens}"
        may_open = True
    if not may_open:
        policy = config.policy.unknown_sender
        action = "reject" if policy == "reject" else "ignore"
        return Decision(action, f"{action}: {sender.reason}, policy {policy}", related=related)
    if found.recent_new_cases >= config.policy.new_cases_per_hour:
        return Decision(
            "keep",
            f"kept: {sender.address} opened {found.recent_new_cases} cases "
            "in the last hour (rate limit)",
            related=related,
        )
    if sender.role == "unknown":
        base += f", policy {config.policy.unknown_sender}"
    return Decision("new", base, related=related)


def unauthorized_opens(config: Config, text: str) -> str | None:
    """Why a sender of an authorized_only customer who is not on its list opens a case all
    the same (policy, or words saying production is down); None when they do not."""
    policy = config.policy
    if policy.unauthorized == "open":
        return "opened: policy unauthorized open"
    for word in policy.unauthorized_open_keywords:
        if re.search(rf"\b{re.escape(word)}\b", text):
            return f"opened: keyword {word!r}"
    return None


def late_rating(inbound: Inbound, case: Case) -> bool:
    """An answer to the survey of a closed case: it joins the case even after the reopen
    window, rather than opening a new case that says "5"."""
    if case.status != "closed":
        return False
    return survey.answer(case, split_reply(inbound.text).new) is not None
