"""What a routed message does: the case's new state, its history, and the mail it causes (pure).

`outcome()` dispatches on the routing decision; each handler returns an `Outcome` that the store
applies in one transaction, outbox included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from helpdeskd.config import Config, Customer
from helpdeskd.core import (
    agreed,
    calendar,
    oncall,
    participants,
    reply_due,
    sla,
    survey,
    teamwork,
    terms,
)
from helpdeskd.core.autogen import bounced_message_ids, is_bounce
from helpdeskd.core.classify import Facts, plan_why
from helpdeskd.core.commands import (
    Change,
    CommandError,
    command_line,
    customer_asks_close,
    customer_asks_escalation,
    parse_commands,
    without_escalation_line,
)
from helpdeskd.core.quotes import split_reply
from helpdeskd.core.route import Decision
from helpdeskd.model import Attachment, Case, Inbound, Mail


@dataclass(frozen=True)
class Record:
    """How the inbound message itself is stored."""

    kind: str  # customer, engineer, note, auto, rejected, ignored, command_error, unverified,
    # rating, unauthorized
    route_reason: str
    body: str
    elided: str = ""
    auth: str = ""  # what the trusted Authentication-Results said of the sender


@dataclass(frozen=True)
class Outcome:
    case: Case | None
    created: bool
    record: Record
    events: tuple[tuple[str, str], ...] = ()  # (kind, detail) for the case history
    mails: tuple[Mail, ...] = ()
    bounced: tuple[str, ...] = ()  # Message-IDs of our own mail that bounced
    rating: survey.Rating | None = None  # the customer's answer to the survey
    allowlist: tuple[str, ...] = ()  # "add ADDRESS", ... for the case's customer (#allow)
    merging: tuple[Change, ...] = ()  # #merge, #unmerge, #split: carried out by the store
    reminders: tuple[teamwork.Reminder, ...] = ()  # #remind
    minutes: int = 0  # time the engineer spent (#time)
    paged: str | None = None  # the person on call paged for a new case
    answered: bool = False  # an engineer answered the case: its pages are acknowledged


@dataclass(frozen=True)
class Context:
    inbound: Inbound
    facts: Facts
    decision: Decision
    config: Config
    now: datetime
    fair_use: str = ""  # why the sender's customer is flagged for fair use this month, if it is


def outcome(ctx: Context, reference: str | None = None) -> Outcome:
    """`reference` is the one the store allocated, for a decision that opens a case."""
    return reply_given(ctx, dispatch(ctx, reference))


def dispatch(ctx: Context, reference: str | None) -> Outcome:
    action = ctx.decision.action
    if action == "new":
        return opened(ctx, reference)
    if action in ("reject", "ignore", "keep"):
        return unrouted(ctx)
    if action == "unauthorized":
        return unauthorized(ctx)
    case = ctx.decision.case
    if ctx.facts.auto:
        return auto_on_case(ctx, case)
    if not ctx.facts.sender.proven:
        return unverified_note(ctx, case)
    if ctx.facts.sender.role == "engineer":
        return engineer_reply(ctx, case)
    if ctx.facts.sender.role == "staff":
        return staff_reply(ctx, case)
    return customer_reply(ctx, case)


def reply_given(ctx: Context, result: Outcome) -> Outcome:
    """Whoever owed the customer a reply (reply_due) and now wrote on the case, proven and by
    hand, owes it no more."""
    if result.case is None or ctx.facts.auto or not ctx.facts.sender.proven:
        return result
    case = reply_due.answered(result.case, ctx.inbound.from_addr)
    if case is None:
        return result
    event = ("reply_due", f"answered by {ctx.inbound.from_addr}")
    return replace(result, case=case, events=(*result.events, event))


# in Case.notices: the opening mail could have been proven and was not, so the opener's word on
# the case changes no access (#allow) until a proven mail of theirs follows on it
UNPROVEN_OPENER = "opener-unproven"


# -- a new case -----------------------------------------------------------------------------


def opened(ctx: Context, reference: str) -> Outcome:
    inbound, facts, now = ctx.inbound, ctx.facts, ctx.now
    case = Case(
        reference=reference,
        status="new",
        priority=facts.priority,
        plan=facts.sender.plan,
        customer=facts.sender.customer,
        subject=inbound.subject or "(no subject)",
        opener=inbound.from_addr,
        opened_at=now,
        updated_at=now,
        contacts=(inbound.from_addr,),
        related=ctx.decision.related,
    )
    if facts.sender.authenticated is False:
        case = replace(case, notices=frozenset({UNPROVEN_OPENER}))
    if not facts.auto:
        case = participants.joined(case, inbound, ctx.config)
    case = sla.start_clocks(case, ctx.config)
    events = [("opened", f"priority {facts.priority} ({facts.priority_reason}), plan {case.plan}")]
    if why := served_by(ctx):
        events.append(("plan", why))
    if case.related:
        events.append(("related", f"names {case.related}"))
    mails = [notification(ctx, case)]
    if not facts.auto:
        mails.insert(0, acknowledgement(ctx, case))
    paged = None
    if oncall.pages(case, ctx.config, now):
        case, paged, event, paging = on_call(ctx.config, case, now)
        events.append(event)
        mails += paging
    kind = "auto" if facts.auto else "customer"
    return Outcome(case, True, record(ctx, kind), tuple(events), tuple(mails), paged=paged)


def on_call(
    config: Config, case: Case, now: datetime
) -> tuple[Case, str | None, tuple[str, str], tuple[Mail, ...]]:
    """A paging case goes to the person on call (the case, who was paged, the event, the
    mails); with nobody on call, a case not escalated yet climbs its ladder at once, as when
    nobody answers a page."""
    paged = oncall.paged(config, now, 0)
    if paged:
        page = oncall.page_mail(config, paged, 0)
        return case, paged, ("page", f"{paged} paged (on call)"), (page,)
    if case.escalation_level:
        return case, None, ("page", "nobody is on call; the case is escalated already"), ()
    case, event, mails = climbed(config, case, "nobody is on call", now)
    return case, None, event, mails


def climbed(
    config: Config, case: Case, why: str, now: datetime
) -> tuple[Case, tuple[str, str], tuple[Mail, ...]]:
    """One level up the case's ladder for the on-call rota's `why`; at its top, only said."""
    if case.escalation_level >= len(sla.escalation_of(case, config)):
        return case, ("page", f"{why}; the case is at the top of its ladder"), ()
    level = case.escalation_level + 1
    case = sla.escalated(replace(case, escalation_level=level), config, level, now)
    event = ("escalate", f"level {level}: {why}")
    return case, event, escalation_mails(config, case, level, f"by the on-call rota: {why}")


def acknowledgement(ctx: Context, case: Case) -> Mail:
    return Mail(
        "acknowledgement",
        "acknowledgement",
        (ctx.inbound.from_addr,),
        {
            "first_response": sla.promised_reply(case, ctx.config),
            "plan_why": served_by(ctx),
            "after_hours_note": terms.after_hours_note(case, ctx.config, ctx.now),
            "definition": terms.definitions(case.plan, ctx.config).get(case.priority),
        },
        automatic="auto-replied",
    )


def served_by(ctx: Context) -> str:
    customer = customer_named(ctx.config, ctx.facts.sender.customer)
    return plan_why(customer, ctx.config, ctx.now.date())


def forwarded(ctx: Context) -> tuple[tuple[Attachment, ...], tuple[Attachment, ...]]:
    """The customer's attachments that fit in an engineer's copy, and those only named there."""
    kept, omitted, total = [], [], 0
    for attachment in ctx.inbound.attachments:
        total += attachment.size
        fits = total <= ctx.config.policy.forward_attachments_max
        (kept if fits else omitted).append(attachment)
    return tuple(kept), tuple(omitted)


def notification(ctx: Context, case: Case) -> Mail:
    """New case to the engineers: the customer's words and what the SLA asks of them."""
    kept, omitted = forwarded(ctx)
    return Mail(
        "notification",
        "notification",
        team(case, ctx.config),
        {
            "body": ctx.inbound.text,
            "sender": ctx.inbound.from_addr,
            "sender_name": ctx.inbound.from_name,
            "omitted": omitted,
            "demoted": ctx.facts.sender.demoted,
            "external": participants.external(case, ctx.config),
            "fair_use": ctx.fair_use,
        },
        automatic="auto-generated",
        reply_to=ctx.config.helpdesk.address,
        attachments=kept,
        threaded=False,
    )


