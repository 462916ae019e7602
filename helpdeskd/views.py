"""Cases as scripts and people read them: the stable JSON of SPEC §9 and plain-text tables."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from helpdeskd.adapters.store import Cases, Reminders, Store, TimeSpent, parse_iso
from helpdeskd.config import Config
from helpdeskd.core import reply_due, sla
from helpdeskd.core.teamwork import duration
from helpdeskd.model import Case, Clock

OUT_KINDS = {"relay": "engineer"}


def local(moment: datetime | None, timezone: str) -> str | None:
    return None if moment is None else moment.astimezone(ZoneInfo(timezone)).isoformat()


def shown(moment: datetime | None, timezone: str) -> str:
    """A time for people: `2026-11-18 09:00 CST`, in one zone and always saying which."""
    if moment is None:
        return "-"
    at = moment.astimezone(ZoneInfo(timezone))
    return f"{at:%Y-%m-%d %H:%M} {at.tzname()}"


def shown_rows(rows: list[dict], columns: tuple[str, ...], timezone: str) -> list[dict]:
    """Rows whose stored UTC instants in `columns` are shown in the helpdesk's zone."""
    return [{**r, **{c: shown(parse_iso(r[c]), timezone) for c in columns}} for r in rows]


def case_timezone(case: Case, config: Config) -> str:
    return sla.calendar_of(case, config).timezone


def case_summary(case: Case, config: Config) -> dict:
    tz = case_timezone(case, config)
    return {
        "reference": case.reference,
        "status": case.status,
        "priority": case.priority,
        "customer": case.customer,
        "plan": case.plan,
        "subject": case.subject,
        "opened_at": local(case.opened_at, tz),
        "escalation_level": case.escalation_level,
        "assignee": case.assignee,
        "opener": case.opener,
        "related": case.related,
        "tier": sla.tier_of(case, config),
        "followers": list(case.followers),
        "participants": list(case.participants),
        "merged_into": case.merged_into,
        "reply_due": replies_owed(case, tz),
        "category": case.category,
        **_next_deadline(case, tz),
    }


def replies_owed(case: Case, tz: str) -> list[dict]:
    """Who owes the customer a written reply since its `#escalate`, and since when."""
    return [{"from": o.address, "since": local(o.since, tz)} for o in reply_due.owed(case)]


# `cases` as a table: the clock due first beside each case
CASES_COLUMNS = [
    "reference",
    "status",
    "priority",
    "customer",
    "plan",
    "opened_at",
    "next_clock",
    "next_deadline",
    "subject",
]


def _next_deadline(case: Case, tz: str) -> dict:
    """The running clock due first, by name, for `cases`."""
    first = min(sla.running(case), key=lambda c: c.deadline, default=None)
    return {
        "next_clock": first and first.name,
        "next_deadline": local(first.deadline, tz) if first else None,
    }


def case_detail(store: Store, case: Case, config: Config, now: datetime, full: bool) -> dict:
    tz = case_timezone(case, config)
    cases = Cases(store)
    return {
        **case_summary(case, config),
        "messages": [message_json(m, tz, full) for m in cases.messages(case.id)],
        "events": [
            {"at": local(parse_iso(e["at"]), tz), "kind": e["kind"], "detail": e["detail"]}
            for e in cases.events(case.id)
        ],
        "clocks": clocks_json(case, config, now),
        **teamwork_json(store, case, tz),
    }


def teamwork_json(store: Store, case: Case, tz: str) -> dict:
    """Pending reminders, and the minutes each engineer spent on the case."""
    reminders = [
        {"to": r["recipient"], "at": local(parse_iso(r["due_at"]), tz), "set_by": r["set_by"]}
        for r in Reminders(store).pending(case.id)
    ]
    return {"reminders": reminders, "time_minutes": TimeSpent(store).per_engineer(case.id)}


def message_json(row: dict, tz: str, full: bool) -> dict:
    kind = row["kind"]
    found = {
        "direction": row["direction"],
        "from": row["from_addr"],
        "to": json.loads(row["to_addrs"] or "[]"),
        "subject": row["subject"],
        "at": local(parse_iso(row["at"]), tz),
        "kind": OUT_KINDS.get(kind, kind),
        "message_id": row["message_id"],
        "body": row["body"],
    }
    if row["direction"] == "in":
        found["route_reason"] = row["route_reason"]
        found["auth"] = row.get("auth") or None
        found["entrance"] = row.get("entrance")
        found["attachments"] = json.loads(row["attachments"] or "[]")
    else:
        found["status"] = row["status"]
    if full:
        found["elided"] = row["elided"] or ""
    return found


def clocks_json(case: Case, config: Config, now: datetime) -> list[dict]:
    tz = case_timezone(case, config)
    return [clock_json(case, clock, config, now, tz) for clock in case.clocks or ()]


def clock_json(case: Case, clock: Clock, config: Config, now: datetime, tz: str) -> dict:
    """Where a clock stands. One not started yet, or with a text target ("next release"), has
    no deadline: `met` is null until it stops, then true."""
    running = clock.met_at is None
    found = {
        "name": clock.name,
        "target": clock.target,
        "calendar": clock.calendar,
        "timezone": tz,
        "starts": clock.starts,
        "stops": clock.stops,
        "started_at": local(clock.started_at, tz),
        "deadline": local(clock.deadline, tz),
        "warn_at": local(clock.warn_at, tz),
        "paused": clock.running and case.waiting_since is not None,
        "met": None if running else True,
        "met_at": local(clock.met_at, tz),
        "agreed": {"by": clock.agreed_by, "at": local(clock.agreed_at, tz)}
        if clock.agreed_at
        else None,
        "used_minutes": None,
        "left_minutes": None,
    }
    if clock.started_at is None or clock.deadline is None:
        return found
    stand = sla.standing(case, clock, config, now)
    return {
        **found,
        # null while the clock runs and can still be met; false once it is late
        "met": None if running and not stand.late else (not running and not stand.late),
        "used_minutes": int(max(stand.used, timedelta(0)) / timedelta(minutes=1)),
        "left_minutes": int(stand.left / timedelta(minutes=1)),
    }


