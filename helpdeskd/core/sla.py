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

from helpdeskd.config import ClockRule, Config, EscalationLevel, Plan
from helpdeskd.config.agreements import BUILT_IN
from helpdeskd.core import calendar, reply_due
from helpdeskd.core.calendar import Duration
from helpdeskd.model import Case, Clock, Clocks

CLOSING_WARNING = "closing_warning@"
CLOSED = "closed:timeout"
SETTLED = ("resolved", "closed")
# timed out waiting on the customer, on a plan without auto_close: its service manager decides
PENDING_CLOSE = "pending_close"


def plan_of(case: Case, config: Config) -> Plan:
    """The case's plan; one removed from the config since falls back to the default plan."""
    return config.plans.get(case.plan) or config.plans[config.policy.default_plan]


def calendar_of(case: Case, config: Config) -> calendar.Calendar:
    return config.calendars[plan_of(case, config).calendar_for(case.priority)]


# -- the clocks -----------------------------------------------------------------------------


def escalation_of(case: Case, config: Config) -> tuple[EscalationLevel, ...]:
    """The plan's own ladder when it has one, else the helpdesk's."""
    ladder = plan_of(case, config).escalation
    return config.escalation if ladder is None else ladder


def clock_calendar(case: Case, clock: Clock, config: Config) -> calendar.Calendar:
    """The calendar a clock counts on; one removed from the config since falls back to the
    case's."""
    return config.calendars.get(clock.calendar) or calendar_of(case, config)


def _calendar_name(case: Case, rule: ClockRule, config: Config) -> str:
    """The clock's own calendar, else its tier's (a clock started by `tier N`), else the plan's
    for the priority."""
    tier = config.tiers.get(tier_number(rule.starts) or 0)
    if rule.calendar:
        return rule.calendar
    if tier and tier.calendar:
        return tier.calendar
    return plan_of(case, config).calendar_for(case.priority)


def tier_of(case: Case, config: Config) -> int:
    """The tier the case is with: the one it was handed to, else the plan's notify_tier."""
    return case.tier or plan_of(case, config).notify_tier


def tier_number(event: str) -> int | None:
    """ "tier 2" -> 2; None for other events."""
    return int(event.removeprefix("tier ")) if event.startswith("tier ") else None


def start_clocks(case: Case, config: Config) -> Case:
    """Deadlines of every clock of the case's plan for its priority, pushed back by the working
    time spent waiting. Called on opening, on resume, and when the priority or plan changes.
    Clocks start at their own event (`opened` ones at the opening); a clock already met keeps the
    deadline it was met against, an agreed one its agreed deadline. A clock whose target or
    calendar changed is a new promise, so its warning and breach may be sent again."""
    plan = plan_of(case, config)
    old = case.clocks or Clocks()
    clocks = [_clock(case, rule, plan, config, old.get(rule.name)) for rule in plan.rules]
    # a deadline agreed with the customer outlives a change of plan
    clocks += [c for c in old if plan.rule(c.name) is None and c.agreed_at]
    renewed = {
        f"{kind}:{new.name}"
        for new in clocks
        if _renewed(old.get(new.name), new)
        for kind in ("warn", "breach")
    }
    return replace(case, clocks=Clocks(tuple(clocks)), notices=case.notices - renewed)


def _renewed(before: Clock | None, new: Clock) -> bool:
    return before is not None and (before.target, before.calendar) != (new.target, new.calendar)


def _clock(case: Case, rule: ClockRule, plan: Plan, config: Config, old: Clock | None) -> Clock:
    if old is not None and (old.met_at is not None or old.agreed_at is not None):
        return old
    started = old.started_at if old else (case.opened_at if rule.starts == "opened" else None)
    clock = Clock(
        rule.name,
        str(rule.targets.get(case.priority, "")),
        _calendar_name(case, rule, config),
        started,
        None,
        None,
        starts=rule.starts,
        stops=rule.stops,
        paused_minutes=old.paused_minutes if old else 0,
    )
    return counted(case, clock, plan, config)


def counted(case: Case, clock: Clock, plan: Plan, config: Config) -> Clock:
    """The deadline and warning instant of a started clock with a duration as target."""
    if clock.started_at is None or not clock.target[:1].isdigit():
        unset = clock.deadline is None and clock.warn_at is None
        return clock if unset else replace(clock, deadline=None, warn_at=None)
    cal, target = clock_calendar(case, clock, config), calendar.parse_duration(clock.target)
    paused, due = clock.paused_minutes, calendar.add(cal, clock.started_at, target)
    warn = _pushed(cal, warn_instant(cal, clock.started_at, due, plan.warn_at), paused)
    return replace(clock, deadline=_pushed(cal, due, paused), warn_at=warn)


