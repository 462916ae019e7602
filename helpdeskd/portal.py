"""What the status page shows each person: their cases, a case's customer-visible history, the
team's queue and a customer's month, read from the store and judged at `now`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from helpdeskd import report, views
from helpdeskd.adapters.store import Cases, Ratings, Store, parse_iso, raw_of
from helpdeskd.config import Config
from helpdeskd.core import access, sla, survey
from helpdeskd.core.access import Viewer
from helpdeskd.core.outcome import level_name
from helpdeskd.core.parse import ParseError, parse
from helpdeskd.model import Attachment, Case


def visible_cases(store: Store, viewer: Viewer) -> list[Case]:
    """Newest first: the customer's cases this viewer may see, and the cases they are on
    whatever customer's (a participant copied from another company)."""
    cases = Cases(store)
    found = cases.of_customer(viewer.customer) if viewer.customer else []
    if not viewer.representative:
        found += cases.of_person(viewer.address)
    unique = {c.id: c for c in found if access.may_see(viewer, c)}
    return sorted(unique.values(), key=lambda c: c.id, reverse=True)


def case_by_reference(store: Store, viewer: Viewer, reference: str) -> Case | None:
    """The case, or None when it does not exist or is not this viewer's: the page answers
    404 for both, so a reference guessed tells nothing."""
    case = Cases(store).get(reference.upper())
    return case if case is not None and access.may_see(viewer, case) else None


def listed(case: Case, config: Config) -> dict:
    """A case in a list: opened when, in the helpdesk's zone, as `helpdeskd cases` says it."""
    summary = views.case_summary(case, config)
    return {**summary, "opened_text": views.shown(case.opened_at, config.helpdesk.timezone)}


def case_page(
    store: Store, case: Case, config: Config, now: datetime, *, inside: bool = False
) -> dict:
    """What the case's page shows; `inside`: to an engineer, who may see escalation addresses.
    Times as `helpdeskd show` has them: the history in the helpdesk's zone, deadlines in the
    calendar's."""
    history = []
    for row in Cases(store).messages(case.id):
        to = json.loads(row["to_addrs"] or "[]")
        if access.customer_visible(row, case, to):
            history.append(history_entry(store, row, config.helpdesk.timezone))
    return {
        **listed(case, config),
        "escalated": escalated(config, case.escalation_level, inside),
        "clocks": [clock_line(c) for c in views.clocks_json(case, config, now)],
        "history": history,
        "closed": case.status in ("resolved", "closed"),
        # a rating answers the survey: offered once the customer was asked, as by mail
        "may_rate": survey.ASKED in case.notices and case.status in ("resolved", "closed"),
    }


CLOCK_STATES = {True: "met", False: "breached", None: "running"}  # by the clock's `met`


def escalated(config: Config, level: int, inside: bool) -> str:
    """Whether and to whom, as the customer's mail says it: the level's name; an engineer is
    told the first address notified when the level has no name (customers never see it)."""
    if level == 0:
        return "no"
    found = config.escalation[level - 1] if level <= len(config.escalation) else None
    if inside and found and not found.name and found.notify:
        return f"to {found.notify[0]}"
    return f"to {level_name(config, level)}"


def clock_line(clock: dict) -> dict:
    """A clock not started yet says so; one with a text target shows the text as its date."""
    state = "paused" if clock["paused"] else CLOCK_STATES[clock["met"]]
    if clock["started_at"] is None:
        state = "not started"
    has_date = clock["deadline"] or clock["target"][:1].isdigit()
    when = views.shown_text(clock["deadline"], clock["timezone"]) if has_date else None
    return {**clock, "state": state, "deadline_text": when or clock["target"]}


def history_entry(store: Store, row: dict, tz: str) -> dict:
    return {
        "id": row["id"],
        "direction": row["direction"],
        "from": row["from_addr"] if row["direction"] == "in" else "Support",
        "subject": row["subject"],
        "at": views.shown(parse_iso(row["at"]), tz),
        "body": row["body"] or "",
        "attachments": attachment_list(store, row),
    }


def attachment_list(store: Store, row: dict) -> list[dict]:
    if row["direction"] == "in":
        return json.loads(row["attachments"] or "[]")
    return [
        {"filename": a.filename, "content_type": a.content_type, "size": a.size}
        for a in attachments_of(store, row)
    ]


def attachments_of(store: Store, row: dict) -> tuple[Attachment, ...]:
    raw = raw_of(store, row)
    if raw is None:
        return ()
    try:
        return parse(raw).attachments
    except ParseError:
        return ()


def attachment(store: Store, case: Case, message_id: int, index: int) -> Attachment | None:
    """One attachment of a message the customer's side may see; None otherwise."""
    row = Cases(store).message(case.id, message_id)
    if row is None or not access.customer_visible(row, case, json.loads(row["to_addrs"] or "[]")):
        return None
    found = attachments_of(store, row)
    return found[index] if 0 <= index < len(found) else None


# -- engineers: the team's queue -------------------------------------------------------------


def queue(store: Store, config: Config, now: datetime) -> list[dict]:
    """Open cases, the nearest running deadline first; what is late or near it is flagged."""
    rows = [queue_row(case, config, now) for case in Cases(store).in_statuses(access.OPEN_STATUSES)]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(rows, key=lambda r: r["due"] or far)


def queue_row(case: Case, config: Config, now: datetime) -> dict:
    running = sla.running(case) if case.clocks else []
    nearest = min(running, key=lambda c: c.deadline, default=None)
    if case.status == "waiting":
        flag = "waiting on customer"
    elif nearest and nearest.deadline <= now:
        flag = "breached"
    elif nearest and nearest.warn_at <= now:
        flag = "near breach"
    else:
        flag = ""
    tz = views.case_timezone(case, config)
    return {
        **views.case_summary(case, config),
        "due": nearest.deadline if nearest else None,
        "due_text": views.shown(nearest.deadline, tz) if nearest else "-",
        "clock": nearest.name.replace("_", " ") if nearest else "",
        "flag": flag,
    }


# -- a customer's month ------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    first: date

    @classmethod
    def parse(cls, text: str | None, today: date) -> Month:
        if not text:
            return cls(today.replace(day=1))
        year, month = (int(x) for x in text.split("-"))
        return cls(date(year, month, 1))

    @property
    def next(self) -> date:
        return (self.first + timedelta(days=32)).replace(day=1)

    @property
    def label(self) -> str:
        return self.first.strftime("%B %Y")


def monthly(store: Store, config: Config, customer: str, month: Month, now: datetime) -> dict:
    """The figures the monthly report mails, for the month the contact chose."""
    since, until = report.month_bounds(
        month.first.year, month.first.month, config.helpdesk.timezone
    )
    cases = Cases(store)
    opened = [c for c in cases.opened_between(since, until) if c.customer == customer]
    closed = [c for c in cases.closed_between(since, until) if c.customer == customer]
    scores = [r["score"] for r in Ratings(store).between(since, until) if r["customer"] == customer]
    return {
        "customer": customer,
        "month": month.label,
        **report.customer_month(opened, closed, scores, config, now),
        "by_priority": _by_priority(opened),
    }


def _by_priority(cases: list[Case]) -> list[dict]:
    counts = {p: 0 for p in ("P1", "P2", "P3", "P4")}
    for case in cases:
        counts[case.priority] = counts.get(case.priority, 0) + 1
    top = max(counts.values(), default=0) or 1
    return [{"label": p, "value": n, "share": n / top} for p, n in counts.items()]