def outbox_json(row: dict) -> dict:
    return {**row, "recipients": json.loads(row["recipients"] or "[]")}


def outbox_text(row: dict, timezone: str) -> dict:
    """An outbox row for people: recipients listed, the next try in the helpdesk's zone."""
    given_up = row["state"] == "failed"
    return {
        **row,
        "recipients": ", ".join(json.loads(row["recipients"] or "[]")),
        "next_try": "given up" if given_up else shown(parse_iso(row["next_attempt_at"]), timezone),
    }


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c), *(len(str(r.get(c) or "")) for r in rows)]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c) or "").ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def show_text(detail: dict, timezone: str) -> str:
    """`show` for people: the history in the helpdesk's zone, deadlines in their calendar's."""
    head = [
        f"{detail['reference']}  {detail['subject']}",
        f"status {detail['status']}  priority {detail['priority']}  plan {detail['plan']}  "
        f"customer {detail['customer'] or '-'}  escalation {detail['escalation_level']}  "
        f"assignee {detail['assignee'] or '-'}  tier {detail['tier']}",
    ]
    if detail["related"]:
        head.append(f"names {detail['related']}")
    if detail["followers"]:
        head.append(f"followers {', '.join(detail['followers'])}")
    if detail["merged_into"]:
        head.append(f"merged into {detail['merged_into']}")
    if detail["participants"]:
        head.append(f"participants {', '.join(detail['participants'])}")
    for owed in detail["reply_due"]:
        head.append(f"reply due from {owed['from']} since {shown_text(owed['since'], timezone)}")
    if detail.get("category"):
        head.append(f"category {detail['category']}")
    head.append("")
    head.append("clocks (deadlines in the calendar's time zone):")
    head += [_clock_line(c) for c in detail["clocks"]]
    head += _teamwork_lines(detail, timezone)
    head.append("")
    head.append(f"history ({timezone}):")
    entries = [(m["at"], _message_line(m, timezone)) for m in detail["messages"]]
    entries += [
        (e["at"], f"  {shown_text(e['at'], timezone)}  * {e['kind']}: {e['detail']}")
        for e in detail["events"]
    ]
    head += [line for _, line in sorted(entries, key=lambda e: datetime.fromisoformat(e[0]))]
    return "\n".join(head)


def _teamwork_lines(detail: dict, timezone: str) -> list[str]:
    lines = []
    if detail["reminders"]:
        lines += ["", "reminders:"]
        lines += [
            f"  {shown_text(r['at'], timezone)}  to {r['to']} (set by {r['set_by']})"
            for r in detail["reminders"]
        ]
    if detail["time_minutes"]:
        total = sum(detail["time_minutes"].values())
        lines += ["", f"time spent: {duration(total)}"]
        lines += [f"  {who}  {duration(m)}" for who, m in detail["time_minutes"].items()]
    return lines


def shown_text(text: str | None, timezone: str) -> str:
    """`shown` for an ISO 8601 text such as the JSON's."""
    return shown(datetime.fromisoformat(text) if text else None, timezone)


def _clock_line(c: dict) -> str:
    """Where a clock stands: a met clock says when, never what was 'left' when it stopped."""
    return f"  {c['name']:<15} target {c['target']:<5} {_clock_state(c)}{_agreed(c)}"


def _clock_state(c: dict) -> str:
    met_at = shown_text(c["met_at"], c["timezone"])
    if c["started_at"] is None:
        return f"waits for {c['starts']}"
    if c["deadline"] is None:
        return f"met {met_at}" if c["met_at"] else "running, no deadline"
    due = f"deadline {shown_text(c['deadline'], c['timezone'])}  "
    used = sla.words(timedelta(minutes=c["used_minutes"]))
    left = timedelta(minutes=c["left_minutes"])
    if c["met_at"]:
        if left <= timedelta(0):
            return due + f"met late {met_at}, {sla.words(left)} past it"
        return due + f"met {met_at}, {used} used"
    if left <= timedelta(0):
        return due + f"breached: {sla.words(left)} late"
    return due + f"{'paused' if c['paused'] else 'running'}: {used} used, {sla.words(left)} left"


def _agreed(c: dict) -> str:
    agreed = c.get("agreed")
    return (
        f"  (agreed by {agreed['by']}, {shown_text(agreed['at'], c['timezone'])})" if agreed else ""
    )


def _message_line(m: dict, timezone: str) -> str:
    arrow = "<-" if m["direction"] == "in" else "->"
    who = m["from"] if m["direction"] == "in" else ", ".join(m["to"])
    line = f"  {shown_text(m['at'], timezone)}  {arrow} {m['kind']:<15} {who}  {m['subject']}"
    if m.get("route_reason"):
        line += f"\n      routed: {m['route_reason']} (through {m.get('entrance') or 'unknown'})"
    if m.get("auth"):
        line += f"\n      sender: {m['auth']}"
    if m.get("status") and m["status"] != "sent":
        line += f"  [{m['status']}]"
    if m.get("elided"):
        line += "\n      quoted/elided:\n" + "\n".join(
            "        " + x for x in m["elided"].splitlines()
        )
    return line