def _pushed(cal: calendar.Calendar, instant: datetime, minutes: int) -> datetime:
    # Adding zero would move a deadline that falls exactly at closing time to the next opening.
    return calendar.add(cal, instant, Duration(minutes, "m")) if minutes else instant


def warn_instant(
    cal: calendar.Calendar, start: datetime, deadline: datetime, fraction: float
) -> datetime:
    """`fraction` of the working time from `start` to the (unpaused) `deadline`."""
    total = calendar.between(cal, start, deadline)
    return calendar.add(cal, start, Duration(int(total / timedelta(minutes=1) * fraction), "m"))


def start(case: Case, event: str, config: Config, now: datetime) -> tuple[Case, list[str]]:
    """Start the clocks waiting for `event` (escalated, tier N); returns the case and the names
    of the clocks it started. A clock starts once: a second escalation leaves it be."""
    plan, started = plan_of(case, config), []
    clocks = case.clocks or Clocks()
    for clock in clocks:
        if clock.started_at is None and clock.starts == event:
            clocks = clocks.put(counted(case, replace(clock, started_at=now), plan, config))
            started.append(clock.name)
    return replace(case, clocks=clocks), started


def agree(
    case: Case, name: str, deadline: datetime, by: str, config: Config, now: datetime
) -> Case:
    """A deadline agreed with the customer (#due): it replaces the plan's target for that clock
    (created when the plan has none), warnings and escalation count from it, and it may be
    warned about and breached afresh."""
    plan = plan_of(case, config)
    clock = agreed_clock(case, name, config)
    cal = clock_calendar(case, clock, config)
    # warned at warn_at of the time from the agreement to the agreed deadline
    warn = warn_instant(cal, now, deadline, plan.warn_at)
    clock = replace(
        clock,
        started_at=clock.started_at or now,
        deadline=deadline,
        warn_at=min(warn, deadline),
        agreed_by=by,
        agreed_at=now,
    )
    notices = case.notices - {f"warn:{name}", f"breach:{name}"}
    return replace(case, clocks=(case.clocks or Clocks()).put(clock), notices=notices)


def agreed_clock(case: Case, name: str, config: Config) -> Clock:
    """The clock a deadline is agreed for: the case's, else (a plan without a resolution
    clock) a new one running from the opening."""
    if case.clocks and case.clocks.get(name):
        return case.clocks.get(name)
    starts, stops = BUILT_IN.get(name, ("opened", "resolved"))
    rule = ClockRule(name, starts, stops, {})
    cal = _calendar_name(case, rule, config)
    return Clock(name, "agreed", cal, case.opened_at, None, None, starts=starts, stops=stops)


def level_notify(case: Case, config: Config, level: int) -> tuple[str, ...]:
    """Who a level notifies: its addresses; the admins past the top of the ladder."""
    ladder = escalation_of(case, config)
    return ladder[level - 1].notify if level <= len(ladder) else config.helpdesk.admins


def escalated(case: Case, config: Config, level: int, now: datetime) -> Case:
    """An escalation to `level`, by hand or by the sweep: the clocks waiting for the first
    escalation start, and whoever the level notifies follows the case from now on."""
    case = start(case, "escalated", config, now)[0]
    followers = tuple(dict.fromkeys((*case.followers, *level_notify(case, config, level))))
    return replace(case, followers=followers)


def pause(case: Case, now: datetime) -> Case:
    """`waiting` on the customer stops the clocks until they answer."""
    return case if case.waiting_since else replace(case, waiting_since=now)


def resume(case: Case, config: Config, now: datetime) -> Case:
    """The working time spent waiting, on each clock's own calendar, is added to every running
    clock (a clock started while waiting counts from its start)."""
    if case.waiting_since is None:
        return case
    clocks = case.clocks or Clocks()
    for clock in [c for c in clocks if c.running]:
        cal = clock_calendar(case, clock, config)
        spent = calendar.between(cal, max(case.waiting_since, clock.started_at), now)
        added = clock.paused_minutes + int(spent / timedelta(minutes=1))
        clocks = clocks.put(replace(clock, paused_minutes=added))
    spent = calendar.between(calendar_of(case, config), case.waiting_since, now)
    paused = case.paused_minutes + int(spent / timedelta(minutes=1))
    return start_clocks(
        replace(case, waiting_since=None, paused_minutes=paused, clocks=clocks), config
    )


def meet(case: Case, name: str, now: datetime) -> Case:
    """Stop one clock by name, if it runs."""
    clock = (case.clocks or Clocks()).get(name)
    if clock is None or not clock.running:
        return case
    return replace(case, clocks=case.clocks.put(replace(clock, met_at=now)))


