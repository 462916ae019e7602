"""Business time: working hours, holidays, and durations counted in working time.

Everything here is pure: instants come in as aware datetimes, come out as aware UTC datetimes,
and the only outside knowledge is the time zone database and the `holidays` package.

Working hours are local wall-clock times of the calendar's zone, so a deadline that crosses a
daylight-saving change lands on the right local hour. Working time is walked interval by
interval (one opening at a time), never minute by minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import ModuleType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UNITS = {"m": 1, "h": 60, "d": 24 * 60}  # minutes of wall time, used as such only by 24x7
MAX_CLOSED_DAYS = 3 * 366  # only a calendar whose every day is a holiday gets this far
_DURATION = re.compile(r"(\d+)([a-z]+)")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_DAY = timedelta(days=1)

Span = tuple[datetime, datetime]


class CalendarError(ValueError):
    """A calendar definition with mistakes: every one of them, as (key, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {reason}" for key, reason in problems))


@dataclass(frozen=True)
class Duration:
    """A target such as "4h": whole minutes, hours or working days.

    Decimals are refused ("1.5h"): "90m" says the same thing exactly, and a fraction of a
    working day has no agreed meaning.
    """

    amount: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}: use m, h or d")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"amount must be a whole number of at least 0, not {self.amount!r}")

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def wall(self) -> timedelta:
        """The same amount as real time, which is what it means on a 24x7 calendar."""
        return timedelta(minutes=self.amount * UNITS[self.unit])

    def describe(self, *, always_open: bool = False) -> str:
        """Words for mail: "2 working hours", or "2 hours" on a 24x7 calendar."""
        noun = {"m": "minute", "h": "hour", "d": "day"}[self.unit]
        plural = "" if self.amount == 1 else "s"
        working = "" if always_open else "working "
        return f"{self.amount} {working}{noun}{plural}"


