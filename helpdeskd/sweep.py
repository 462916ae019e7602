"""One scheduler pass at `now`: what is due is done (or, dry, only listed).

The sweep reads only the cases whose indexed `next_due` has come (`Cases.due`), so it costs what
is due, not what is open. Each case is settled in its own transaction: its notices recorded, its
mail queued and its next `next_due` written together, so a second sweep at the same `now`, or a
crash half-way, never sends anything twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from helpdeskd import customer_notices, monthly
from helpdeskd.adapters import webhooks
from helpdeskd.adapters.store import Cases, Pages, Reminders, Store
from helpdeskd.config import Config
from helpdeskd.core import agreed, calendar, oncall, reply_due, sla, teamwork, terms
from helpdeskd.core.outcome import climbed, escalation_mails, milestone, on_call, team
from helpdeskd.model import Case, Mail
from helpdeskd.pipeline import queue_mail

log = structlog.get_logger("helpdeskd.sweep")

BATCH = 500  # cases read per query: memory stays flat however many fell due
GROUP = 25  # cases settled in one transaction, a savepoint each: one fsync, a short lock


@dataclass(frozen=True)
class Step:
    """One action done on a case: what the history says and what mail it sends."""

    action: sla.Action
    event: tuple[str, str]
    mails: tuple[Mail, ...]


def run(
    store: Store,
    config: Config,
    now: datetime,
    *,
    dry_run: bool = False,
    max_cases: int | None = None,
) -> list[dict]:
    """Settle every case that is due at `now` (or the first `max_cases` of them); returns one
    entry per action (SPEC §9)."""
    done: list[dict] = []
    due = itertools.islice(due_cases(Cases(store), now, dry_run), max_cases)
    more = True
    while more:
        # the due query runs lazily, between settled cases, inside the open transaction
        with nullcontext() if dry_run else store.transaction():
            more = False
            for count, case in enumerate(due, start=1):
                done += settle_logged(store, config, case, now, dry_run)
                if count == GROUP:
                    more = True
                    break
    done += reminders(store, config, now, dry_run)
    done += unanswered_pages(store, config, now, dry_run)
    try:
        done += monthly.run(store, config, now, dry_run=dry_run)
    except Exception:
        # the cases are settled; the reports are tried again at the next sweep
        log.exception("monthly reports failed")
    try:
        done += customer_notices.run(store, config, now, dry_run=dry_run)
    except Exception:
        log.exception("customer notices failed")  # tried again at the next sweep
    return done


def settle_logged(store: Store, config: Config, case: Case, now: datetime, dry_run: bool) -> list:
    try:
        return preview(case, config, now) if dry_run else sweep_case(store, config, case.id, now)
    except Exception:
        # one broken case (a template error, a plan gone from the config) must not hold up
        # the others; it stays due, so the next sweep tries it again
        log.exception("sweep failed", reference=case.reference)
        return []


def due_cases(cases: Cases, now: datetime, dry_run: bool) -> Iterator[Case]:
    """Due cases in batches. A settled case leaves the index (its next_due moves past now), so
    each query finds the next ones; `seen` stops a case that would not leave it from looping."""
    seen: set[int] = set()
    while True:
        # a dry run writes nothing, so nothing would leave the index: read it all at once
        batch = cases.due(now, None if dry_run else BATCH)
        fresh = [c for c in batch if c.id not in seen]
        seen.update(c.id for c in fresh)
        yield from fresh
        if dry_run or len(batch) < BATCH or not fresh:
            return


def preview(case: Case, config: Config, now: datetime) -> list[dict]:
    _, steps = settle(case, config, now)
    return [entry(case, step, [a for m in step.mails for a in m.to]) for step in steps]


def sweep_case(store: Store, config: Config, case_id: int, now: datetime) -> list[dict]:
    cases = Cases(store)
    with store.transaction():
        # read again inside the transaction: a reply may have changed the case since the query
        before = cases.by_id(case_id)
        case, steps = settle(before, config, now)
        cases.save(case, sla.next_due(case, config, now))
        thread = cases.thread_ids(case.id)
        done = [queue_step(store, config, case, step, thread, now) for step in steps]
        webhooks.announce(store, config, before, case, [s.event[0] for s in steps], now)
        if any(step.action.kind == "warn" for step in steps):
            done += warning_page(store, config, case, now)
    for item in done:
        log.info("swept", reference=item["reference"], action=item["action"], to=item["to"])
    return done


def queue_step(
    store: Store, config: Config, case: Case, step: Step, thread: list[str], now: datetime
) -> dict:
    Cases(store).add_event(case.id, now, *step.event)
    queued = [queue_mail(store, config, mail, case, thread, None, now) for mail in step.mails]
    return entry(case, step, [a for q in queued if q for a in q["to"]])


def entry(case: Case, step: Step, to: list[str]) -> dict:
    action = step.action
    found = {
        "reference": case.reference,
        "action": action.kind,
        "to": to,
        "due_at": sla.stamp(action.due_at),
        "detail": step.event[1],
    }
    if action.clocks:
        found["clocks"] = list(action.clocks)
    if action.level:
        found["level"] = action.level
    return found


def reminders(store: Store, config: Config, now: datetime, dry_run: bool) -> list[dict]:
    """Reminders whose moment has come: each mailed once, marked sent with its mail queued."""
    done = []
    for row in Reminders(store).due(now):
        case = Cases(store).by_id(row["case_id"])
        found = {"reference": case.reference, "action": "remind", "to": [row["recipient"]]}
        found |= {"due_at": row["due_at"], "detail": f"reminder set by {row['set_by']}"}
        if not dry_run:
            with store.transaction():
                if not Reminders(store).claim(row["id"], now):
                    continue
                Cases(store).add_event(case.id, now, "reminder", f"sent to {row['recipient']}")
                mail = teamwork.reminder_mail(config, case, row)
                queue_mail(store, config, mail, case, [], None, now)
        done.append(found)
    return done


def warning_page(store: Store, config: Config, case: Case, now: datetime) -> list[dict]:
    """A paging case that reaches a warning out of hours, not paged yet, pages the person on
    call as a new one would (or, with nobody on call, climbs its ladder)."""
    if not oncall.pages(case, config, now) or Pages(store).of_case(case.id):
        return []
    case, person, (kind, detail), mails = on_call(config, case, now)
    if person:
        ack_by, command = now + config.oncall.ack_within.wall, oncall.command(config, case, person)
        Pages(store).add(case.id, person, 0, now, ack_by, command)
        detail += ": SLA warning"
    else:
        case = Cases(store).save(case, sla.next_due(case, config, now))
    Cases(store).add_event(case.id, now, kind, detail)
    thread = Cases(store).thread_ids(case.id)
    queued = [queue_mail(store, config, m, case, thread, None, now) for m in mails]
    to = [a for q in queued if q for a in q["to"]]
    return [{"reference": case.reference, "action": "page" if person else kind, "to": to}]


def unanswered_pages(store: Store, config: Config, now: datetime, dry_run: bool) -> list[dict]:
    """A page nobody answered in time: the next person in the rota is paged; after them, the
    case climbs the escalation ladder."""
    done = []
    for row in Pages(store).unanswered(now) if config.oncall else ():
        case = Cases(store).by_id(row["case_id"])
        nxt = oncall.paged(config, now, row["step"] + 1) if row["step"] == 0 else None
        if nxt == row["person"]:  # a rota of one: nobody else to page
            nxt = None
        found = {"reference": case.reference, "action": "page" if nxt else "escalate"}
        if not dry_run:
            with store.transaction():
                if not Pages(store).settle(row["id"], now):
                    continue
                found["to"] = page_next(store, config, case, row, nxt, now)
        done.append(found)
    return done


def page_next(
    store: Store, config: Config, case: Case, row: dict, nxt: str | None, now: datetime
) -> list[str]:
    cases = Cases(store)
    why = f"{row['person']} did not answer the page within {config.oncall.ack_within}"
    if nxt:
        ack_by = now + config.oncall.ack_within.wall
        command = oncall.command(config, case, nxt)
        Pages(store).add(case.id, nxt, row["step"] + 1, now, ack_by, command)
        cases.add_event(case.id, now, "page", f"{nxt} paged: {why}")
        mails: tuple[Mail, ...] = (oncall.page_mail(config, nxt, row["step"] + 1),)
    else:
        case, event, mails = climbed(config, case, why, now)
        case = cases.save(case, sla.next_due(case, config, now))
        cases.add_event(case.id, now, *event)
    queued = [
        queue_mail(store, config, m, case, cases.thread_ids(case.id), None, now) for m in mails
    ]
    return [a for q in queued if q for a in q["to"]]


# -- the pure part: a case and `now` in, the settled case and its steps out -----------------


def settle(case: Case, config: Config, now: datetime) -> tuple[Case, list[Step]]:
    steps = []
    for action in sla.due_actions(case, config, now):
        case = sla.apply_action(case, action, config, now)
        mails: tuple[Mail, ...]
        if action.kind == "close" and case.status == sla.PENDING_CLOSE:
            mails = (terms.pending_close_mail(case, config),)
        elif action.kind == "close":
            case, closed = milestone(config, case, "closed", "timeout")
            mails = (closed, *agreed.follow(config, case, "closed"))
        else:
            mails = mails_for(case, action, config, now)
        steps.append(Step(action, event_for(case, action, config, now), mails))
    return case, steps


def event_for(case: Case, action: sla.Action, config: Config, now: datetime) -> tuple[str, str]:
    late = lateness(case, config, now, action.clocks)
    if action.kind == "warn":
        return "sla_warning", f"warned at warn_at: {late}"
    if action.kind == "breach":
        return "sla_breach", f"deadline passed: {late}"
    if action.kind == "escalate":
        return "escalate", f"level {action.level} by the scheduler: {late}"
    if action.kind == "closing_warning":
        return "closing_warning", "no reply from the customer: closing warning sent"
    if action.kind == "reply_due":
        return "reply_due", f"reminder to {owing(action)}: the customer still waits for a reply"
    if case.status == sla.PENDING_CLOSE:
        manager = sla.plan_of(case, config).terms.service_manager
        why = "no reply after the closing warning"
        return "status", f"waiting -> pending_close ({why}): {manager} decides"
    return "status", "waiting -> closed (no reply after the closing warning)"


def lateness(case: Case, config: Config, now: datetime, names: tuple[str, ...]) -> str:
    """ "first response 1h 20m late": what is late and by how much, in working time."""
    stands = [sla.standing(case, c, config, now) for c in case.clocks or () if c.name in names]
    return ", ".join(
        f"{s.name.replace('_', ' ')} {sla.words(s.left)} {'late' if s.late else 'left'}"
        for s in stands
    )


def mails_for(case: Case, action: sla.Action, config: Config, now: datetime) -> tuple[Mail, ...]:
    if action.kind in ("warn", "breach"):
        return (team_notice(case, action, config, now),)
    if action.kind == "escalate":
        return escalation(case, action, config, now)
    if action.kind == "reply_due":
        return (reply_reminder(case, action, config),)
    return (closing_warning(case, config, now),)


def owing(action: sla.Action) -> str:
    """Who a reply_due reminder goes to: its key names them."""
    return next(iter(action.records)).removeprefix(reply_due.REMINDED)


def reply_reminder(case: Case, action: sla.Action, config: Config) -> Mail:
    """Once, a working day after a customer's `#escalate` reached them: they owe a reply."""
    address = owing(action)
    since = next((o.since for o in reply_due.owed(case) if o.address == address), action.due_at)
    return Mail(
        "reply_due",
        "reply_due",
        (address,),
        {"since": since},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
    )


