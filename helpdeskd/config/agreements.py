"""What the service agreements promise: [calendars.NAME], [plans.NAME] and [escalation]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from helpdeskd.config.reader import Reader
from helpdeskd.core.calendar import Calendar, CalendarError, Duration
from helpdeskd.names import PRIORITIES


@dataclass(frozen=True)
class Plan:
    name: str
    calendar: str
    first_response: dict[str, Duration]
    resolution: dict[str, Duration]
    calendars: dict[str, str]  # per-priority calendar override
    warn_at: float = 0.8
    notify_tier: int = 1
    survey: bool = False  # ask the customer to rate a case once it is resolved or closed
    fair_use_cap: int | None = None  # new cases per customer in a report's period

    def calendar_for(self, priority: str) -> str:
        return self.calendars.get(priority, self.calendar)


@dataclass(frozen=True)
class EscalationLevel:
    notify: tuple[str, ...]
    on: str  # "warn" | "breach"
    after: Duration | None = None
    name: str | None = None  # how the customer hears of the level ("Team lead")


def _calendars(r: Reader, tables: dict) -> dict[str, Calendar]:
    found = {}
    for name, t in tables.items():
        p = f"calendars.{name}"
        if not isinstance(t, dict):
            r.problem(p, "must be a table")
            continue
        calendar = _calendar(r, name, p, t)
        if calendar is not None:
            found[name] = calendar
    return found


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _calendar(r: Reader, name: str, p: str, t: dict) -> Calendar | None:
    r.unknown(
        t,
        p,
        {"timezone", "holidays", "holiday_country", "holiday_subdiv", "always_open", *WEEKDAYS},
    )
    hours = {day: t[day] for day in WEEKDAYS if day in t}
    try:
        return Calendar.build(
            name,
            timezone=r.required(t, "timezone", p, str) or "UTC",
            hours=hours,
            # entries go in as TOML gave them: Calendar.build takes dates and ISO strings and
            # lists anything else as a problem of its own (holidays[2])
            holidays=r.get(t, "holidays", p, list, []),
            holiday_country=r.get(t, "holiday_country", p, str),
            holiday_subdiv=r.get(t, "holiday_subdiv", p, str),
            always_open=r.get(t, "always_open", p, bool, False),
        )
    except CalendarError as exc:
        for key, why in exc.problems:
            # the weekdays sit directly in the calendar's table, not under "hours"
            r.problem(f"{p}.{key.removeprefix('hours.')}", why)
        return None


def _plans(r: Reader, tables: dict, calendars: dict) -> dict[str, Plan]:
    plans = {}
    for name, t in tables.items():
        if isinstance(t, dict):
            plans[name] = _plan(r, name, f"plans.{name}", t, calendars)
        else:
            r.problem(f"plans.{name}", "must be a table")
    if not plans:
        r.problem("plans", "at least one plan is required")
    return plans


def _plan(r: Reader, name: str, p: str, t: dict, calendars: dict) -> Plan:
    r.unknown(
        t,
        p,
        {
            "calendar",
            "first_response",
            "resolution",
            "calendars",
            "warn_at",
            "notify_tier",
            "survey",
            "fair_use_cap",
        },
    )
    calendar = r.required(t, "calendar", p, str)
    if calendar is not None and calendar not in calendars:
        r.problem(f"{p}.calendar", f"unknown calendar {calendar!r}")
    overrides = _calendar_overrides(r, t, p, calendars)
    warn_at = r.get(t, "warn_at", p, (int, float), 0.8)
    if not 0 < warn_at < 1:
        r.problem(f"{p}.warn_at", "must be a fraction between 0 and 1, e.g. 0.8")
    return Plan(
        name=name,
        calendar=calendar or "",
        first_response=_targets(r, t, "first_response", p),
        resolution=_targets(r, t, "resolution", p),
        calendars=overrides,
        warn_at=float(warn_at),
        notify_tier=r.choice(t, "notify_tier", p, (1, 2, 3), 1),
        survey=r.get(t, "survey", p, bool, False),
        fair_use_cap=r.positive(t, "fair_use_cap", p, 0) or None if "fair_use_cap" in t else None,
    )


def _calendar_overrides(r: Reader, t: dict, p: str, calendars: dict) -> dict[str, str]:
    """`calendars = { P1 = "around-the-clock" }`: a calendar name per priority."""
    table = r.table(t, "calendars", f"{p}.calendars")
    _priority_keys(r, table, f"{p}.calendars")
    for priority, name in table.items():
        if not isinstance(name, str):
            r.problem(f"{p}.calendars.{priority}", f"must be a calendar's name, not {name!r}")
        elif name not in calendars:
            r.problem(f"{p}.calendars.{priority}", f"unknown calendar {name!r}")
    return {k: v for k, v in table.items() if isinstance(v, str) and k in PRIORITIES}


def _targets(r: Reader, t: dict, key: str, p: str) -> dict[str, Duration]:
    table = r.table(t, key, f"{p}.{key}")
    if key not in t:
        r.problem(f"{p}.{key}", 'is required: a target per priority, e.g. { P1 = "2h", ... }')
    _priority_keys(r, table, f"{p}.{key}")
    for missing in (pr for pr in PRIORITIES if key in t and pr not in table):
        r.problem(f"{p}.{key}.{missing}", "is required")
    found = {pr: r.parse_duration(v, f"{p}.{key}.{pr}") for pr, v in table.items()}
    return {pr: d for pr, d in found.items() if d is not None and pr in PRIORITIES}


def _priority_keys(r: Reader, table: dict, p: str) -> None:
    for key in table:
        if key not in PRIORITIES:
            r.problem(f"{p}.{key}", f"unknown priority (known: {', '.join(PRIORITIES)})")


def _escalation(r: Reader, t: dict) -> tuple[EscalationLevel, ...]:
    r.unknown(t, "escalation", {"levels"})
    levels = r.get(t, "levels", "escalation", list, [])
    if len(levels) > 3:
        r.problem("escalation.levels", "at most three levels")
    return tuple(_level(r, f"escalation.levels[{i}]", t) for i, t in enumerate(levels[:3]))


def _level(r: Reader, p: str, t: Any) -> EscalationLevel:
    if not isinstance(t, dict):
        r.problem(p, 'must be a table like { notify = [...], on = "breach" }')
        return EscalationLevel((), "breach")
    r.unknown(t, p, {"notify", "on", "after", "name"})
    notify = r.addresses(t, "notify", p)
    if not notify:
        r.problem(f"{p}.notify", "at least one address is required")
    return EscalationLevel(
        notify=notify,
        on=r.choice(t, "on", p, ("warn", "breach"), "breach"),
        after=r.duration(t, "after", p, None),
        name=r.get(t, "name", p, str),
    )
