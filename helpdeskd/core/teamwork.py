"""What an engineer keeps for later on a case (pure): reminders (`#remind`), mailed once at their
moment with the case's summary, and time spent (`#time`), added up per engineer and reported.

The handlers return the case, its history entry and no mail, as the other engineer commands
do; `planned` and `spent` give the rows the store keeps, from the same changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from helpdeskd.config import Config
from helpdeskd.core import agreed, sla
from helpdeskd.core.commands import Change, CommandError, command_line, usage
from helpdeskd.core.render import local_time
from helpdeskd.model import Case, Mail

if TYPE_CHECKING:  # the outcome imports this module for its handlers
    from helpdeskd.core.outcome import Context


@dataclass(frozen=True)
class Reminder:
    recipient: str
    due_at: datetime
    set_by: str


def reminder_at(case: Case, text: str, config: Config, now: datetime) -> datetime:
    """A date and time on the wall, or working time ("2d") of the case's calendar."""
    return agreed.moment(sla.calendar_of(case, config), text, now)


def planned(ctx: Context, case: Case, changes: tuple[Change, ...]) -> tuple[Reminder, ...]:
    found = []
    for change in (c for c in changes if c.kind == "remind"):
        recipient, text = change.value.split(" ", 1)
        due_at = reminder_at(case, text, ctx.config, ctx.now)
        found.append(Reminder(recipient, due_at, ctx.inbound.from_addr))
    return tuple(found)


def spent(changes: tuple[Change, ...]) -> int:
    """Minutes the writer spent, by `#time`; 0 without it."""
    return sum(int(c.value) for c in changes if c.kind == "time")


def errors(ctx: Context, case: Case, changes: tuple[Change, ...]) -> tuple[CommandError, ...]:
    """A reminder for a moment already past would never go: nothing is applied."""
    past = [r for r in planned(ctx, case, changes) if r.due_at <= ctx.now]
    if not past:
        return ()
    line = command_line(ctx.inbound.text, "remind")
    return (CommandError(*line, f"that moment is already past; {usage('remind')}"),)


def remind(ctx: Context, case: Case, value: str):
    recipient, text = value.split(" ", 1)
    due_at = reminder_at(case, text, ctx.config, ctx.now)
    tz = sla.calendar_of(case, ctx.config).timezone
    detail = f"for {recipient} at {local_time(due_at, tz)} by {ctx.inbound.from_addr}"
    return case, ("reminder", detail), ()


def time_spent(ctx: Context, case: Case, value: str):
    return case, ("time", f"{duration(int(value))} by {ctx.inbound.from_addr}"), ()


def duration(minutes: int) -> str:
    """90 -> "1h30m", 45 -> "45m", 120 -> "2h"."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h{rest:02d}m" if rest else f"{hours}h"


def reminder_mail(config: Config, case: Case, reminder: dict) -> Mail:
    """To the engineer alone, with the case's summary; never to a customer."""
    return Mail(
        "reminder",
        "reminder",
        (reminder["recipient"],),
        {"set_by": reminder["set_by"]},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
        threaded=False,
    )


def ack(ctx: Context, case: Case, value: None):
    return case, ("ack", f"page answered by {ctx.inbound.from_addr}"), ()


CHANGES = {"remind": remind, "time": time_spent, "ack": ack}
