"""SLA compliance per plan, priority and customer: what `helpdeskd report` prints.

Each clock of each case is judged at `now`, as `show` judges it: `breached` once it is late
(met after its deadline, or still running past it; at the deadline itself counts as late),
`met` when it was stopped in time, else `running` (a paused clock is running). Compliance is
met / (met + breached) as a percentage, null while nothing is judged. Each clock also gives the
median and the mean of the time it took, over the cases where it stopped: working time on the
clock's calendar, pauses left out. Every clock a plan names is listed by its name, after the
two built-in ones (first_response, resolution) that every report lists.
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

from helpdeskd.adapters.store import Cases, Store
from helpdeskd.config import Config
from helpdeskd.core import sla, survey
from helpdeskd.model import Case
from helpdeskd.names import REPORT_FORMATS, REPORT_PARTS
from helpdeskd.views import table

UNKNOWN = "(unknown sender)"
CLOCKS = ("first_response", "resolution")
STATES = ("met", "breached", "running")
FIGURES = (*STATES, "compliance", "median_minutes", "mean_minutes")
FORMATS = REPORT_FORMATS
AVERAGES = ["median_first_response_minutes", "mean_first_response_minutes"]


def csv_columns(names: Iterable[str] = CLOCKS) -> list[str]:
    keys = [f"{name}_{k}" for name in names for k in FIGURES]
    return ["plan", "priority", "customer", "cases", *keys, *AVERAGES]


CSV_COLUMNS = csv_columns()


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
    names = clock_names(c for group in groups.values() for c in group)
    return [group_row(key, groups[key], config, now, names) for key in sorted(groups, key=_order)]


def clock_names(cases: Iterable[Case]) -> list[str]:
    """The built-in clocks, then every other clock of these cases in the order first met."""
    found = dict.fromkeys(CLOCKS)
    for case in cases:
        found.update(dict.fromkeys(c.name for c in case.clocks or ()))
    return list(found)


def _order(key: tuple) -> tuple:
    plan, priority, customer = key
    return plan, priority, customer is None, customer or ""


def group_row(
    key: tuple, cases: list[Case], config: Config, now: datetime, names: list[str] = CLOCKS
) -> dict:
    plan, priority, customer = key
    clocks = {name: clock_figures(cases, name, config, now) for name in names}
    return {
        "plan": plan,
        "priority": priority,
        "customer": customer,
        "cases": len(cases),
        **clocks,
        "median_first_response_minutes": clocks["first_response"]["median_minutes"],
        "mean_first_response_minutes": clocks["first_response"]["mean_minutes"],
    }


def clock_figures(cases: list[Case], name: str, config: Config, now: datetime) -> dict:
    minutes = taken(cases, name, config, now)
    return {
        **tally([clock_state(c, name, config, now) for c in cases]),
        "median_minutes": statistics.median(minutes) if minutes else None,
        "mean_minutes": round(statistics.mean(minutes), 1) if minutes else None,
    }


def clock_state(case: Case, name: str, config: Config, now: datetime) -> str | None:
    """met, breached or running at `now`; None for a case without that clock, or with one not
    started yet. A clock without a deadline ("next release") is met once stopped."""
    clock = case.clocks.get(name) if case.clocks else None
    if clock is None or clock.started_at is None:
        return None
    if clock.deadline is not None and sla.standing(case, clock, config, now).late:
        return "breached"
    return "running" if clock.met_at is None else "met"


def tally(states: list[str | None]) -> dict:
    counts = {state: states.count(state) for state in STATES}
    judged = counts["met"] + counts["breached"]
    return {**counts, "compliance": round(100 * counts["met"] / judged, 1) if judged else None}


def taken(cases: list[Case], name: str, config: Config, now: datetime) -> list[int]:
    """Working minutes each stopped clock of that name ran (for first_response: from opening to
    the first engineer reply), pauses left out."""
    clocks = [(c, c.clocks.get(name)) for c in cases if c.clocks]
    return [
        int(sla.standing(case, clock, config, now).used / timedelta(minutes=1))
        for case, clock in clocks
        if clock and clock.met_at and clock.deadline and clock.started_at
    ]


# -- the formats ----------------------------------------------------------------------------


def render(rows: list[dict], form: str) -> str:
    return {"table": as_table, "csv": as_csv, "json": as_json}[form](rows)


def as_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)


def names_of(rows: list[dict]) -> list[str]:
    """The clocks of a report's rows (every row lists the same)."""
    return [k for k, v in rows[0].items() if isinstance(v, dict)] if rows else list(CLOCKS)