def team(case: Case, config: Config) -> tuple[str, ...]:
    """The assignee, else the engineers of the case's tier (the plan's notification tier until
    it is handed to another), else everyone."""
    if case.assignee:
        return (case.assignee,)
    tier = sla.tier_of(case, config)
    found = tuple(e.email for e in config.engineers if e.tier == tier)
    return found or tuple(e.email for e in config.engineers) or config.helpdesk.admins


def record(ctx: Context, kind: str, body: str | None = None, elided: str = "") -> Record:
    """The route reason says when the sender was demoted, also where it joined a case."""
    text = ctx.inbound.text if body is None else body
    reason, demoted = ctx.decision.reason, ctx.facts.sender.demoted
    if demoted and demoted not in reason:
        reason = f"{reason}, sender {demoted}"
    return Record(kind, reason, text, elided, ctx.facts.sender.proof)


# -- no case --------------------------------------------------------------------------------


def unrouted(ctx: Context) -> Outcome:
    action = ctx.decision.action
    kind = {
        "reject": "rejected",
        "ignore": "ignored",
        "keep": "auto" if ctx.facts.auto else "kept",
    }[action]
    mails = ()
    if action == "reject":
        mails = (
            Mail(
                "reject_notice",
                "reject_notice",
                (ctx.inbound.from_addr,),
                {"subject": ctx.inbound.subject},
                automatic="auto-replied",
                threaded=False,
            ),
        )
    return Outcome(None, False, record(ctx, kind), mails=mails, bounced=_bounced(ctx))