def parse_duration(text: str) -> Duration:
    """ "30m", "4h", "2d" -> Duration; ValueError saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"a duration is a string like '4h', not {text!r}")
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("empty duration: write a number and a unit, e.g. '4h'")
    if cleaned.startswith("-"):
        raise ValueError(f"negative duration {text!r}: a target cannot go back in time")
    if re.fullmatch(r"\d*[.,]\d*[a-z]*", cleaned):
        raise ValueError(f"{text!r} is not a whole number: write e.g. '90m' for 1.5 hours")
    match = _DURATION.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"bad duration {text!r}: write a number and a unit m, h or d, e.g. '4h'")
    return Duration(int(match[1]), _known_unit(match[2], text))


def _known_unit(unit: str, text: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}: use m, h or d")
    return unit


@dataclass(frozen=True)
class Calendar:
    """Working hours in one time zone, with its days off.

    `hours` holds seven entries, Monday first; each is a sorted tuple of (start, end) minutes of
    the local day, end up to 1440 (midnight); an empty entry is a closed day.
    """

    name: str
    timezone: str
    hours: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date]
    holiday_country: str | None = None
    holiday_subdiv: str | None = None
    always_open: bool = False

    @classmethod
    def build(
        cls,
        name: str,
        *,
        timezone: str,
        hours: Mapping[str, str] | None = None,
        holidays: Iterable[date | str] = (),
        holiday_country: str | None = None,
        holiday_subdiv: str | None = None,
        always_open: bool = False,
    ) -> Calendar:
        """Check a calendar as written in the configuration; CalendarError lists every mistake."""
        problems: list[tuple[str, str]] = []
        _check_timezone(timezone, problems)
        week = _parse_week(hours or {}, always_open, problems)
        days_off = _parse_holidays(holidays, always_open, problems)
        country, subdiv = _check_country(holiday_country, holiday_subdiv, always_open, problems)
        if problems:
            raise CalendarError(problems)
        return cls(name, timezone, week, days_off, country, subdiv, always_open)


# --- building and checking ---------------------------------------------------------------


def _check_timezone(name: object, problems: list[tuple[str, str]]) -> None:
    if not isinstance(name, str) or not name:
        problems.append(("timezone", "missing: name an IANA time zone, e.g. 'Europe/Paris'"))
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(("timezone", f"unknown time zone {name!r}"))


def _parse_week(
    hours: Mapping[str, str], always_open: bool, problems: list[tuple[str, str]]
) -> tuple[tuple[tuple[int, int], ...], ...]:
    for key in hours:
        if key not in DAYS:
            problems.append((f"hours.{key}", f"unknown day {key!r}: use {', '.join(DAYS)}"))
    if always_open:
        if hours:
            problems.append(("hours", "an always_open calendar takes no working hours"))
        return (((0, 1440),),) * 7
    week = tuple(_parse_day(day, hours.get(day, ""), problems) for day in DAYS)
    if not any(week) and not any(key.startswith("hours.") for key, _ in problems):
        problems.append(("hours", "no working hours on any day"))
    return week


def _parse_day(
    day: str, text: object, problems: list[tuple[str, str]]
) -> tuple[tuple[int, int], ...]:
    if not isinstance(text, str):
        problems.append((f"hours.{day}", f"expected a string like '08:00-17:00', not {text!r}"))
        return ()
    if text.strip().lower() in ("", "closed"):
        return ()
    spans = []
    for part in text.split(","):
        try:
            spans.append(_parse_span(part.strip()))
        except ValueError as error:
            problems.append((f"hours.{day}", str(error)))
    return _merge(sorted(spans), day, problems)


def _parse_span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a range like '08:00-17:00'")
    first, last = _parse_clock(start.strip()), _parse_clock(end.strip())
    if last < first:
        raise ValueError(f"end {end.strip()} is before start {start.strip()}")
    if last == first:
        raise ValueError(f"{text!r} is empty: start and end are the same")
    return first, last


def _parse_clock(text: str) -> int:
    match = _CLOCK.fullmatch(text)
    minutes = int(match[1]) * 60 + int(match[2]) if match else -1
    if match is None or int(match[2]) > 59 or not 0 <= minutes <= 1440:
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return minutes


def _merge(
    spans: list[tuple[int, int]], day: str, problems: list[tuple[str, str]]
) -> tuple[tuple[int, int], ...]:
    # Touching ranges ("08:00-12:00,12:00-17:00") become one, so a day has one end per gap.
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            problems.append(
                (f"hours.{day}", f"{_clock(start)}-{_clock(end)} overlaps another range")
            )
        elif merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_holidays(
    items: Iterable[date | str], always_open: bool, problems: list[tuple[str, str]]
) -> frozenset[date]:
    days = set()
    for index, item in enumerate(items):
        try:
            days.add(_holiday(item))
        except ValueError as error:
            problems.append((f"holidays[{index}]", str(error)))
    if days and always_open:
        problems.append(("holidays", "an always_open calendar has no days off"))
    return frozenset(days)


def _holiday(item: object) -> date:
    # A datetime is a date too, but "closed from 14:30" is not something a holiday can say.
    if isinstance(item, date) and not isinstance(item, datetime):
        return item
    if isinstance(item, str):
        try:
            return date.fromisoformat(item.strip())
        except ValueError:
            pass
    raise ValueError(f"{item!r} is not a date like 2026-12-25")


def _check_country(
    country: str | None, subdiv: str | None, always_open: bool, problems: list[tuple[str, str]]
) -> tuple[str | None, str | None]:
    if country is None:
        if subdiv is not None:
            problems.append(("holiday_subdiv", "given without a holiday_country"))
        return None, None
    if always_open:
        problems.append(("holiday_country", "an always_open calendar has no days off"))
    code = str(country).strip().upper()
    if code not in _holiday_data().list_supported_countries():
        problems.append(("holiday_country", f"unknown country {country!r}"))
        return code, subdiv
    return code, _check_subdiv(code, subdiv, problems)


def _check_subdiv(country: str, subdiv: str | None, problems: list[tuple[str, str]]) -> str | None:
    if subdiv is None:
        return None
    try:
        _holiday_data().country_holidays(country, subdiv=subdiv)
    except NotImplementedError:
        problems.append(("holiday_subdiv", f"unknown subdivision {subdiv!r} of {country}"))
    return subdiv


# --- days and intervals ------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _public_holidays(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    return frozenset(_holiday_data().country_holidays(country, subdiv=subdiv, years=year))


def _holiday_data() -> ModuleType:
    """The `holidays` package, imported on first use: its import costs every process that
    loads the configuration (the daemon, each command) some 50 ms, and only a calendar with
    a holiday_country needs it."""
    import holidays

    return holidays


def is_day_off(cal: Calendar, day: date) -> bool:
    """Is this local date a holiday of the calendar (listed, or public in its country)?"""
    if day in cal.holidays:
        return True
    country = cal.holiday_country
    return country is not None and day in _public_holidays(country, cal.holiday_subdiv, day.year)


@lru_cache(maxsize=8192)
def _day_spans(cal: Calendar, day: date) -> tuple[Span, ...]:
    """The working intervals of one local date, as UTC instants."""
    if is_day_off(cal, day):
        return ()
    zone = ZoneInfo(cal.timezone)
    midnight = datetime.combine(day, time())
    return tuple(
        (
            _utc(midnight + timedelta(minutes=start), zone),
            _utc(midnight + timedelta(minutes=end), zone),
        )
        for start, end in cal.hours[day.weekday()]
    )


def _utc(wall: datetime, zone: ZoneInfo) -> datetime:
    # Naive arithmetic above is wall-clock arithmetic; the zone decides the real instant.
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _local_date(cal: Calendar, instant: datetime) -> date:
    return _aware(instant).astimezone(ZoneInfo(cal.timezone)).date()


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{instant!r} has no time zone: business time needs an aware instant")
    return instant


def _spans(cal: Calendar, start: datetime, until: datetime | None = None) -> Iterator[Span]:
    """Working intervals from `start` on, the first one cut at `start`, stopping before `until`.

    The day before `start`'s local date is read too, and each interval is cut at the end of the
    previous one: a working time inside a spring-forward gap can map past the next one.
    """
    start = _aware(start).astimezone(UTC)
    day = _local_date(cal, start) - _DAY
    last_day = _local_date(cal, until) + _DAY if until is not None else None
    floor, closed = start, 0
    while last_day is None or day <= last_day:
        spans = _day_spans(cal, day)
        for open_at, close_at in spans:
            if until is not None and open_at >= until:
                return
            if close_at > floor:
                yield max(open_at, floor), close_at
                floor = close_at
        closed = 0 if spans else closed + 1
        if closed > MAX_CLOSED_DAYS and until is None:
            raise ValueError(f"calendar {cal.name!r} has no working time for {closed} days")
        day += _DAY


# --- the public questions ----------------------------------------------------------------


def is_working(cal: Calendar, instant: datetime) -> bool:
    """Is `instant` inside working hours? An opening includes its start, not its end."""
    if cal.always_open:
        _aware(instant)
        return True
    instant = _aware(instant).astimezone(UTC)
    day = _local_date(cal, instant)
    return any(s <= instant < e for d in (day - _DAY, day) for s, e in _day_spans(cal, d))


def next_opening(cal: Calendar, instant: datetime) -> datetime:
    """`instant` itself (in UTC) when working, else the next start of working time."""
    if cal.always_open:
        return _aware(instant).astimezone(UTC)
    return next(_spans(cal, instant))[0]


def between(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    """Working time from `start` to `end`; zero when `end` is not after `start`."""
    if _aware(end) <= _aware(start):
        return timedelta(0)
    if cal.always_open:
        return end - start
    return sum((min(e, end) - s for s, e in _spans(cal, start, until=end)), timedelta(0))


def add(cal: Calendar, start: datetime, amount: Duration) -> datetime:
    """The instant `amount` of working time after `start`, in UTC.

    Minutes and hours count working minutes from the next opening at or after `start`; the
    result is inside working time or exactly at the close of an opening.

    Days count whole working days (days with working hours that are not holidays). Counting
    starts from the next opening at or after `start`, which gives a local date D and a clock
    time T. N days later is the N-th working day after D, at T. When that day is not open at T,
    the deadline is the latest working moment of that day before T (its closing time, or the end
    of the morning before a lunch break), or its first opening if it only opens after T.
    So Friday 10:00 + 1d is Monday 10:00, and a case opened on Saturday (or Friday after
    closing) counts from Monday 08:00: + 1d is Tuesday 08:00, one whole Monday later.

    On a 24x7 calendar every unit is wall time ("1d" is 24 hours), measured in UTC so that a
    daylight-saving change does not stretch or shrink it.
    """
    if cal.always_open:
        return _aware(start).astimezone(UTC) + amount.wall
    if amount.unit == "d":
        return _add_days(cal, start, amount.amount)
    return _add_minutes(cal, start, amount.wall)


def end_of_day(cal: Calendar, day: date) -> datetime:
    """The close of a local date's working hours, in UTC; the end of the day (midnight in the
    calendar's zone) on a 24x7 calendar or a day without working hours."""
    spans = () if cal.always_open else _day_spans(cal, day)
    if spans:
        return spans[-1][1]
    return _utc(datetime.combine(day + _DAY, time()), ZoneInfo(cal.timezone))


