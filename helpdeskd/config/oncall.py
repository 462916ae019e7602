"""[oncall]: who is paged for urgent cases outside the team's working hours.

Either a weekly rota: `rotation` in order, the first person's first shift beginning at the first
`handover` ("mon 09:00", the team calendar's zone) on or after `starts`; or dated `shifts`
(`{ who, from, until }`, the team calendar's zone too), with nobody on call between them."""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from helpdeskd.config.reader import Reader
from helpdeskd.core.calendar import Calendar, Duration
from helpdeskd.names import PRIORITIES

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = {"rotation", "starts", "handover", "shifts", "team_calendar", "priorities", "plans",
        "ack_within", "page_command"}  # fmt: skip
ROTA_ONLY = ("starts", "handover")


@dataclass(frozen=True)
class Shift:
    who: str
    begins: datetime  # aware, in the team calendar's zone
    ends: datetime


@dataclass(frozen=True)
class OnCall:
    rotation: tuple[str, ...]  # empty when `shifts` are given instead
    starts: date
    handover_day: int  # Monday is 0
    handover_at: time
    team_calendar: str  # whose working hours the team covers without paging
    ack_within: Duration
    priorities: tuple[str, ...] = ("P1",)
    plans: tuple[str, ...] = ()  # empty: every plan
    shifts: tuple[Shift, ...] = ()  # in order, none overlapping
    page_command: tuple[str, ...] = ()  # run at each page besides its mail; empty: none


def _oncall(
    r: Reader, t: dict, calendars: dict[str, Calendar], engineers: frozenset[str]
) -> OnCall | None:
    if not t:
        return None
    p = "oncall"
    r.unknown(t, p, KEYS)
    calendar = r.required(t, "team_calendar", p, str)
    if calendar is not None and calendar not in calendars:
        r.problem(f"{p}.team_calendar", f"unknown calendar {calendar!r}")
    zone = ZoneInfo(calendars[calendar].timezone if calendar in calendars else "UTC")
    shifts = _shifts(r, t, zone, engineers) if "shifts" in t else ()
    rotation, starts, (day, at) = (), date.min, (0, time(9))
    if "shifts" not in t:
        rotation, starts = _rotation(r, t, engineers), _starts(r, t)
        day, at = _handover(r, r.get(t, "handover", p, str, "mon 09:00"))
    elif "rotation" in t:
        r.problem(f"{p}.shifts", "give either rotation (a weekly rota) or shifts (dated), not both")
    else:
        for key in ROTA_ONLY:
            if key in t:
                r.problem(f"{p}.{key}", "belongs to a weekly rotation, not to dated shifts")
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
        shifts=shifts,
        page_command=_page_command(r, t),
    )


def _rotation(r: Reader, t: dict, engineers: frozenset[str]) -> tuple[str, ...]:
    rotation = r.addresses(t, "rotation", "oncall")
    if not rotation:
        r.problem("oncall.rotation", "name at least one engineer's address, or give shifts")
    for i, address in enumerate(rotation):
        _engineer(r, address, f"oncall.rotation[{i}]", engineers)
    return rotation


def _starts(r: Reader, t: dict) -> date:
    starts = r.required(t, "starts", "oncall", (str, date))
    try:
        return date.fromisoformat(str(starts)) if starts is not None else date.min
    except ValueError:
        r.problem("oncall.starts", f"{starts!r} is not a date: write it as YYYY-MM-DD")
        return date.min


def _shifts(r: Reader, t: dict, zone: ZoneInfo, engineers: frozenset[str]) -> tuple[Shift, ...]:
    listed = r.get(t, "shifts", "oncall", list, [])
    shifts: list[tuple[int, Shift]] = []
    for i, item in enumerate(listed):
        p = f"oncall.shifts[{i}]"
        if not isinstance(item, dict):
            r.problem(p, 'must be a table like { who = "…", from = "…", until = "…" }')
            continue
        r.unknown(item, p, {"who", "from", "until"})
        who = r.address(r.required(item, "who", p, str), f"{p}.who")
        _engineer(r, who, f"{p}.who", engineers)
        begins, ends = _moment(r, item, "from", p, zone), _moment(r, item, "until", p, zone)
        if begins and ends and ends <= begins:
            r.problem(f"{p}.until", f"must be after from ({begins:%Y-%m-%d %H:%M})")
        elif who and begins and ends:
            shifts.append((i, Shift(who, begins, ends)))
    if not listed:
        r.problem("oncall.shifts", "list at least one shift")
    shifts.sort(key=lambda s: s[1].begins)
    for (i, earlier), (j, later) in itertools.pairwise(shifts):
        if later.begins < earlier.ends:
            until = f"{earlier.who} until {earlier.ends:%Y-%m-%d %H:%M}"
            r.problem(f"oncall.shifts[{j}]", f"overlaps oncall.shifts[{i}] ({until})")
    return tuple(s for _, s in shifts)


def _moment(r: Reader, item: dict, key: str, p: str, zone: ZoneInfo) -> datetime | None:
    """A shift's "YYYY-MM-DD HH:MM" (or a TOML local date-time), in the team calendar's zone."""
    value = r.required(item, key, p, (str, datetime))
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is not None:
        r.problem(f"{p}.{key}", f"{value!r} is not a date and time: write it as YYYY-MM-DD HH:MM")
        return None
    return moment.replace(tzinfo=zone)


def _page_command(r: Reader, t: dict) -> tuple[str, ...]:
    """An argv list, run without a shell; its program must be there and executable now, not
    found missing at the first page at night."""
    if "page_command" not in t:
        return ()
    argv = t["page_command"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        r.problem("oncall.page_command", "must be a list of non-empty strings, the program first")
        return ()
    program = argv[0]  # a bare name is looked up in PATH, a relative path beside the file
    found = shutil.which(program) if os.sep not in program else str(r.base / program)
    if found is None or not (Path(found).is_file() and os.access(found, os.X_OK)):
        r.problem("oncall.page_command", f"{program!r} is not an executable program")
    return (found or program, *argv[1:])


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
