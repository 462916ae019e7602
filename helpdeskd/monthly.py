"""The monthly service report: on the first working day of a month (the default plan's calendar,
months counted in the helpdesk's time zone), each customer's primary and stand-in contacts and
its nominated report viewers get last month's figures, plain text with an HTML alternative that
draws them as bars.

It runs with every sweep and costs one lookup per customer until it is due. What was sent is
recorded (`sent_once`), in the transaction that queues it, so each customer gets one report a
month however often the sweep runs, and a daemon stopped on that day sends it when it starts.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from helpdeskd import report, timesheet
from helpdeskd.adapters.store import Cases, Ratings, SentOnce, Store, TimeSpent
from helpdeskd.config import Config, Customer
from helpdeskd.core import calendar, sla
from helpdeskd.core.teamwork import duration
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail

log = structlog.get_logger("helpdeskd.monthly")


def due_month(config: Config, now: datetime) -> tuple[int, int] | None:
    """The (year, month) whose report is due at `now`: last month, once this month's first
    working time has begun; None before that."""
    zone = ZoneInfo(config.helpdesk.timezone)
    local = now.astimezone(zone)
    first = datetime(local.year, local.month, 1, tzinfo=zone)
    plan = config.plans[config.policy.default_plan]
    if now < calendar.next_opening(config.calendars[plan.calendar], first):
        return None
    return (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)


def key(customer: Customer, month: tuple[int, int]) -> str:
    return f"monthly_report:{customer.name}:{month[0]:04d}-{month[1]:02d}"


def run(store: Store, config: Config, now: datetime, *, dry_run: bool = False) -> list[dict]:
    """Queue the reports due at `now` (or, dry, list them); one entry per customer, as the
    sweep lists its actions."""
    month = due_month(config, now) if config.policy.monthly_report else None
    if month is None:
        return []
    sent = SentOnce(store).sent([key(c, month) for c in config.customers])
    waiting = [c for c in config.customers if c.report_readers and key(c, month) not in sent]
    if not waiting:
        return []
    start, end = report.month_bounds(*month, config.helpdesk.timezone)
    cases = Cases(store)
    if not cases.any_opened_before(end):
        # no case at all by the month's end: the helpdesk was not in service yet, and a first
        # start would otherwise greet every customer with a report of nothing
        if not dry_run:
            with store.transaction():
                for customer in waiting:
                    SentOnce(store).claim(key(customer, month), now)
        return []
    figures = report.monthly_figures(
        cases.opened_between(start, end),
        cases.closed_between(start, end),
        Ratings(store).between(start, end),
        config,
        now,
    )
    spent = TimeSpent(store).between(start, end)
    for name, found in figures.items():
        found["time_minutes"] = timesheet.of_customer(spent, name)
    return [send(store, config, c, month, figures[c.name], now, dry_run) for c in waiting]


def send(
    store: Store,
    config: Config,
    customer: Customer,
    month: tuple[int, int],
    figures: dict,
    now: datetime,
    dry_run: bool,
) -> dict:
    mail = report_mail(customer, month, figures, key(customer, month))
    entry = {
        "reference": None,
        "action": "monthly_report",
        "customer": customer.name,
        "month": f"{month[0]:04d}-{month[1]:02d}",
        "to": list(mail.to),
        "figures": figures,
    }
    if not dry_run:
        with store.transaction():
            queued = queue_mail(store, config, mail, None, [], None, now)
        entry["to"] = queued["to"] if queued else []
        log.info("monthly report", customer=customer.name, month=entry["month"], to=entry["to"])
    return entry


def report_mail(customer: Customer, month: tuple[int, int], figures: dict, once: str) -> Mail:
    context = {
        "customer": customer.name,
        "month": date(*month, 1).strftime("%B %Y"),
        "figures": figures,
        "bars": bars(figures),
    }
    return Mail(
        "monthly_report",
        "monthly_report",
        customer.report_readers,
        context,
        automatic="auto-generated",
        threaded=False,
        once=once,
    )


def bars(figures: dict) -> list[dict]:
    """The figures as bars: counts against the largest count, shares against 100%, the
    satisfaction against 5."""
    counts = [("Cases opened", figures["opened"]), ("Cases closed", figures["closed"])]
    counts.append(("Escalated cases", figures["escalated"]))
    top = max(value for _, value in counts) or 1
    found = [bar(label, str(value), value / top) for label, value in counts]
    for name in figures.get("clocks", ("first_response", "resolution")):
        clock = figures[name]
        share = clock["percent"]
        text = "-" if share is None else f"{share}% ({clock['met']} of {clock['judged']})"
        if clock.get("median_minutes") is not None:
            text += (
                f"; median {_span(clock['median_minutes'])}, mean {_span(clock['mean_minutes'])}"
            )
        label = f"{name.replace('_', ' ').capitalize()} met"
        found.append(bar(label, text, (share or 0) / 100))
    categories = figures.get("categories", {})
    top = max(categories.values(), default=0) or 1
    found += [bar(f"Category {n}", str(v), v / top) for n, v in categories.items()]
    score = figures["satisfaction"]
    count = figures["ratings"]
    text = "-" if score is None else f"{score} of 5 ({count} rating{'' if count == 1 else 's'})"
    found.append(bar("Satisfaction", text, (score or 0) / 5))
    if figures.get("time_minutes"):  # only customers someone recorded time for
        found.append(bar("Time spent", duration(figures["time_minutes"]), 1.0))
    return found


def _span(minutes: float) -> str:
    return sla.words(timedelta(minutes=round(minutes)))


def bar(label: str, text: str, fraction: float) -> dict:
    return {"label": label, "text": text, "width": round(100 * max(0.0, min(fraction, 1.0)))}