def _bounced(ctx: Context) -> tuple[str, ...]:
    return bounced_message_ids(ctx.inbound) if is_bounce(ctx.inbound) else ()


def auto_on_case(ctx: Context, case: Case) -> Outcome:
    """Auto-replies and bounces are kept on the case but change nothing and answer nothing;
    our own people's (an engineer's out-of-office) are kept as internal notes."""
    kind = "note" if ctx.facts.sender.role in ("engineer", "staff") else "auto"
    return Outcome(
        replace(case, updated_at=ctx.now), False, record(ctx, kind), bounced=_bounced(ctx)
    )


# -- the customer writes again --------------------------------------------------------------


def customer_reply(ctx: Context, case: Case) -> Outcome:
    reply = split_reply(ctx.inbound.text)
    rated = survey.answer(case, reply.new)
    if rated:
        return rating_reply(ctx, case, *rated)
    sender = ctx.inbound.from_addr
    # a participant answering stays a participant: in Cc, not the requester
    new = sender not in (*case.contacts, *case.participants)
    contacts = case.contacts + ((sender,) if new else ())
    before = case
    case = participants.joined(case, ctx.inbound, ctx.config)
    case = replace(
        case,
        contacts=contacts,
        updated_at=ctx.now,
        notices=frozenset(n for n in case.notices if not n.startswith("closing")),
    )
    events = []
    if ctx.decision.action == "reopen" or case.status in ("waiting", sla.PENDING_CLOSE, "resolved"):
        case, events = _reopen(case, ctx, before.status)
    rec = record(ctx, "customer", reply.new, reply.elided)
    asks_close = customer_asks_close(reply.new)
    not_theirs = terms.customer_may_not_close(ctx, before) if asks_close else None
    if asks_close and ctx.facts.sender.authenticated is not False and not not_theirs:
        return close_by_customer(ctx, case, rec, events)
    if ctx.facts.sender.authenticated and ctx.inbound.from_addr == case.opener:
        case = replace(case, notices=case.notices - {UNPROVEN_OPENER})
    mails = []
    if not_theirs:
        refused, answer = terms.close_not_yours(ctx, case, not_theirs, local_day(ctx))
        events.append(refused)
        mails.append(answer)
    elif asks_close:
        refused, answer = close_refused(ctx, case)
        events.append(refused)
        mails.append(answer)
    if before.status in sla.SETTLED:
        mails.append(milestone(ctx.config, case, "reopened", "customer")[1])
        mails.extend(agreed.follow(ctx.config, case, "reopened"))
    reason = customer_asks_escalation(reply.new)
    if reason is not None and may_escalate(ctx, before):
        case, asked, answer = escalation_request(ctx, case, reason, reply.new)
        events.append(asked)
        mails.extend(answer)
    kept, omitted = forwarded(ctx)
    mail = Mail(
        "follow_up",
        "follow_up",
        team(case, ctx.config),
        {
            "body": reply.new,
            "sender": ctx.inbound.from_addr,
            "previous_status": before.status,
            "omitted": omitted,
        },
        reply_to=ctx.config.helpdesk.address,
        attachments=kept,
    )
    return Outcome(case, False, rec, tuple(events), (mail, *mails))