def clock_lines(case: Case, config: Config, now: datetime) -> list[sla.Standing]:
    return [sla.standing(case, c, config, now) for c in sla.running(case)]


def team_notice(case: Case, action: sla.Action, config: Config, now: datetime) -> Mail:
    """The engineers are warned at warn_at and told at the deadline."""
    context = {
        "breached": action.kind == "breach",
        "due": list(action.clocks),
        "clocks": clock_lines(case, config, now),
        "words": sla.words,
    }
    kind = "sla_breach" if action.kind == "breach" else "sla_warning"
    return Mail(
        kind,
        "sla_warning",
        team(case, config),
        context,
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
        threaded=False,
    )


def escalation(case: Case, action: sla.Action, config: Config, now: datetime) -> tuple[Mail, ...]:
    why = f"by the scheduler: {lateness(case, config, now, action.clocks)}"
    extra = {"clocks": clock_lines(case, config, now), "words": sla.words}
    return tuple(
        replace(m, context={**m.context, **extra})
        for m in escalation_mails(config, case, action.level, why)
    )


def closing_warning(case: Case, config: Config, now: datetime) -> Mail:
    cal, policy = sla.calendar_of(case, config), config.policy
    closes_at = calendar.add(cal, now, policy.close_after_warning)
    context = {
        "close_after": policy.close_after_warning.describe(always_open=cal.always_open),
        "closes_at": closes_at,
    }
    return Mail(
        "closing_warning", "closing_warning", case.contacts, context, automatic="auto-generated"
    )
