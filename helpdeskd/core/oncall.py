"""Who is on call, and which cases page them (pure).

A case pages when its priority (and plan, if the rota names plans) is one the rota covers and
it opens outside the team calendar's working hours. The person on call gets a page; nobody
answering within `ack_within` (`#ack`, or any reply on the case), the next person in the rota
is paged, and after them the case climbs the escalation ladder."""

from __future__ import annotations

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


def now_and_next(config: Config, now: datetime) -> dict:
    """Who is on call now (None before the first shift) and who takes over next, when."""
    rota, tz = config.oncall, team_timezone(config)
    current = shift(rota, tz, now)
    number = current[0] if current else -1
    began = current[1] if current else None
    handover = began + WEEK if began else first_handover(rota, tz)
    return {
        "now": person(rota, number) if current else None,
        "since": began,
        "next": person(rota, number + 1),
        "from": handover,
    }


def pages(case: Case, config: Config, now: datetime) -> bool:
    rota = config.oncall
    if rota is None or case.priority not in rota.priorities:
        return False
    if rota.plans and case.plan not in rota.plans:
        return False
    return not calendar.is_working(config.calendars[rota.team_calendar], now)


def paged(config: Config, now: datetime, step: int) -> str | None:
    """Who a page of this step goes to: the person on call (step 0), then the next one."""
    current = shift(config.oncall, team_timezone(config), now)
    return person(config.oncall, current[0] + step) if current else None


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
