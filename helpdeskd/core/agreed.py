"""What engineers agree and record on a case beside its status (pure): deadlines agreed with the
customer (`#due`), hand-overs between tiers (`#tier`), the action plan (`#plan`) and the patch or
workaround (`#workaround`); and the followers, whom every escalation adds, told of each
milestone with one short mail.

Each handler takes the outcome's context, the case and the command's value, and returns the
case, its history entry and its mail, as the other engineer commands do.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from helpdeskd.config import Config
from helpdeskd.core import calendar, sla
from helpdeskd.core.commands import Change, CommandError, command_line, usage
from helpdeskd.core.render import local_time
from helpdeskd.model import Case, Mail

if TYPE_CHECKING:  # the outcome imports this module for its handlers
    from helpdeskd.core.outcome import Context


def when(case: Case, clock: str, text: str, config: Config, now: datetime) -> datetime:
    """ "2026-12-20" (the close of that working day), "2026-12-20 15:00", or "5d" (working time
    from now), on the clock's calendar."""
    cal = sla.clock_calendar(case, sla.agreed_clock(case, clock, config), config)
    return moment(cal, text, now)


def moment(cal: calendar.Calendar, text: str, now: datetime) -> datetime:
    """ "2026-12-20" (the close of that working day), "2026-12-20 15:00" (wall time), or "5d"
    (working time from now) on a calendar."""
    if "-" not in text:
        return calendar.add(cal, now, calendar.parse_duration(text))
    day, _, at = text.partition(" ")
    if not at:
        return calendar.end_of_day(cal, date.fromisoformat(day))
    return calendar.at_wall(cal, date.fromisoformat(day), time.fromisoformat(at.zfill(5)))


def errors(ctx: Context, case: Case, changes: tuple[Change, ...]) -> tuple[CommandError, ...]:
    """A #due for a clock the case does not have, or for a moment already past: nothing is
    applied, and the engineer is told why."""
    found = []
    names = [c.name for c in case.clocks or ()]
    for change in (c for c in changes if c.kind == "due"):
        name, text = change.value.split(" ", 1)
        if name not in names and name != "resolution":
            why = f'this case has no clock "{name}" (its clocks: {", ".join(names) or "none"})'
        elif when(case, name, text, ctx.config, ctx.now) <= ctx.now:
            why = f'"{text}" is already past; {usage("due")}'
        else:
            continue
        found.append(CommandError(*command_line(ctx.inbound.text, "due"), why))
    return tuple(found)


def due(ctx: Context, case: Case, value: str):
    """The customer gets one mail with the agreed date; agreeing again is recorded with what
    was agreed before, by whom."""
    name, text = value.split(" ", 1)
    by, before = ctx.inbound.from_addr, case.clocks.get(name) if case.clocks else None
    deadline = when(case, name, text, ctx.config, ctx.now)
    case = sla.agree(case, name, deadline, by, ctx.config, ctx.now)
    tz = sla.calendar_of(case, ctx.config).timezone
    detail = f"{name} agreed for {local_time(deadline, tz)} by {by}"
    again = before is not None and before.agreed_at is not None
    if again:
        detail += f" (was {local_time(before.deadline, tz)}, agreed by {before.agreed_by})"
    context = {"clock": name, "deadline": deadline, "again": again}
    mail = Mail("agreed_deadline", "agreed_deadline", case.contacts, context)
    return case, ("due", detail), (mail, *follow(ctx.config, case, "agreed deadline", detail))


def tier(ctx: Context, case: Case, value: str):
    """The tier's engineers are told; the clocks waiting for that tier start."""
    number, was = int(value), sla.tier_of(case, ctx.config)
    if number == was:
        return case, None, ()
    case, started = sla.start(replace(case, tier=number), f"tier {number}", ctx.config, ctx.now)
    detail = f"{was} -> {number} by {ctx.inbound.from_addr}"
    if started:
        detail += f"; started {', '.join(started)}"
    engineers = tuple(e.email for e in ctx.config.engineers if e.tier == number)
    mail = Mail(
        "tier_handover",
        "tier_handover",
        engineers or ctx.config.helpdesk.admins,
        {"tier": number, "by": ctx.inbound.from_addr, "started": started},
        reply_to=ctx.config.helpdesk.address,
    )
    return case, ("tier", detail), (mail,)


def action_plan(ctx: Context, case: Case, value: str):
    """Kept in the history as an internal note; the customer gets it unless `#note` is given
    too (the outcome drops this mail then)."""
    case, met = sla.stop(case, "#plan", ctx.now)
    mail = Mail("action_plan", "action_plan", case.contacts, {"plan": value})
    followers = follow(ctx.config, case, "action plan", value)
    return case, ("action_plan", _recorded(value, met)), (mail, *followers)


def workaround(ctx: Context, case: Case, value: str):
    case, met = sla.stop(case, "#workaround", ctx.now)
    followers = follow(ctx.config, case, "workaround", value)
    return case, ("workaround", _recorded(value, met)), followers


def _recorded(text: str, met: list[str]) -> str:
    return text + (f" (met {', '.join(met)})" if met else "")


def follow(config: Config, case: Case, milestone: str, detail: str = "") -> tuple[Mail, ...]:
    """One short mail to the case's followers at a milestone; none when nobody follows it."""
    if not case.followers:
        return ()
    mail = Mail(
        "follower",
        "follower",
        case.followers,
        {"milestone": milestone, "detail": detail},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
        threaded=False,
    )
    return (mail,)


CHANGES = {"due": due, "tier": tier, "plan": action_plan, "workaround": workaround}
