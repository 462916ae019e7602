"""SLA clocks of a case, counted in its plan's business calendar, and what is due at `now` (pure).

A case owes the scheduler a few notices, each recorded in `case.notices` under its key once sent:

    warn:first_response      the clock reached the plan's warn_at; the team is warned
    breach:resolution        the clock passed its deadline; the team is told
    escalate:2               escalation level 2 was notified (config.escalation[1])
    closing_warning@ISO      the customer was warned at ISO (UTC) that the case will close
    closed:timeout           the case was closed for want of a reply

`next_due` is the earliest instant one of the notices still owed falls due; `due_actions` lists
those due at `now`. Both read the same list of pending notices, so the indexed `next_due` column
and the sweep never disagree.

Catching up (a daemon stopped over a weekend) sends at most one notice of each kind per case:
a clock whose deadline has passed gets the breach notice only (its warning is recorded as sent,
since a warning about a deadline already missed says nothing), and when several escalation
levels fell due, only the highest is notified and the customer told once; the lower levels are
recorded as passed. Nobody gets a pile of stale mail, and the notice they get says the worst.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from helpdeskd.config import Config, EscalationLevel, Plan
from helpdeskd.core import calendar
from helpdeskd.core.calendar import Duration
from helpdeskd.model import Case, Clock, Clocks

CLOSING_WARNING = "closing_warning@"
CLOSED = "closed:timeout"
SETTLED = ("resolved", "closed")


def plan_of(case: Case, config: Config) -> Plan:
    """The case's plan; one removed from the config since falls back to the default plan."""
    return config.plans.get(case.plan) or config.plans[config.policy.default_plan]


def calendar_of(case: Case, config: Config) -> calendar.Calendar:
    return config.calendars[plan_of(case, config).calendar_for(case.priority)]


# -- the clocks -----------------------------------------------------------------------------


def start_clocks(case: Case, config: Config) -> Case:
    """Deadlines from the opening instant for the case's plan and priority, pushed back by the
    working time spent waiting. Called on opening, on resume, and when the priority or plan
    changes. A clock already met keeps the deadline it was met against. A clock whose target or
    calendar changed is a new promise, so its warning and breach may be sent again."""
    plan = plan_of(case, config)
    old = case.clocks
    clocks = Clocks(
        first_response=_clock(
            case,
            "first_response",
            plan.first_response,
            plan,
            config,
            old.first_response if old else None,
        ),
        resolution=_clock(
            case, "resolution", plan.resolution, plan, config, old.resolution if old else None
        ),
    )
    renewed = {
        f"{kind}:{new.name}"
        for new in clocks
        if old and _renewed(old, new)
        for kind in ("warn", "breach")
    }
    return replace(case, clocks=clocks, notices=case.notices - renewed)


def _renewed(old: Clocks, new: Clock) -> bool:
    before = getattr(old, new.name)
    return (before.target, before.calendar) != (new.target, new.calendar)


def _clock(
    case: Case,
    name: str,
    targets: dict[str, Duration],
    plan: Plan,
    config: Config,
    old: Clock | None,
) -> Clock:
    if old is not None and old.met_at is not None:
        return old
    cal = calendar_of(case, config)
    target = targets[case.priority]
    deadline = _pushed(cal, calendar.add(cal, case.opened_at, target), case.paused_minutes)
    warn = _pushed(
        cal, warn_instant(cal, case.opened_at, target, plan.warn_at), case.paused_minutes
    )
    return Clock(name, str(target), cal.name, case.opened_at, deadline, warn)


def _pushed(cal: calendar.Calendar, instant: datetime, minutes: int) -> datetime:
    # Adding zero would move a deadline that falls exactly at closing time to the next opening.
    return calendar.add(cal, instant, Duration(minutes, "m")) if minutes else instant


def warn_instant(
    cal: calendar.Calendar, start: datetime, target: Duration, fraction: float
) -> datetime:
    total = calendar.between(cal, start, calendar.add(cal, start, target))
    return calendar.add(cal, start, Duration(int(total / timedelta(minutes=1) * fraction), "m"))


def pause(case: Case, now: datetime) -> Case:
    """`waiting` on the customer stops the clocks until they answer."""
    return case if case.waiting_since else replace(case, waiting_since=now)


