"""The plan's small print applied to a case (pure): who may close it, the service manager's
say on a case that timed out, what the acknowledgement adds after hours and of the priority,
and the category an engineer gives a case.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from helpdeskd.config import Config
from helpdeskd.core import calendar, sla
from helpdeskd.core.classify import find_customer, plan_of
from helpdeskd.core.commands import Change, CommandError, command_line
from helpdeskd.model import Case, Mail
from helpdeskd.names import PRIORITIES

if TYPE_CHECKING:  # the outcome imports this module
    from helpdeskd.core.outcome import Context

URGENT = ("P1", "P2")
NOT_COVERED = "not_covered_note"  # in Case.notices once the customer was told


# -- who may close --------------------------------------------------------------------------


def deciders(case: Case, config: Config) -> tuple[str, ...]:
    """Who may close a case pending close: the plan's service manager and the admins."""
    manager = sla.plan_of(case, config).terms.service_manager
    return (*((manager,) if manager else ()), *config.helpdesk.admins)


def customer_may_not_close(ctx: Context, case: Case) -> str | None:
    """Why a customer's #close is not applied under the plan's terms; None when it is. (A
    customer's answer on a case pending close reopens it: they are back.)"""
    terms = sla.plan_of(case, ctx.config).terms
    if terms.close_by == "requester" and ctx.inbound.from_addr != case.opener:
        return f"only the person who opened the case ({case.opener}) may close it"
    return None


def close_not_yours(ctx: Context, case: Case, why: str, day: str) -> tuple[tuple[str, str], Mail]:
    """The polite one-line answer to a #close the plan does not allow, once a `day` each."""
    sender = ctx.inbound.from_addr
    answer = Mail(
        "close_not_allowed",
        "close_not_allowed",
        (sender,),
        {"why": why},
        automatic="auto-replied",
        once=f"close_not_allowed:{case.reference}:{sender}:{day}",
    )
    return ("close_refused", f"#close from {sender} not applied: {why}"), answer


def engineer_errors(ctx: Context, case: Case, changes: tuple[Change, ...]) -> list[CommandError]:
    """An engineer's #close of a case pending close: the plan gives that to its service
    manager. #category of a category not configured."""
    found = []
    for change in changes:
        if change.kind == "status" and change.value == "closed":
            if case.status == sla.PENDING_CLOSE and ctx.inbound.from_addr not in deciders(
                case, ctx.config
            ):
                who = " or ".join(deciders(case, ctx.config))
                why = f"{case.reference} is pending close: only {who} may close it"
                found.append(CommandError(*command_line(ctx.inbound.text, "close"), why))
        elif change.kind == "category" and change.value not in ctx.config.categories:
            known = ", ".join(ctx.config.categories) or "none configured"
            why = f'unknown category "{change.value}" (categories: {known})'
            found.append(CommandError(*command_line(ctx.inbound.text, "category"), why))
    return found


def pending_close_mail(case: Case, config: Config) -> Mail:
    """The service manager is asked, once, to close the case or keep it."""
    manager = sla.plan_of(case, config).terms.service_manager
    return Mail(
        "pending_close",
        "pending_close",
        (manager,) if manager else config.helpdesk.admins,
        {"customer": case.customer, "contacts": case.contacts},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
        threaded=False,
    )


def decision(ctx: Context, case: Case, text: str) -> str | None:
    """The status a decider's `#close` or `#reopen` line asks for on a case pending close."""
    if case.status != sla.PENDING_CLOSE or ctx.inbound.from_addr not in deciders(case, ctx.config):
        return None
    lines = {line.strip().lower() for line in text.splitlines()}
    if "#close" in lines:
        return "closed"
    return "open" if "#reopen" in lines else None


# -- what the acknowledgement says ----------------------------------------------------------


def after_hours_note(case: Case, config: Config, now: datetime) -> str:
    """The plan's words for a P1 or P2 case opened outside its calendar's working hours (a
    phone call is needed, the support line's number)."""
    plan = sla.plan_of(case, config)
    if case.priority not in URGENT or not plan.terms.after_hours_note:
        return ""
    cal = config.calendars.get(plan.calendar)
    return "" if cal is None or calendar.is_working(cal, now) else plan.terms.after_hours_note


def form_priorities(address: str, config: Config, today: date) -> list[tuple[str, str]]:
    """What the status page's new-case form offers the address: each priority with its plan's
    definition ("" where it gives none)."""
    customer, _ = find_customer(address, config)
    plan = plan_of(customer, config, today) if customer else config.policy.default_plan
    defined = definitions(plan, config)
    return [(priority, defined.get(priority, "")) for priority in PRIORITIES]


def definitions(plan_name: str | None, config: Config) -> dict[str, str]:
    """The priorities a plan defines, else the default plan's."""
    plan = config.plans.get(plan_name or "") or config.plans[config.policy.default_plan]
    return plan.terms.priorities or config.plans[config.policy.default_plan].terms.priorities


# -- categories -----------------------------------------------------------------------------


def category(ctx: Context, case: Case, value: str):
    """`#category NAME`: recorded; a category not covered by the agreement stops the case's
    clocks from now and tells the customer once, with the plan's note."""
    by = ctx.inbound.from_addr
    if value == case.category:
        return case, None, ()
    case = replace(case, category=value)
    detail = f"{value} by {by}"
    if not ctx.config.categories[value].stops_clocks:
        return case, ("category", detail), ()
    case, stopped = sla.stop_all(case, ctx.now)
    detail += f"; not covered: stopped {', '.join(stopped) or 'no clock'}"
    if NOT_COVERED in case.notices:
        return case, ("category", detail), ()
    note = sla.plan_of(case, ctx.config).terms.not_covered_note
    mail = Mail("not_covered", "not_covered", case.contacts, {"note": note, "category": value})
    return replace(case, notices=case.notices | {NOT_COVERED}), ("category", detail), (mail,)
