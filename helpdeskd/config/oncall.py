"""[oncall]: who is paged for urgent cases outside the team's working hours.

A weekly rota: `rotation` in order, the first person's first shift beginning at the first
`handover` ("mon 09:00", the team calendar's zone) on or after `starts`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from helpdeskd.config.reader import Reader
from helpdeskd.core.calendar import Calendar, Duration
from helpdeskd.names import PRIORITIES

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class OnCall:
    rotation: tuple[str, ...]
    starts: date
    handover_day: int  # Monday is 0
    handover_at: time
    team_calendar: str  # whose working hours the team covers without paging
    ack_within: Duration
    priorities: tuple[str, ...] = ("P1",)
    plans: tuple[str, ...] = ()  # empty: every plan


def _oncall(
    r: Reader, t: dict, calendars: dict[str, Calendar], engineers: frozenset[str]
) -> OnCall | None:
    if not t:
        return None
    p = "oncall"
    r.unknown(
        t, p, {"rotation", "starts", "handover", "team_calendar", "priorities", "plans",
               "ack_within"},
    )  # fmt: skip
    rotation = r.addresses(t, "rotation", p)
    if not rotation:
        r.problem(f"{p}.rotation", "name at least one engineer's address")
    for i, address in enumerate(rotation):
        _engineer(r, address, f"{p}.rotation[{i}]", engineers)
    starts = r.required(t, "starts", p, (str, date))
    try:
        starts = date.fromisoformat(str(starts)) if starts is not None else date.min
    except ValueError:
        r.problem(f"{p}.starts", f"{starts!r} is not a date: write it as YYYY-MM-DD")
        starts = date.min
    day, at = _handover(r, r.get(t, "handover", p, str, "mon 09:00"))
    calendar = r.required(t, "team_calendar", p, str)
    if calendar is not None and calendar not in calendars:
        r.problem(f"{p}.team_calendar", f"unknown calendar {calendar!r}")
    priorities = r.strings(t, "priorities", p) or ("P1",)
    for priority in priorities:
        if priority not in PRIORITIES:
            r.problem(f"{p}.priorities", f"unknown priority {priority!r}")
    return OnCall(
        rotation=rotation,
        starts=starts,
        handover_day=day,
        handover_at=at,
        team_calendar=calendar or "",
        ack_within=r.duration(t, "ack_within", p, None) or Duration(15, "m"),
        priorities=priorities,
        plans=r.strings(t, "plans", p),
    )


def _engineer(r: Reader, address: str | None, path: str, engineers: frozenset[str]) -> None:
    """Pages go to engineers: another address would be paged without being able to `#ack`."""
    if address and address not in engineers:
        r.problem(path, f'"{address}" is not one of [[engineers]]')


def _handover(r: Reader, text: str) -> tuple[int, time]:
    day, _, at = text.lower().partition(" ")
    try:
        return DAYS.index(day), time.fromisoformat(at.strip().zfill(5))
    except ValueError:
        r.problem("oncall.handover", f'{text!r} is not a weekly moment: write it as "mon 09:00"')
        return 0, time(9)