def stop(case: Case, event: str, now: datetime) -> tuple[Case, list[str]]:
    """Stop every running clock that stops at `event` (reply, resolved, #plan, #workaround);
    returns the case and the names of the clocks met. The first engineer reply meets the
    first-response clock, resolving meets resolution."""
    names = [c.name for c in case.clocks or () if c.running and c.stops == event]
    for name in names:
        case = meet(case, name, now)
    return case, names


def stop_all(case: Case, now: datetime) -> tuple[Case, list[str]]:
    """Every running clock stops now (a category the agreement does not cover)."""
    names = [c.name for c in running(case)]
    for name in names:
        case = meet(case, name, now)
    return case, names


def settle(case: Case, now: datetime) -> Case:
    """Resolved or closed: the clocks that stop at `resolved` are met, and the time until a
    reopening, if one comes, is paused time, as waiting is."""
    return pause(stop(case, "resolved", now)[0], now)


def reopen(case: Case, config: Config, now: datetime) -> Case:
    """A reopened case runs its `resolved` clocks again from where they stood; the others stay
    as they are."""
    clocks = case.clocks or Clocks()
    for clock in clocks:
        if clock.stops == "resolved" and clock.met_at is not None:
            clocks = clocks.put(replace(clock, met_at=None))
    return resume(replace(case, clocks=clocks), config, now)


def promised_reply(case: Case, config: Config) -> str | None:
    """ "2 working hours": the first clock that an engineer's reply stops, in words for the
    customer's acknowledgement; None when the plan promises no reply time."""
    clock = next((c for c in running(case) if c.stops == "reply"), None)
    if clock is None or not clock.target[:1].isdigit():
        return None
    always = clock_calendar(case, clock, config).always_open
    return calendar.parse_duration(clock.target).describe(always_open=always)


def running(case: Case) -> list[Clock]:
    """The clocks that run towards a deadline: started, not met, with a duration or agreed
    deadline (a "next release" clock is never warned)."""
    return [c for c in case.clocks or () if c.running and c.deadline is not None]


# -- what the case still owes ---------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """One notice not yet sent, and the instant it falls due."""

    kind: str  # warn | breach | escalate | closing_warning | close | reply_due
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
    owed = reply_due_pending(case, config)
    if case.waiting_since is not None:
        return (closing_pending(case, config) if case.status == "waiting" else []) + owed
    return clock_pending(case) + escalation_pending(case, config) + owed


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
    clocks = running(case)
    found = []
    for number, level in enumerate(escalation_of(case, config), start=1):
        if number <= case.escalation_level or f"escalate:{number}" in case.notices or not clocks:
            continue
        at, clock = min(
            (level_instant(clock_calendar(case, c, config), c, level), c.name) for c in clocks
        )
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


REPLY_REMINDER_AFTER = Duration(1, "d")  # of working time, on the case's calendar


def reply_due_pending(case: Case, config: Config) -> list[Pending]:
    """A reminder to whoever owes the customer a reply, one working day after it was owed."""
    cal = calendar_of(case, config)
    return [
        Pending("reply_due", key, calendar.add(cal, o.since, REPLY_REMINDER_AFTER))
        for o in reply_due.owed(case)
        if (key := reply_due.reminded(o.address)) not in case.notices
    ]


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

    kind: str  # warn | breach | escalate | closing_warning | close | reply_due
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
        *(Action(p.kind, p.at, frozenset({p.key})) for p in due if p.kind == "reply_due"),
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
        case = escalated(case, config, action.level, now)
        return replace(case, escalation_level=level, updated_at=now)
    if action.kind == "close" and not plan_of(case, config).terms.auto_close:
        # the clocks stay paused: the plan's service manager closes it, or keeps it
        return replace(case, status=PENDING_CLOSE, updated_at=now)
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
    """Working time used and left on a clock with a deadline at `now`; a paused or met clock
    stands where it stopped. The deadline holds every pause before that point, so what is used
    is the span to the deadline less the pauses and what is left."""
    cal = clock_calendar(case, clock, config)
    end = clock.met_at or case.waiting_since or now
    if end <= clock.deadline:
        left = calendar.between(cal, end, clock.deadline)
    else:
        left = -calendar.between(cal, clock.deadline, end)
    # the span to the deadline holds the pauses before it, which are not time used
    paused = timedelta(minutes=clock.paused_minutes)
    target = calendar.between(cal, clock.started_at, clock.deadline) - paused
    return Standing(clock.name, clock.target, clock.deadline, target - left, left)


def words(span: timedelta) -> str:
    """ "1h 20m": a working-time span for people."""
    minutes = abs(int(span / timedelta(minutes=1)))
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h {rest:02d}m" if rest else f"{hours}h"