def _reopen(case: Case, ctx: Context, was: str) -> tuple[Case, list]:
    case = replace(case, status="open", closed_at=None)
    if was in sla.SETTLED:
        case = sla.reopen(case, ctx.config, ctx.now)
    else:
        case = sla.resume(case, ctx.config, ctx.now)
    return case, [("status", f"{was} -> open (customer replied)")]


def close_by_customer(ctx: Context, case: Case, rec: Record, events: list) -> Outcome:
    case = sla.settle(replace(case, status="closed", closed_at=ctx.now), ctx.now)
    events = [*events, ("status", "closed at the customer's request (#close)")]
    case, closed = milestone(ctx.config, case, "closed", "customer")
    mails = (
        closed,
        *agreed.follow(ctx.config, case, "closed"),
        Mail(
            "follow_up",
            "follow_up",
            team(case, ctx.config),
            {"body": rec.body, "sender": ctx.inbound.from_addr, "previous_status": "closed"},
            reply_to=ctx.config.helpdesk.address,
        ),
    )
    return Outcome(case, False, rec, tuple(events), mails)


def close_refused(ctx: Context, case: Case) -> tuple[tuple[str, str], Mail]:
    """A #close that could be proven and was not: anyone can write a From line, so the case
    stays open, and the address it names is told why (once a day), as an engineer is."""
    sender = ctx.facts.sender
    answer = Mail(
        "close_refused",
        "close_refused",
        (sender.address,),
        {"proof": sender.proof},
        automatic="auto-replied",
        once=f"close_refused:{case.reference}:{sender.address}:{local_day(ctx)}",
    )
    why = f"#close from {sender.address} not applied: mail not proven ({sender.proof})"
    return ("close_refused", why), answer


# -- an engineer answers --------------------------------------------------------------------


def engineer_reply(ctx: Context, case: Case) -> Outcome:
    engineers = [e.email for e in ctx.config.engineers]
    parsed = parse_commands(
        ctx.inbound.text,
        sender=ctx.inbound.from_addr,
        engineers=engineers,
        ours=ctx.config.staff,
    )
    allow = tuple(c.value for c in parsed.changes if c.kind == "allow")
    errors = (
        parsed.errors
        or stray_notes(parsed.body)
        or allow_errors(ctx, case, allow)
        or agreed.errors(ctx, case, parsed.changes)
        or tuple(terms.engineer_errors(ctx, case, parsed.changes))
        or teamwork.errors(ctx, case, parsed.changes)
    )
    if errors:
        return command_error(ctx, case, errors)
    reply = split_reply(parsed.body)
    kept = {
        "reminders": teamwork.planned(ctx, case, parsed.changes),
        "minutes": teamwork.spent(parsed.changes),
        "answered": True,
    }
    case, events, mails = apply_changes(ctx, case, parsed.changes)
    if allow:
        mails.append(allowlist_confirmation(ctx, case, allow))
    merging = tuple(c for c in parsed.changes if c.kind in MERGING)
    if any(c.kind == "note" for c in parsed.changes):
        # a noted #plan stays inside: the customer does not get it
        mails = [m for m in mails if m.kind != "action_plan"]
        return Outcome(
            case,
            False,
            record(ctx, "note", reply.new, reply.elided),
            tuple(events),
            (*mails, note_mail(ctx, case, reply.new)),
            merging=merging,
            **kept,
        )
    if reply.new.strip():
        case, relay = relay_to_customer(ctx, case, reply.new)
        mails.insert(0, relay)
    return Outcome(
        case,
        False,
        record(ctx, "engineer", reply.new, reply.elided),
        tuple(events),
        tuple(mails),
        allowlist=allow,
        merging=merging,
        **kept,
    )