def flat(row: dict) -> dict:
    """One level of keys, `first_response_met` and so on, for spreadsheets."""
    found = {**row, "customer": row["customer"] or UNKNOWN}
    for name in names_of([row]):
        found.update({f"{name}_{k}": v for k, v in found.pop(name).items()})
    return found


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, csv_columns(names_of(rows)), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat(r) for r in rows)
    return out.getvalue().rstrip("\n")


TABLE_LEGEND = (
    "fr: first response, res: resolution; % = met / (met + breached); "
    "median, mean: time the clock ran until met, in working time"
)
SHORT = {"first_response": "fr", "resolution": "res"}


def as_table(rows: list[dict]) -> str:
    if not rows:
        return "no cases"
    lines = [table_row(r) for r in rows]
    return table(lines, list(lines[0])) + "\n\n" + TABLE_LEGEND


def table_row(row: dict) -> dict:
    found = {k: str(row[k]) for k in ("plan", "priority", "customer", "cases")}
    found["customer"] = row["customer"] or UNKNOWN
    for name in names_of([row]):
        clock, short = row[name], SHORT.get(name, name)
        found.update({f"{short} {k}": str(clock[k]) for k in STATES})
        found[f"{short} %"] = "-" if clock["compliance"] is None else f"{clock['compliance']}%"
        for average in ("median", "mean"):
            found[f"{short} {average}"] = _span(clock[f"{average}_minutes"])
    return found


def _span(minutes: float | None) -> str:
    return "-" if minutes is None else sla.words(timedelta(minutes=round(minutes)))


# -- satisfaction and fair use --------------------------------------------------------------

PARTS = REPORT_PARTS
UNASSIGNED = "(unassigned)"
SATISFACTION_COLUMNS = ["by", "name", "asked", "rated", "average", "response_rate"]
FAIR_USE_COLUMNS = ["customer", "plan", "cases", "median", "threshold", "cap", "why"]
CATEGORY_COLUMNS = ["category", "cases"]
PART_COLUMNS = {
    "satisfaction": SATISFACTION_COLUMNS,
    "fair-use": FAIR_USE_COLUMNS,
    "categories": CATEGORY_COLUMNS,
}
PART_TITLES = {"satisfaction": "Satisfaction", "fair-use": "Fair use", "categories": "Categories"}
UNCATEGORISED = "(none)"


def satisfaction(cases: Iterable[Case], ratings: dict[int, dict]) -> list[dict]:
    """Survey tally per plan, customer and engineer (the assignee): how many were asked, how
    many answered, their average score and the response rate (answered / asked, %)."""
    asked = [c for c in cases if survey.ASKED in c.notices]
    keys = {
        "plan": lambda c: c.plan,
        "customer": lambda c: c.customer or UNKNOWN,
        "engineer": lambda c: c.assignee or UNASSIGNED,
    }
    rows = []
    for by, key in keys.items():
        groups: dict[str, list[Case]] = defaultdict(list)
        for case in asked:
            groups[key(case)].append(case)
        rows += [survey_row(by, name, groups[name], ratings) for name in sorted(groups)]
    return rows


def survey_row(by: str, name: str, cases: list[Case], ratings: dict[int, dict]) -> dict:
    scores = [ratings[c.id]["score"] for c in cases if c.id in ratings]
    return {
        "by": by,
        "name": name,
        "asked": len(cases),
        "rated": len(scores),
        "average": round(statistics.mean(scores), 2) if scores else None,
        "response_rate": round(100 * len(scores) / len(cases), 1),
    }


def fair_use(cases: Iterable[Case], config: Config) -> list[dict]:
    """Customers whose new cases in the period exceed `fair_use_multiple` times the median per
    customer (over the customers who opened any), or their plan's `fair_use_cap`."""
    counts: dict[str, int] = defaultdict(int)
    plans: dict[str, str] = {}
    for case in cases:
        if case.customer:
            counts[case.customer] += 1
            plans[case.customer] = case.plan
    return flagged(counts, plans, config)


def flagged(counts: dict[str, int], plans: dict[str, str], config: Config) -> list[dict]:
    """The fair-use rows of customers' case counts in a period (and the plan of each)."""
    if not counts:
        return []
    median = statistics.median(counts.values())
    threshold = median * config.policy.fair_use_multiple
    rows = []
    for customer in sorted(counts, key=lambda c: (-counts[c], c)):
        plan = config.plans.get(plans[customer])
        cap = plan.fair_use_cap if plan else None
        why = []
        if counts[customer] > threshold:
            why.append(f"{counts[customer] / median:.1f}x the median")
        if cap is not None and counts[customer] > cap:
            why.append(f"over the {plans[customer]} plan's cap of {cap}")
        if why:
            rows.append(
                {
                    "customer": customer,
                    "plan": plans[customer],
                    "cases": counts[customer],
                    "median": median,
                    "threshold": threshold,
                    "cap": cap,
                    "why": "; ".join(why),
                }
            )
    return rows