def resume(case: Case, config: Config, now: datetime) -> Case:
    """The working time spent waiting is added to every running clock."""
    if case.waiting_since is None:
        return case
    spent = calendar.between(calendar_of(case, config), case.waiting_since, now)
    paused = case.paused_minutes + int(spent / timedelta(minutes=1))
    return start_clocks(replace(case, waiting_since=None, paused_minutes=paused), config)


def meet(case: Case, name: str, now: datetime) -> Case:
    """Stop a clock: the first engineer reply meets first_response, resolving meets resolution."""
    if case.clocks is None or getattr(case.clocks, name).met_at is not None:
        return case
    clock = replace(getattr(case.clocks, name), met_at=now)
    return replace(case, clocks=replace(case.clocks, **{name: clock}))


def settle(case: Case, now: datetime) -> Case:
    """Resolved or closed: the resolution clock is met, and the time until a reopening, if one
    comes, is paused time, as waiting is."""
    return pause(meet(case, "resolution", now), now)


def reopen(case: Case, config: Config, now: datetime) -> Case:
    """A reopened case runs its resolution clock again from where it stood; the first
    response stays met."""
    if case.clocks is not None and case.clocks.resolution.met_at is not None:
        resolution = replace(case.clocks.resolution, met_at=None)
        case = replace(case, clocks=replace(case.clocks, resolution=resolution))
    return resume(case, config, now)


def running(case: Case) -> list[Clock]:
    return [c for c in case.clocks or () if c.met_at is None]


# -- what the case still owes ---------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """One notice not yet sent, and the instant it falls due."""

    kind: str  # warn | breach | escalate | closing_warning | close
    key: str  # the notice key; closing_warning's gets its instant when it is sent
    at: datetime
    clock: str | None = None
    level: int = 0

    @property
    def closing(self) -> bool:
        return self.kind in ("closing_warning", "close")


def pending(case: Case, config: Config) -> list[Pending]:
    """Every notice the case still owes, due or not."""
    if case.status in SETTLED or case.clocks is None:
        return []
    if case.waiting_since is not None:
        return closing_pending(case, config) if case.status == "waiting" else []
    return clock_pending(case) + escalation_pending(case, config)


def clock_pending(case: Case) -> list[Pending]:
    return [
        Pending(kind, f"{kind}:{clock.name}", at, clock.name)
        for clock in running(case)
        for kind, at in (("warn", clock.warn_at), ("breach", clock.deadline))
        if f"{kind}:{clock.name}" not in case.notices
    ]


def escalation_pending(case: Case, config: Config) -> list[Pending]:
    """A level not reached yet (by hand or by the sweep) falls due when its event plus `after`
    has passed on the first running clock to get there."""
    cal, clocks = calendar_of(case, config), running(case)
    found = []
    for number, level in enumerate(config.escalation, start=1):
        if number <= case.escalation_level or f"escalate:{number}" in case.notices or not clocks:
            continue
        at, clock = min((level_instant(cal, c, level), c.name) for c in clocks)
        found.append(Pending("escalate", f"escalate:{number}", at, clock, number))
    return found


def level_instant(cal: calendar.Calendar, clock: Clock, level: EscalationLevel) -> datetime:
    event = clock.warn_at if level.on == "warn" else clock.deadline
    return calendar.add(cal, event, level.after) if level.after else event


def closing_pending(case: Case, config: Config) -> list[Pending]:
    """The closing rule: warn after `close_warning_after` of waiting, close after
    `close_after_warning` more, both counted from what actually happened."""
    cal, policy = calendar_of(case, config), config.policy
    warned = warned_at(case)
    if warned is None:
        at = calendar.add(cal, case.waiting_since, policy.close_warning_after)
        return [Pending("closing_warning", CLOSING_WARNING, at)]
    return [Pending("close", CLOSED, calendar.add(cal, warned, policy.close_after_warning))]


def warned_at(case: Case) -> datetime | None:
    """When the closing warning went out; the close counts from there, not from when it was
    due, so a customer always gets the full time to answer."""
    found = [n.removeprefix(CLOSING_WARNING) for n in case.notices if n.startswith(CLOSING_WARNING)]
    return datetime.fromisoformat(max(found)) if found else None


def next_due(case: Case, config: Config, now: datetime | None = None) -> datetime | None:
    """The next instant the scheduler must look at this case; None when nothing is pending.

    Mail to the customer about closing goes out in working time only, so its instant is moved to
    the next opening; given `now` (the sweep's), never to one before it.
    """
    cal = calendar_of(case, config) if case.clocks else None
    instants = [
        calendar.next_opening(cal, max(p.at, now) if now else p.at) if p.closing else p.at
        for p in pending(case, config)
    ]
    return min(instants, default=None)