def stray_notes(body: str) -> tuple[CommandError, ...]:
    """A `#note` line below the text was meant for the engineers: sending the text to the
    customer would be the worst reading of it."""
    return tuple(
        CommandError(line.strip(), number, "#note goes on the first line; nothing was sent")
        for number, line in enumerate(body.splitlines(), start=1)
        if line.strip().lower() == "#note"
    )


def staff_reply(ctx: Context, case: Case) -> Outcome:
    """A manager answering an escalation is not an engineer: what they write stays inside,
    as a note to the engineers, and never reaches the customer by accident."""
    reply = split_reply(ctx.inbound.text)
    events, mails = (), ()
    decided = terms.decision(ctx, case, reply.new)
    if decided:
        # the service manager closes or keeps a case pending close
        case, event, mails = _status(ctx, case, decided)
        events = (event,)
    return Outcome(
        replace(case, updated_at=ctx.now),
        False,
        record(ctx, "note", reply.new, reply.elided),
        events,
        (*mails, note_mail(ctx, case, reply.new)),
    )


def unverified_note(ctx: Context, case: Case) -> Outcome:
    """Mail in an engineer's or a manager's name that nothing proves: anyone can write a From
    line. It is kept on the case for the record, and applies, relays and forwards nothing; the
    real address is told why (the pipeline sends that at most once a day)."""
    sender = ctx.facts.sender
    notice = Mail(
        "unverified_notice",
        "unverified_notice",
        (sender.address,),
        {"original_subject": ctx.inbound.subject, "proof": sender.proof},
        automatic="auto-replied",
        threaded=False,
    )
    event = ("unverified", f"mail from {sender.address} not proven ({sender.proof}): not applied")
    return Outcome(case, False, record(ctx, "unverified"), (event,), (notice,))


def note_mail(ctx: Context, case: Case, body: str) -> Mail:
    """An internal note goes to the engineers, never to the customer."""
    return Mail(
        "note",
        "note",
        _other_engineers(ctx, case),
        {"body": body},
        reply_to=ctx.config.helpdesk.address,
    )


def _other_engineers(ctx: Context, case: Case) -> tuple[str, ...]:
    everyone = {*team(case, ctx.config), *(e.email for e in ctx.config.engineers)}
    return tuple(sorted(everyone - {ctx.inbound.from_addr})) or (ctx.inbound.from_addr,)


def relay_to_customer(ctx: Context, case: Case, body: str) -> tuple[Case, Mail]:
    """The engineer's words go out from the support address; the first one meets the
    first-response clock."""
    engineer = ctx.config.engineer(ctx.inbound.from_addr)
    mail = Mail(
        "relay",
        "relay",
        case.contacts,
        {"body": body, "engineer": engineer.name},
        attachments=ctx.inbound.attachments,
        cc=case.participants,  # the engineer's own Cc stays theirs: never copied out
    )
    case = sla.stop(case, "reply", ctx.now)[0]
    if case.first_response_at is None:
        case = replace(case, first_response_at=ctx.now)
    if case.status == "new":
        case = replace(case, status="open")
    return case, mail


def command_error(ctx: Context, case: Case, errors) -> Outcome:
    mail = Mail(
        "command_error",
        "command_error",
        (ctx.inbound.from_addr,),
        {"errors": errors, "original_subject": ctx.inbound.subject},
        automatic="auto-replied",
    )
    detail = "; ".join(f"line {e.line_number}: {e.reason}" for e in errors)
    return Outcome(case, False, record(ctx, "command_error"), (("command_error", detail),), (mail,))