def fair_use_period(config: Config, now: datetime) -> str:
    """The period a fair-use notice goes once in: the month, in the helpdesk's zone."""
    return f"{now.astimezone(ZoneInfo(config.helpdesk.timezone)):%Y-%m}"


def flagged_this_month(store: Store, config: Config, now: datetime) -> dict[str, str]:
    """The customers flagged for fair use this month so far, and why."""
    local = now.astimezone(ZoneInfo(config.helpdesk.timezone))
    start, _ = month_bounds(local.year, local.month, config.helpdesk.timezone)
    counts, plans = Cases(store).opened_per_customer(start)
    return {row["customer"]: row["why"] for row in flagged(counts, plans, config)}


def categories(cases: Iterable[Case]) -> list[dict]:
    """Cases per category (#category), the most frequent first: what the customers need,
    training included, read from the statistics. None while no case has a category."""
    return [{"category": name, "cases": n} for name, n in category_counts(cases).items()]


def category_counts(cases: Iterable[Case]) -> dict[str, int]:
    """Cases per category, the most frequent first; empty while none has a category."""
    counts: dict[str, int] = defaultdict(int)
    for case in cases:
        counts[case.category or UNCATEGORISED] += 1
    if set(counts) <= {UNCATEGORISED}:
        return {}
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def render_parts(parts: dict[str, list[dict]], form: str, part: str | None) -> str:
    """A table shows every part that has rows; csv and json one part, SLA compliance unless
    `part` names another (their SLA output stays what scripts already read)."""
    if form != "table":
        chosen = part or "sla"
        if chosen == "sla":
            return render(parts["sla"], form)
        return as_json(parts[chosen]) if form == "json" else plain_csv(parts[chosen], chosen)
    if part:
        return part_table(part, parts[part])
    shown = [as_table(parts["sla"])]
    shown += [part_table(name, parts[name]) for name in PARTS[1:] if parts[name]]
    return "\n\n".join(shown)


def part_table(name: str, rows: list[dict]) -> str:
    if name == "sla":
        return as_table(rows)
    title, columns = PART_TITLES[name], PART_COLUMNS[name]
    if not rows:
        return f"{title}: nothing to show"
    shown = [{k: "-" if r[k] is None else str(r[k]) for k in columns} for r in rows]
    return f"{title}\n{table(shown, columns)}"


def plain_csv(rows: list[dict], name: str) -> str:
    columns = PART_COLUMNS[name]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


# -- the monthly service report ------------------------------------------------------------


def month_bounds(year: int, month: int, timezone: str) -> tuple[datetime, datetime]:
    """[first of the month, first of the next) as UTC instants, in the helpdesk's zone."""
    following = date(year + month // 12, month % 12 + 1, 1)
    return window(date(year, month, 1), following, timezone)


def monthly_figures(
    opened: list[Case], closed: list[Case], ratings: list[dict], config: Config, now: datetime
) -> dict[str, dict]:
    """Each customer's month: cases opened and closed, first response and resolution met (of
    the cases opened, judged at `now`), escalated cases, and the ratings given in the month."""
    found = {}
    for name in (c.name for c in config.customers):
        found[name] = customer_month(
            [c for c in opened if c.customer == name],
            [c for c in closed if c.customer == name],
            [r["score"] for r in ratings if r["customer"] == name],
            config,
            now,
        )
    return found


def customer_month(
    opened: list[Case], closed: list[Case], scores: list[int], config: Config, now: datetime
) -> dict:
    figures: dict = {"opened": len(opened), "closed": len(closed), "clocks": clock_names(opened)}
    for name in figures["clocks"]:
        found = clock_figures(opened, name, config, now)
        figures[name] = {
            "met": found["met"],
            "judged": found["met"] + found["breached"],
            "percent": found["compliance"],
            "median_minutes": found["median_minutes"],
            "mean_minutes": found["mean_minutes"],
        }
    figures["escalated"] = sum(1 for c in opened if c.escalation_level > 0)
    if categories := category_counts(opened):
        figures["categories"] = categories
    figures["ratings"] = len(scores)
    figures["satisfaction"] = round(statistics.mean(scores), 2) if scores else None
    return figures
