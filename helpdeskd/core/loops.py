"""The loop breaker: every conversation on a case is bounded, human-looking or not (pure).

Headers catch the robots that say they are robots (core/autogen.py). This catches the others:
two mailboxes that answer every mail with a plain "Re:" and a quote, one a customer's, one an
engineer's out-of-office, would otherwise talk through the helpdesk for ever. On a case:

- more than `loop_messages` mails from one outside address within `loop_window`, or
- the same text (compared without case, punctuation and white space) `loop_repeats` times
  from any one address, an engineer's included,

pause the case: what comes in is still stored, but nothing is forwarded to the engineers and
nothing is relayed to the customer. The reason is an event on the case, and the team is told
once. A person resumes it: an engineer's `#reopen`, or an engineer's reply to mail sent since
the pause (the notice), unless that reply is itself repeated text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from helpdeskd.config import Policy
from helpdeskd.core.commands import Change, parse_commands
from helpdeskd.core.outcome import Context, Outcome, team
from helpdeskd.model import Case, Mail

PAUSED = "loop"  # in Case.notices: forwarding and relaying are paused
TOLD = "loop-told"  # in Case.notices: the team was told; again only after a #reopen
PAUSED_EVENT, RESUMED_EVENT = "loop", "loop-resumed"
CARRIED = frozenset({"follow_up", "relay"})  # the mail that carries a conversation across
_NOT_WORDS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Traffic:
    """What the store knows about the sender's side of the conversation."""

    earlier: tuple[str, ...]  # what the sender wrote on the case within the window, oldest first
    answers_pause: bool = False  # the message answers mail we sent since the case was paused


def text_key(text: str) -> str:
    """The same text written again, whatever its case, punctuation or line breaks."""
    words = _NOT_WORDS.sub(" ", text.lower()).strip()
    return hashlib.sha256(words.encode()).hexdigest() if words else ""


def suspicion(address: str, outside: bool, body: str, traffic: Traffic, policy: Policy) -> str:
    """Why this message looks like part of a loop; "" when it does not."""
    window = policy.loop_window
    count = len(traffic.earlier) + 1
    if outside and count > policy.loop_messages:
        return f"{count} mails from {address} on this case within {window}"
    key = text_key(body)
    same = 1 + sum(text_key(b) == key for b in traffic.earlier) if key else 0
    if same >= policy.loop_repeats:
        return f"the same text from {address} {same} times within {window}"
    return ""


def guard(ctx: Context, result: Outcome, traffic: Traffic) -> Outcome:
    """The outcome, with forwarding and relaying held back while the case is paused."""
    case = result.case
    if case is None or result.created:
        return result
    address = ctx.inbound.from_addr
    role = ctx.facts.sender.role
    body = result.record.body
    reason = suspicion(address, role not in ("engineer", "staff"), body, traffic, ctx.config.policy)
    if PAUSED in case.notices:
        if role == "engineer" and not ctx.facts.auto and _reopens(ctx):
            return _resume(result, case, f"{address} wrote #reopen", forget_notice=True)
        if role == "engineer" and not ctx.facts.auto and traffic.answers_pause and not reason:
            return _resume(result, case, f"{address} answered after the pause")
        return _held(ctx, result, "the case is paused by the loop breaker")
    if reason and any(m.kind in CARRIED for m in result.mails):
        return _pause(ctx, result, case, reason)
    return result


def _reopens(ctx: Context) -> bool:
    engineers = [e.email for e in ctx.config.engineers]
    parsed = parse_commands(ctx.inbound.text, sender=ctx.inbound.from_addr, engineers=engineers)
    return Change("status", "open") in parsed.changes


def _resume(result: Outcome, case: Case, why: str, *, forget_notice: bool = False) -> Outcome:
    gone = {PAUSED, TOLD} if forget_notice else {PAUSED}
    case = replace(case, notices=case.notices - gone)
    event = (RESUMED_EVENT, f"forwarding and relaying resumed: {why}")
    return replace(result, case=case, events=(*result.events, event))


def _pause(ctx: Context, result: Outcome, case: Case, reason: str) -> Outcome:
    detail = (
        f"{reason}: forwarding and relaying paused until an engineer acts "
        "(#reopen, or a reply to the notice)"
    )
    held = _held(ctx, result, "the loop breaker paused the case")
    case = replace(held.case, notices=held.case.notices | {PAUSED, TOLD})
    mails = held.mails
    if TOLD not in held.case.notices:
        mails = (*mails, notice(ctx, case, reason))
    return replace(held, case=case, events=(*held.events, (PAUSED_EVENT, detail)), mails=mails)


def _held(ctx: Context, result: Outcome, why: str) -> Outcome:
    """Nothing crosses over; an engineer's held words do not meet the customer's clocks."""
    case = result.case
    if any(m.kind == "relay" for m in result.mails):
        before = ctx.decision.case
        case = replace(
            case,
            clocks=before.clocks,
            first_response_at=before.first_response_at,
            status=before.status
            if case.status == "open" and before.status == "new"
            else case.status,
        )
    record = replace(
        result.record, route_reason=f"{result.record.route_reason}; not passed on: {why}"
    )
    mails = tuple(m for m in result.mails if m.kind not in CARRIED)
    return replace(result, case=case, record=record, mails=mails)


def notice(ctx: Context, case: Case, reason: str) -> Mail:
    return Mail(
        "loop_notice",
        "loop_notice",
        team(case, ctx.config),
        {"reason": reason},
        automatic="auto-generated",
        reply_to=ctx.config.helpdesk.address,
    )