def apply_changes(ctx: Context, case: Case, changes) -> tuple[Case, list, list]:
    events: list = []
    mails: list = []
    for change in changes:
        case, event, mail = CHANGES[change.kind](ctx, case, change.value)
        if event:
            events.append(event)
        mails.extend(mail)
    return replace(case, updated_at=ctx.now), events, mails


def _priority(ctx: Context, case: Case, value: str):
    if value == case.priority:
        return case, None, ()
    changed = sla.start_clocks(replace(case, priority=value), ctx.config)
    return changed, ("priority", f"{case.priority} -> {value} by {ctx.inbound.from_addr}"), ()


def _assign(ctx: Context, case: Case, value: str):
    return replace(case, assignee=value), ("assign", f"{value} by {ctx.inbound.from_addr}"), ()


def _status(ctx: Context, case: Case, value: str):
    if value == case.status:
        return case, None, ()
    changed = replace(case, status=value)
    if case.status in sla.SETTLED and value not in sla.SETTLED:
        changed = sla.reopen(changed, ctx.config, ctx.now)
    elif case.status in ("waiting", sla.PENDING_CLOSE):
        changed = sla.resume(changed, ctx.config, ctx.now)
    if value == "waiting":
        changed = sla.pause(changed, ctx.now)
    elif value in sla.SETTLED:
        changed = sla.settle(changed, ctx.now)
    changed = replace(
        changed,
        closed_at=ctx.now if value == "closed" else None,
        notices=frozenset(n for n in changed.notices if not n.startswith("closing")),
    )
    mails = ()
    kind = "reopened" if case.status in sla.SETTLED and value == "open" else value
    if kind in MILESTONES:
        # each milestone tells the customer, with or without words of the engineer's
        changed, mail = milestone(ctx.config, changed, kind, "engineer")
        mails = (mail, *agreed.follow(ctx.config, changed, kind))
    return changed, ("status", f"{case.status} -> {value} by {ctx.inbound.from_addr}"), mails


def _escalate(ctx: Context, case: Case, value: None):
    level = min(case.escalation_level + 1, 3)
    changed = sla.escalated(replace(case, escalation_level=level), ctx.config, level, ctx.now)
    mails = escalation_mails(ctx.config, changed, level, f"by {ctx.inbound.from_addr}")
    return changed, ("escalate", f"level {level} by {ctx.inbound.from_addr}"), mails


def escalation_mails(
    config: Config, case: Case, level: int, why: str, words: str = ""
) -> tuple[Mail, ...]:
    """Notify the level's people and tell the customer their case was escalated, and to whom.
    `words` are the customer's, when the customer asked for it."""
    notify = sla.level_notify(case, config, level)
    name = level_name(config, level, case)
    inside = Mail(
        "escalation",
        "escalation",
        notify or team(case, config),
        {"level": level, "why": why, "customer_words": words},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
    )
    outside = Mail(
        "escalated",
        "escalated_customer",
        case.contacts,
        {"level": level, "name": name, "requested": bool(words)},
        automatic="auto-generated",
    )
    return (inside, outside)


def level_name(config: Config, level: int, case: Case | None = None) -> str:
    """How a customer hears of a level: its configured name, else its number; never the
    private addresses behind it."""
    levels = sla.escalation_of(case, config) if case else config.escalation
    named = levels[level - 1].name if 0 < level <= len(levels) else None
    return named or f"escalation level {level}"


def _note(ctx: Context, case: Case, value: None):
    return case, None, ()


def _allow(ctx: Context, case: Case, value: str):
    return case, ("allowlist", f"{value} for {case.customer} by {ctx.inbound.from_addr}"), ()


def _merge(ctx: Context, case: Case, value: str):
    """The folded case is closed, its clocks settled, and names the case it went into; its
    messages and history move there when the store carries the merge out."""
    folded = replace(case, status="closed", closed_at=ctx.now, merged_into=value)
    return sla.settle(folded, ctx.now), ("merged", f"into {value} by {ctx.inbound.from_addr}"), ()


def _carried_by_store(ctx: Context, case: Case, value: None):
    return case, None, ()


MERGING = ("merge", "unmerge", "split")


def _cc(ctx: Context, case: Case, value: str):
    event = ("participants", f"{value} by {ctx.inbound.from_addr}")
    return participants.changed(case, value), event, ()