# -- what is due at now ---------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """A notice to send now, and the notice keys it settles."""

    kind: str  # warn | breach | escalate | closing_warning | close
    due_at: datetime  # when it fell due (the earliest of what it settles)
    records: frozenset[str]
    clocks: tuple[str, ...] = ()
    level: int = 0


def due_actions(case: Case, config: Config, now: datetime) -> list[Action]:
    """What is due at `now` and not yet sent: at most one action of each kind."""
    due = [p for p in pending(case, config) if p.at <= now]
    if any(p.closing for p in due) and not calendar.is_working(calendar_of(case, config), now):
        due = [p for p in due if not p.closing]
    return [
        *_clock_actions(due),
        *_escalation_action(due),
        *(_closing_action(p, now) for p in due if p.closing),
    ]


def _clock_actions(due: list[Pending]) -> list[Action]:
    breached = [p for p in due if p.kind == "breach"]
    late = {p.clock for p in breached}
    # a clock past its deadline gets the breach notice; its warning is settled with it
    warned = [p for p in due if p.kind == "warn" and p.clock not in late]
    superseded = [p for p in due if p.kind == "warn" and p.clock in late]
    return [
        _action(kind, group, extra)
        for kind, group, extra in (("warn", warned, []), ("breach", breached, superseded))
        if group
    ]


def _action(kind: str, group: list[Pending], extra: list[Pending]) -> Action:
    return Action(
        kind,
        min(p.at for p in group),
        frozenset(p.key for p in group + extra),
        tuple(p.clock for p in group),
    )


def _escalation_action(due: list[Pending]) -> list[Action]:
    levels = [p for p in due if p.kind == "escalate"]
    if not levels:
        return []
    top = max(levels, key=lambda p: p.level)
    return [
        Action(
            "escalate",
            min(p.at for p in levels),
            frozenset(p.key for p in levels),
            (top.clock,),
            top.level,
        )
    ]


def _closing_action(due: Pending, now: datetime) -> Action:
    key = CLOSING_WARNING + stamp(now) if due.kind == "closing_warning" else due.key
    return Action(due.kind, due.at, frozenset({key}))


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def apply_action(case: Case, action: Action, config: Config, now: datetime) -> Case:
    """The case once `action` is done: its notices recorded, its level raised, or closed."""
    case = replace(case, notices=case.notices | action.records)
    if action.kind == "escalate":
        level = max(case.escalation_level, action.level)
        return replace(case, escalation_level=level, updated_at=now)
    if action.kind == "close":
        # resume first, so the resolution clock is judged on the time not spent waiting
        case = settle(resume(case, config, now), now)
        return replace(case, status="closed", closed_at=now, updated_at=now)
    return case


# -- how a clock stands, for mail and `show` ------------------------------------------------


@dataclass(frozen=True)
class Standing:
    name: str
    target: str
    deadline: datetime
    used: timedelta  # working time
    left: timedelta  # working time; negative once the deadline has passed

    @property
    def late(self) -> bool:
        # at the deadline itself the breach is due, so the clock counts as late
        return self.left <= timedelta(0)


def standing(case: Case, clock: Clock, config: Config, now: datetime) -> Standing:
    """Working time used and left on a clock at `now`; a paused or met clock stands where it
    stopped. The deadline holds every pause before that point, so what is used is the target
    less what is left, with no need to know when the pauses were."""
    cal = calendar_of(case, config)
    end = clock.met_at or case.waiting_since or now
    if end <= clock.deadline:
        left = calendar.between(cal, end, clock.deadline)
    else:
        left = -calendar.between(cal, clock.deadline, end)
    target = calendar.between(cal, clock.started_at, _target_end(cal, clock))
    return Standing(clock.name, clock.target, clock.deadline, target - left, left)


def _target_end(cal: calendar.Calendar, clock: Clock) -> datetime:
    return calendar.add(cal, clock.started_at, calendar.parse_duration(clock.target))


def words(span: timedelta) -> str:
    """ "1h 20m": a working-time span for people."""
    minutes = abs(int(span / timedelta(minutes=1)))
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h {rest:02d}m" if rest else f"{hours}h"
