"""SLA compliance per plan, priority and customer: what `helpdeskd report` prints.

Each clock of each case is judged at `now`, as `show` judges it: `breached` once it is late
(met after its deadline, or still running past it; at the deadline itself counts as late),
`met` when it was stopped in time, else `running` (a paused clock is running). Compliance is
met / (met + breached) as a percentage, null while nothing is judged. Times are working time
on the case's calendar, pauses left out.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from helpdeskd.config import Config
from helpdeskd.core import sla
from helpdeskd.model import Case
from helpdeskd.views import table

UNKNOWN = "(unknown sender)"
CLOCKS = ("first_response", "resolution")
STATES = ("met", "breached", "running")
FORMATS = ("table", "csv", "json")
CSV_COLUMNS = [
    "plan",
    "priority",
    "customer",
    "cases",
    *(f"{name}_{k}" for name in CLOCKS for k in (*STATES, "compliance")),
    "median_first_response_minutes",
]


def window(
    since: date | None, until: date | None, timezone: str
) -> tuple[datetime | None, datetime | None]:
    """[since, until) as UTC instants: each date starts at midnight in the helpdesk's zone."""
    return _midnight(since, timezone), _midnight(until, timezone)


def _midnight(day: date | None, timezone: str) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC)


# -- the figures ----------------------------------------------------------------------------


def compliance(cases: Iterable[Case], config: Config, now: datetime) -> list[dict]:
    """One row per (plan, priority, customer), in that order; unknown senders last."""
    groups: dict[tuple, list[Case]] = defaultdict(list)
    for case in cases:
        groups[(case.plan, case.priority, case.customer)].append(case)
    return [group_row(key, groups[key], config, now) for key in sorted(groups, key=_order)]


def _order(key: tuple) -> tuple:
    plan, priority, customer = key
    return plan, priority, customer is None, customer or ""


def group_row(key: tuple, cases: list[Case], config: Config, now: datetime) -> dict:
    plan, priority, customer = key
    return {
        "plan": plan,
        "priority": priority,
        "customer": customer,
        "cases": len(cases),
        **{name: tally([clock_state(c, name, config, now) for c in cases]) for name in CLOCKS},
        "median_first_response_minutes": median_first_response(cases, config, now),
    }


def clock_state(case: Case, name: str, config: Config, now: datetime) -> str | None:
    """met, breached or running at `now`; None for a case without clocks."""
    if case.clocks is None:
        return None
    clock = getattr(case.clocks, name)
    if sla.standing(case, clock, config, now).late:
        return "breached"
    return "running" if clock.met_at is None else "met"


def tally(states: list[str | None]) -> dict:
    counts = {state: states.count(state) for state in STATES}
    judged = counts["met"] + counts["breached"]
    return {**counts, "compliance": round(100 * counts["met"] / judged, 1) if judged else None}


def median_first_response(cases: list[Case], config: Config, now: datetime) -> float | None:
    """Working minutes from opening to the first engineer reply, over the cases answered."""
    minutes = [
        int(sla.standing(c, c.clocks.first_response, config, now).used / timedelta(minutes=1))
        for c in cases
        if c.clocks and c.clocks.first_response.met_at
    ]
    return statistics.median(minutes) if minutes else None


# -- the formats ----------------------------------------------------------------------------


def render(rows: list[dict], form: str) -> str:
    return {"table": as_table, "csv": as_csv, "json": as_json}[form](rows)


def as_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)


def flat(row: dict) -> dict:
    """One level of keys, `first_response_met` and so on, for spreadsheets."""
    found = {**row, "customer": row["customer"] or UNKNOWN}
    for name in CLOCKS:
        found.update({f"{name}_{k}": v for k, v in found.pop(name).items()})
    return found


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat(r) for r in rows)
    return out.getvalue().rstrip("\n")


TABLE_LEGEND = (
    "fr: first response, res: resolution; % = met / (met + breached); "
    "median: time to first response, in working time"
)


def as_table(rows: list[dict]) -> str:
    if not rows:
        return "no cases"
    lines = [table_row(r) for r in rows]
    return table(lines, list(lines[0])) + "\n\n" + TABLE_LEGEND


def table_row(row: dict) -> dict:
    found = {k: str(row[k]) for k in ("plan", "priority", "customer", "cases")}
    found["customer"] = row["customer"] or UNKNOWN
    for name, short in zip(CLOCKS, ("fr", "res"), strict=True):
        clock = row[name]
        found.update({f"{short} {k}": str(clock[k]) for k in STATES})
        found[f"{short} %"] = "-" if clock["compliance"] is None else f"{clock['compliance']}%"
    median = row["median_first_response_minutes"]
    found["median fr"] = "-" if median is None else sla.words(timedelta(minutes=median))
    return found