CHANGES = {
    "priority": _priority,
    "assign": _assign,
    "status": _status,
    "escalate": _escalate,
    "note": _note,
    "allow": _allow,
    "cc": _cc,
    "merge": _merge,
    "unmerge": _carried_by_store,
    "split": _carried_by_store,
    **agreed.CHANGES,
    "category": terms.category,
    **teamwork.CHANGES,
}


# -- the customer's side: milestones, survey, escalation on request, contacts ---------------

MILESTONES = ("resolved", "closed", "reopened")
AUTOMATIC_BY = {"customer": "auto-replied", "timeout": "auto-generated"}


def milestone(config: Config, case: Case, kind: str, by: str) -> tuple[Case, Mail]:
    """The customer's mail for a resolved, closed or reopened case, worded for its cause
    (engineer, customer, timeout); the first settling of a case with a survey plan asks for a
    rating. Returns the case (its survey recorded) and the mail."""
    ask = kind != "reopened" and survey.should_ask(case, config, by)
    if ask:
        case = survey.asked(case)
    context = {"by": by, "survey": ask}
    return case, Mail(kind, kind, case.contacts, context, automatic=AUTOMATIC_BY.get(by))


def rating_reply(ctx: Context, case: Case, score: int, comment: str) -> Outcome:
    """A survey answer: recorded, not a follow-up, and the case stays as it is."""
    rating = survey.rate(case, score, comment, ctx.inbound.from_addr, ctx.now)
    # how the message found the case, without the "reopens" the route foresaw for a reply
    found_by = ctx.decision.reason.split(",")[0]
    rec = replace(record(ctx, "rating"), route_reason=f"{found_by}, a rating")
    return Outcome(case, False, rec, rating=rating)  # the store records it in the history


def may_escalate(ctx: Context, case: Case) -> bool:
    """The case's customer: its opener, an address on it, or one its customer lets open cases."""
    sender = ctx.facts.sender
    return (
        ctx.inbound.from_addr in (case.opener, *case.contacts)
        or (sender.role == "customer" and sender.may_open and sender.customer == case.customer)
    ) and sender.role not in ("engineer", "staff")


ESCALATION_REQUEST = "escalation_request@"


def escalation_request(
    ctx: Context, case: Case, reason: str, text: str
) -> tuple[Case, tuple[str, str], tuple[Mail, ...]]:
    """`#escalate` from the customer: one level up and that level told, at most once per
    `escalation_request_interval`; else a polite answer and no new level."""
    config, now = ctx.config, ctx.now
    top = max(len(sla.escalation_of(case, config)), 1)
    again_at = next_request_at(case, config)
    answer = {
        "level": case.escalation_level,
        "name": level_name(config, case.escalation_level, case),
    }
    if again_at is not None and now < again_at:
        mail = _request_answer(ctx, {**answer, "refused": "too_soon", "again_at": again_at})
        return case, ("escalation_request", "refused: asked again too soon"), (mail,)
    if case.escalation_level >= top:
        mail = _request_answer(ctx, {**answer, "refused": "top", "again_at": None})
        return case, ("escalation_request", "refused: already at the top level"), (mail,)
    level = case.escalation_level + 1
    notices = {n for n in case.notices if not n.startswith(ESCALATION_REQUEST)}
    case = replace(
        case,
        escalation_level=level,
        notices=frozenset({*notices, ESCALATION_REQUEST + sla.stamp(now)}),
    )
    case = sla.escalated(case, config, level, now)
    why = f"at the request of the customer {ctx.inbound.from_addr}" + (
        f": {reason}" if reason else ""
    )
    words = without_escalation_line(text) or reason or "(no words besides #escalate)"
    mails = escalation_mails(config, case, level, why, words)
    case, owes = reply_owed(case, config, level, now)
    return case, ("escalate", f"level {level} {why}{owes}"), mails


def reply_owed(case: Case, config: Config, level: int, now: datetime) -> tuple[Case, str]:
    """The level's first address owes the customer a written reply (XMPro §5)."""
    first = sla.level_notify(case, config, level)[:1]
    if not first:
        return case, ""
    return reply_due.opened(case, first[0], sla.stamp(now)), f"; a reply is due from {first[0]}"


