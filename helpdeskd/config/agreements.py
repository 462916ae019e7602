"""What the service agreements promise: [calendars.NAME], [plans.NAME] with their clocks and
ladders, [tiers.N] and [escalation]."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from helpdeskd.config.reader import Reader
from helpdeskd.config.terms import TERMS_KEYS, Terms, _terms
from helpdeskd.core.calendar import Calendar, CalendarError, Duration
from helpdeskd.names import PRIORITIES

STARTS = ("opened", "escalated", "tier 1", "tier 2", "tier 3")
STOPS = ("reply", "resolved", "#plan", "#workaround")
BUILT_IN = {"first_response": ("opened", "reply"), "resolution": ("opened", "resolved")}
_CLOCK_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class ClockRule:
    """A promise of the plan: a clock that starts at one event and stops at another."""

    name: str
    starts: str  # opened | escalated | tier N
    stops: str  # reply | resolved | #plan | #workaround
    targets: dict[str, Duration | str]  # per priority; text ("next release") has no deadline
    calendar: str | None = None  # None: the tier's calendar, else the plan's for the priority


@dataclass(frozen=True)
class EscalationLevel:
    notify: tuple[str, ...]
    on: str  # "warn" | "breach"
    after: Duration | None = None
    name: str | None = None  # how the customer hears of the level ("Team lead")


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
    clocks: tuple[ClockRule, ...] = ()  # the named clocks; built from the shorthand when empty
    escalation: tuple[EscalationLevel, ...] | None = None  # None: the helpdesk's ladder
    renewal_note: str = ""  # told to the primary contact when a customer's plan lapses
    terms: Terms = Terms()  # the small print: who may close, reopening, notes, definitions

    def calendar_for(self, priority: str) -> str:
        return self.calendars.get(priority, self.calendar)

    @property
    def rules(self) -> tuple[ClockRule, ...]:
        """Every clock of the plan: the shorthand targets first, then the named clocks."""
        shorthand = tuple(
            ClockRule(name, *BUILT_IN[name], targets)
            for name, targets in (
                ("first_response", self.first_response),
                ("resolution", self.resolution),
            )
            if targets
        )
        return shorthand + self.clocks

    def rule(self, name: str) -> ClockRule | None:
        return next((r for r in self.rules if r.name == name), None)


@dataclass(frozen=True)
class Tier:
    number: int
    calendar: str | None = None  # clocks started by the tier count on it unless they name one


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
            # a 24x7 calendar counts wall time, the same in every zone
            timezone=_calendar_zone(r, t, p),
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


def _calendar_zone(r: Reader, t: dict, p: str) -> str:
    if t.get("always_open") is True and "timezone" not in t:
        return "UTC"
    return r.required(t, "timezone", p, str) or "UTC"


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
            "clocks",
            "escalation",
            "renewal_note",
            *TERMS_KEYS,
        },
    )
    calendar = r.required(t, "calendar", p, str)
    if calendar is not None and calendar not in calendars:
        r.problem(f"{p}.calendar", f"unknown calendar {calendar!r}")
    overrides = _calendar_overrides(r, t, p, calendars)
    warn_at = r.get(t, "warn_at", p, (int, float), 0.8)
    if not 0 < warn_at < 1:
        r.problem(f"{p}.warn_at", "must be a fraction between 0 and 1, e.g. 0.8")
    clocks = _clocks(r, t, p, calendars)
    # a plan with named clocks may leave out the shorthand ones
    shorthand = {k: _targets(r, t, k, p, required=not clocks) for k in BUILT_IN}
    return Plan(
        name=name,
        calendar=calendar or "",
        first_response=shorthand["first_response"],
        resolution=shorthand["resolution"],
        calendars=overrides,
        warn_at=float(warn_at),
        notify_tier=r.choice(t, "notify_tier", p, (1, 2, 3), 1),
        survey=r.get(t, "survey", p, bool, False),
        fair_use_cap=r.positive(t, "fair_use_cap", p, 0) or None if "fair_use_cap" in t else None,
        clocks=clocks,
        escalation=_ladder(r, t["escalation"], f"{p}.escalation") if "escalation" in t else None,
        renewal_note=_renewal_note(r, t, p),
        terms=_terms(r, t, p),
    )


def _renewal_note(r: Reader, t: dict, p: str) -> str:
    """IPcelerate, Pro Plus: what a customer whose plan lapsed is told about renewing it."""
    return r.get(t, "renewal_note", p, str, "").strip()


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


def _targets(r: Reader, t: dict, key: str, p: str, required: bool = True) -> dict[str, Duration]:
    table = r.table(t, key, f"{p}.{key}")
    if key not in t and required:
        r.problem(f"{p}.{key}", 'is required: a target per priority, e.g. { P1 = "2h", ... }')
    _priority_keys(r, table, f"{p}.{key}")
    for missing in (pr for pr in PRIORITIES if key in t and pr not in table):
        r.problem(f"{p}.{key}.{missing}", "is required")
    found = {pr: r.parse_duration(v, f"{p}.{key}.{pr}") for pr, v in table.items()}
    return {pr: d for pr, d in found.items() if d is not None and pr in PRIORITIES}


def _clocks(r: Reader, t: dict, p: str, calendars: dict) -> tuple[ClockRule, ...]:
    """[plans.NAME.clocks.CLOCK]: each named clock of the plan."""
    found = []
    for name, table in r.table(t, "clocks", f"{p}.clocks").items():
        q = f"{p}.clocks.{name}"
        if not isinstance(table, dict):
            r.problem(q, "must be a table with starts, stops and targets")
        elif not _CLOCK_NAME.fullmatch(name):
            r.problem(q, "a clock's name is lower-case letters, digits and _, e.g. level_one")
        elif name in BUILT_IN and name in t:
            r.problem(q, f"{name} is given twice: as {p}.{name} and as this table")
        else:
            found.append(_clock_rule(r, name, q, table, calendars))
    return tuple(found)


def _clock_rule(r: Reader, name: str, p: str, t: dict, calendars: dict) -> ClockRule:
    r.unknown(t, p, {"calendar", "starts", "stops", "targets"})
    default_starts, default_stops = BUILT_IN.get(name, (None, None))
    starts = _event(r, t, "starts", p, STARTS, default_starts)
    stops = _event(r, t, "stops", p, STOPS, default_stops)
    calendar = r.get(t, "calendar", p, str)
    if calendar is not None and calendar not in calendars:
        r.problem(f"{p}.calendar", f"unknown calendar {calendar!r}")
    return ClockRule(name, starts, stops, _clock_targets(r, t, p), calendar)


def _event(r: Reader, t: dict, key: str, p: str, known: tuple, default: str | None) -> str:
    value = r.get(t, key, p, str, default)
    if value is None:
        r.problem(f"{p}.{key}", f"is required (known events: {', '.join(known)})")
    elif value.strip().lower() not in known:
        r.problem(f"{p}.{key}", f"unknown event {value!r} (known: {', '.join(known)})")
    return (value or "").strip().lower()


def _clock_targets(r: Reader, t: dict, p: str) -> dict[str, Duration | str]:
    """A duration per priority, or a text such as "next release" for a clock without deadline.
    Every priority needs one: a clock silently missing for P4 would look met in the report."""
    table = r.table(t, "targets", f"{p}.targets")
    if "targets" not in t:
        r.problem(f"{p}.targets", 'is required: a target per priority, e.g. { P1 = "2h", ... }')
    _priority_keys(r, table, f"{p}.targets")
    for missing in (pr for pr in PRIORITIES if "targets" in t and pr not in table):
        r.problem(
            f"{p}.targets.{missing}", 'is required: a duration, or a text like "next release"'
        )
    found = {pr: _clock_target(r, v, f"{p}.targets.{pr}") for pr, v in table.items()}
    return {pr: v for pr, v in found.items() if v is not None and pr in PRIORITIES}


def _clock_target(r: Reader, value: Any, p: str) -> Duration | str | None:
    if not isinstance(value, str) or not value.strip():
        r.problem(p, f'must be a duration like "4h" or a text like "next release", not {value!r}')
        return None
    if not value.strip()[0].isdigit():
        return value.strip()  # a text target: no deadline
    return r.parse_duration(value, p)


def _tiers(r: Reader, tables: dict, calendars: dict) -> dict[int, Tier]:
    """[tiers.N]: a tier's own calendar, e.g. tier 2 on 09:00-17:00."""
    found = {}
    for key, t in tables.items():
        p = f"tiers.{key}"
        if key not in ("1", "2", "3"):
            r.problem(p, "unknown tier (known: 1, 2, 3)")
        elif not isinstance(t, dict):
            r.problem(p, "must be a table")
        else:
            r.unknown(t, p, {"calendar"})
            calendar = r.get(t, "calendar", p, str)
            if calendar is not None and calendar not in calendars:
                r.problem(f"{p}.calendar", f"unknown calendar {calendar!r}")
            found[int(key)] = Tier(int(key), calendar)
    return found


def _priority_keys(r: Reader, table: dict, p: str) -> None:
    for key in table:
        if key not in PRIORITIES:
            r.problem(f"{p}.{key}", f"unknown priority (known: {', '.join(PRIORITIES)})")


def _escalation(r: Reader, t: dict) -> tuple[EscalationLevel, ...]:
    return _ladder(r, t, "escalation")


def _ladder(r: Reader, t: Any, p: str) -> tuple[EscalationLevel, ...]:
    """[escalation] or a plan's own [plans.NAME.escalation], the same shape."""
    if not isinstance(t, dict):
        r.problem(p, "must be a table with levels = [...]")
        return ()
    r.unknown(t, p, {"levels"})
    levels = r.get(t, "levels", p, list, [])
    if len(levels) > 3:
        r.problem(f"{p}.levels", "at most three levels")
    return tuple(_level(r, f"{p}.levels[{i}]", t) for i, t in enumerate(levels[:3]))


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