def at_wall(cal: Calendar, day: date, clock: time) -> datetime:
    """A local date and wall-clock time of the calendar's zone, in UTC."""
    return _utc(datetime.combine(day, clock), ZoneInfo(cal.timezone))


def _add_minutes(cal: Calendar, start: datetime, remaining: timedelta) -> datetime:
    for open_at, close_at in _spans(cal, start):
        if close_at - open_at >= remaining:
            return open_at + remaining
        remaining -= close_at - open_at
    raise AssertionError("unreachable: _spans either yields or raises")


def _add_days(cal: Calendar, start: datetime, days: int) -> datetime:
    opening = next_opening(cal, start).astimezone(ZoneInfo(cal.timezone))
    day = opening.date()
    clock = opening.replace(tzinfo=None) - datetime.combine(day, time())
    for _ in range(days):
        day = _next_working_day(cal, day)
    return _at_clock(cal, day, clock)


def _next_working_day(cal: Calendar, day: date) -> date:
    for _ in range(MAX_CLOSED_DAYS):
        day += _DAY
        if _day_spans(cal, day):
            return day
    raise ValueError(f"calendar {cal.name!r} has no working day for {MAX_CLOSED_DAYS} days")


def _at_clock(cal: Calendar, day: date, clock: timedelta) -> datetime:
    """Clock time `clock` on working day `day`, moved back into working time if it is not."""
    target = _utc(datetime.combine(day, time()) + clock, ZoneInfo(cal.timezone))
    spans = _day_spans(cal, day)
    for open_at, close_at in reversed(spans):
        if open_at <= target:
            return min(target, close_at)
    return spans[0][0]
