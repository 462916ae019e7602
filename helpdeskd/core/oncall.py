"""Who is on call, and which cases page them (pure).

A case pages when its priority (and plan, if the rota names plans) is one the rota covers and
it opens outside the team calendar's working hours. The person on call gets a page; nobody
answering within `ack_within` (`#ack`, or any reply on the case), whoever takes over next is
paged, and after them the case climbs the escalation ladder. With nobody on call (between
dated shifts, before the rota starts) the case climbs the ladder at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from helpdeskd.config import Config
from helpdeskd.config.oncall import OnCall
from helpdeskd.core import calendar
from helpdeskd.model import Case, Mail

WEEK = timedelta(days=7)


def first_handover(rota: OnCall, timezone: str) -> datetime:
    """The first handover on or after `starts`: the first shift begins then."""
    ahead = (rota.handover_day - rota.starts.weekday()) % 7
    day = rota.starts + timedelta(days=ahead)
    return datetime.combine(day, rota.handover_at, ZoneInfo(timezone))


def shift(rota: OnCall, timezone: str, now: datetime) -> tuple[int, datetime] | None:
    """The number of the shift running at `now` (0 the first) and when it began; None before
    the first. Weeks are counted on the wall clock, so a handover stays at 09:00 across DST."""
    first = first_handover(rota, timezone)
    local = now.astimezone(ZoneInfo(timezone))
    if local < first:
        return None
    weeks = (local.date() - first.date()).days // 7
    began = datetime.combine(first.date() + weeks * WEEK, rota.handover_at, ZoneInfo(timezone))
    if local < began:
        weeks -= 1
        began = datetime.combine(first.date() + weeks * WEEK, rota.handover_at, began.tzinfo)
    return weeks, began


def person(rota: OnCall, number: int) -> str:
    return rota.rotation[number % len(rota.rotation)]


def team_timezone(config: Config) -> str:
    return config.calendars[config.oncall.team_calendar].timezone


@dataclass(frozen=True)
class Duty:
    """Who holds a turn on call (None: nobody), from when until when."""

    who: str | None
    since: datetime | None
    until: datetime | None


NOBODY = Duty(None, None, None)


def on_duty(config: Config, now: datetime) -> Duty:
    """Who is on call at `now`: the rota's shift running, or the dated shift holding `now`."""
    rota = config.oncall
    if rota.shifts:
        held = (Duty(s.who, s.begins, s.ends) for s in rota.shifts if s.begins <= now < s.ends)
        return next(held, NOBODY)
    current = shift(rota, team_timezone(config), now)
    if current is None:
        return NOBODY
    number, began = current
    return Duty(person(rota, number), began, began + WEEK)  # wall-clock weeks


def next_duty(config: Config, now: datetime) -> Duty:
    """Who takes over next, and from when; nobody after the last dated shift."""
    rota = config.oncall
    if rota.shifts:
        later = (Duty(s.who, s.begins, s.ends) for s in rota.shifts if s.begins > now)
        return next(later, NOBODY)
    current = shift(rota, team_timezone(config), now)
    if current is None:
        first = first_handover(rota, team_timezone(config))
        return Duty(person(rota, 0), first, first + WEEK)
    number, began = current
    return Duty(person(rota, number + 1), began + WEEK, began + 2 * WEEK)


def now_and_next(config: Config, now: datetime) -> dict:
    """Who is on call now (None before the rota starts, between or after dated shifts), since
    and until when, and who takes over next (None after the last dated shift), from when."""
    current, later = on_duty(config, now), next_duty(config, now)
    return {
        "now": current.who,
        "since": current.since,
        "until": current.until,
        "next": later.who,
        "from": later.since,
    }


def pages(case: Case, config: Config, now: datetime) -> bool:
    rota = config.oncall
    if rota is None or case.priority not in rota.priorities:
        return False
    if rota.plans and case.plan not in rota.plans:
        return False
    return not calendar.is_working(config.calendars[rota.team_calendar], now)


def paged(config: Config, now: datetime, step: int) -> str | None:
    """Who a page of this step goes to: the person on call (step 0), then whoever takes over
    next (step 1); None when nobody is on call."""
    if step == 0:
        return on_duty(config, now).who
    return next_duty(config, now).who if on_duty(config, now).who else None


def command(config: Config, case: Case, person_paged: str) -> tuple[str, ...]:
    """The page_command's arguments for this page: "{reference}", "{summary}" and "{paged}"
    stand for the case's reference, "P1 Acme: subject" and the address paged; () when there
    is no page_command."""
    summary = f"{case.priority} {case.customer or 'unknown sender'}: {case.subject}"
    given = {"{reference}": case.reference, "{summary}": summary, "{paged}": person_paged}
    return tuple(_filled(argument, given) for argument in config.oncall.page_command)


def _filled(argument: str, given: dict[str, str]) -> str:
    for placeholder, value in given.items():
        argument = argument.replace(placeholder, value)
    return argument


def page_mail(config: Config, person_paged: str, step: int) -> Mail:
    return Mail(
        "page",
        "page",
        (person_paged,),
        {"ack_within": config.oncall.ack_within, "step": step},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
        threaded=False,
    )