def next_request_at(case: Case, config: Config) -> datetime | None:
    """When the customer may ask again: the last request plus the interval, in working time."""
    found = [
        n.removeprefix(ESCALATION_REQUEST) for n in case.notices if n.startswith(ESCALATION_REQUEST)
    ]
    if not found:
        return None
    last = datetime.fromisoformat(max(found))
    return calendar.add(
        sla.calendar_of(case, config), last, config.policy.escalation_request_interval
    )


def _request_answer(ctx: Context, context: dict) -> Mail:
    return Mail(
        "escalation_request",
        "escalation_request",
        (ctx.inbound.from_addr,),
        context,
        automatic="auto-replied",
    )


def unauthorized(ctx: Context) -> Outcome:
    """Someone of an authorized_only customer's domain who may not open cases: a polite notice
    to them and, by policy, their mail to the primary contact to decide; each once a day."""
    sender, config = ctx.facts.sender, ctx.config
    customer = customer_named(config, sender.customer)
    primary = customer.primary_contact if customer else None
    day = local_day(ctx)
    address = ctx.inbound.from_addr
    context = {"subject": ctx.inbound.subject, "customer": sender.customer, "primary": primary}
    mails = [
        Mail(
            "unauthorized_notice",
            "unauthorized_notice",
            (address,),
            context,
            automatic="auto-replied",
            threaded=False,
            once=f"unauthorized_notice:{address}:{day}",
        )
    ]
    if primary and config.policy.unauthorized == "forward":
        kept, omitted = forwarded(ctx)
        mails.append(
            Mail(
                "unauthorized_forward",
                "unauthorized_forward",
                (primary,),
                {**context, "sender": address, "body": ctx.inbound.text, "omitted": omitted},
                automatic="auto-generated",
                attachments=kept,
                threaded=False,
                once=f"unauthorized_forward:{address}:{day}",
            )
        )
    return Outcome(None, False, record(ctx, "unauthorized"), mails=tuple(mails))


def local_day(ctx: Context) -> str:
    """Today in the helpdesk's zone: the key of mail that goes at most once a day."""
    return ctx.now.astimezone(ZoneInfo(ctx.config.helpdesk.timezone)).date().isoformat()


def customer_named(config: Config, name: str | None) -> Customer | None:
    return next((c for c in config.customers if c.name == name), None)


def allow_errors(ctx: Context, case: Case, changes: tuple[str, ...]) -> tuple[CommandError, ...]:
    """`#allow` only on a case its customer's primary contact opened, and only when the
    allow-list file is configured."""
    if not changes:
        return ()
    customer = customer_named(ctx.config, case.customer)
    if ctx.config.helpdesk.allowlist is None:
        why = "no allow-list file is configured ([helpdesk] allowlist); nothing was changed"
    elif customer is None or not customer.primary_contact:
        why = f"case {case.reference} has no customer with a primary contact to ask for it"
    elif case.opener != customer.primary_contact:
        why = (
            f"only a case opened by {customer.name}'s primary contact can change its allow-list; "
            f"{case.reference} was opened by {case.opener}"
        )
    elif UNPROVEN_OPENER in case.notices:
        why = (
            f"the mail that opened {case.reference} was not proven to come from "
            f"{case.opener}: ask them to write again from a mail server that signs its mail "
            "(DKIM) or passes DMARC; nothing was changed"
        )
    else:
        return ()
    line, number = allow_line(ctx.inbound.text)
    return (CommandError(line, number, why),)


def allow_line(text: str) -> tuple[str, int]:
    return command_line(text, "allow")


def allowlist_confirmation(ctx: Context, case: Case, changes: tuple[str, ...]) -> Mail:
    customer = customer_named(ctx.config, case.customer)
    assert customer is not None  # allow_errors refused the changes otherwise
    return Mail(
        "allowlist_changed",
        "allowlist_changed",
        (customer.primary_contact,),
        {"changes": [tuple(c.split(" ", 1)) for c in changes], "customer": customer.name},
        automatic="auto-generated",
    )
