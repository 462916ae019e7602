"""Business time, worked out by hand: hours, holidays, DST, working days, and its invariants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdeskd.core.calendar import (
    Calendar,
    CalendarError,
    Duration,
    add,
    between,
    is_working,
    next_opening,
    parse_duration,
)

CHICAGO = ZoneInfo("America/Chicago")
WEEKDAYS = {day: "08:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")}
H4 = Duration(4, "h")


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def office(**extra) -> Calendar:
    return Calendar.build("office", timezone="America/Chicago", hours=WEEKDAYS, **extra)


def always_open() -> Calendar:
    return Calendar.build("24x7", timezone="America/Chicago", always_open=True)


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h", Duration(2, "h")), ("30m", Duration(30, "m")), ("3d", Duration(3, "d")),
     (" 4H ", Duration(4, "h")), ("0m", Duration(0, "m"))],
)  # fmt: skip
def test_parse_duration_reads_whole_amounts(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("2x", "unknown unit 'x'"), ("", "empty"), ("-1h", "negative"), ("1.5h", "whole number"),
     ("h", "bad duration"), ("4", "bad duration"), ("4 h", "bad duration")],
)  # fmt: skip
def test_parse_duration_says_why_it_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(text)


def test_duration_refuses_nonsense_when_built_directly() -> None:
    with pytest.raises(ValueError, match="unit"):
        Duration(2, "w")
    with pytest.raises(ValueError, match="at least 0"):
        Duration(-1, "h")


def test_duration_round_trips_as_text() -> None:
    assert str(parse_duration("2h")) == "2h"
    assert str(Duration(15, "m")) == "15m"


@pytest.mark.parametrize(
    ("duration", "working", "wall"),
    [(Duration(2, "h"), "2 working hours", "2 hours"),
     (Duration(1, "d"), "1 working day", "1 day"),
     (Duration(30, "m"), "30 working minutes", "30 minutes"),
     (Duration(1, "m"), "1 working minute", "1 minute")],
)  # fmt: skip
def test_describe_for_mail(duration: Duration, working: str, wall: str) -> None:
    assert duration.describe() == working
    assert duration.describe(always_open=True) == wall


# --- building a calendar -----------------------------------------------------------------


def test_build_reads_hours_holidays_and_split_days() -> None:
    cal = Calendar.build(
        "eu",
        timezone="Europe/Berlin",
        hours={"mon": "08:00-12:00, 13:00-17:00", "tue": "09:00-12:00,12:00-18:00", "sat": ""},
        holidays=["2026-12-24", date(2026, 12, 31)],
    )
    assert cal.hours[0] == ((480, 720), (780, 1020))
    assert cal.hours[1] == ((540, 1080),)  # touching ranges are one opening
    assert cal.hours[2] == cal.hours[5] == ()
    assert cal.holidays == frozenset({date(2026, 12, 24), date(2026, 12, 31)})
    assert hash(cal) == hash(cal)


def test_build_normalizes_the_country_code() -> None:
    cal = office(holiday_country="us", holiday_subdiv="TX")
    assert (cal.holiday_country, cal.holiday_subdiv) == ("US", "TX")


def test_build_lists_every_problem_at_once() -> None:
    with pytest.raises(CalendarError) as caught:
        Calendar.build(
            "bad",
            timezone="Mars/Olympus",
            hours={"mon": "08:00-07:00", "tue": "8am-5pm", "wed": "08:00-12:00,11:00-13:00",
                   "thu": "09:00-25:00", "fri": "10:00-10:00", "funday": "08:00-17:00"},
            holidays=["2026-13-01", "2026-12-25", datetime(2026, 12, 26, 9, 0)],
            holiday_country="XX",
        )  # fmt: skip
    assert caught.value.problems == [
        ("timezone", "unknown time zone 'Mars/Olympus'"),
        ("hours.funday", "unknown day 'funday': use mon, tue, wed, thu, fri, sat, sun"),
        ("hours.mon", "end 07:00 is before start 08:00"),
        ("hours.tue", "'8am' is not a time of day between 00:00 and 24:00"),
        ("hours.wed", "11:00-13:00 overlaps another range"),
        ("hours.thu", "'25:00' is not a time of day between 00:00 and 24:00"),
        ("hours.fri", "'10:00-10:00' is empty: start and end are the same"),
        ("holidays[0]", "'2026-13-01' is not a date like 2026-12-25"),
        ("holidays[2]", "datetime.datetime(2026, 12, 26, 9, 0) is not a date like 2026-12-25"),
        ("holiday_country", "unknown country 'XX'"),
    ]
    assert "timezone: unknown time zone 'Mars/Olympus'" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [({"timezone": "UTC", "hours": {}}, ("hours", "no working hours on any day")),
     ({"timezone": "UTC", "hours": {"mon": 8}},
      ("hours.mon", "expected a string like '08:00-17:00', not 8")),
     ({"timezone": "", "hours": WEEKDAYS},
      ("timezone", "missing: name an IANA time zone, e.g. 'Europe/Paris'")),
     ({"timezone": "UTC", "hours": WEEKDAYS, "holiday_country": "US", "holiday_subdiv": "ZZ"},
      ("holiday_subdiv", "unknown subdivision 'ZZ' of US")),
     ({"timezone": "UTC", "hours": WEEKDAYS, "holiday_subdiv": "TX"},
      ("holiday_subdiv", "given without a holiday_country")),
     ({"timezone": "UTC", "hours": WEEKDAYS, "always_open": True},
      ("hours", "an always_open calendar takes no working hours"))],
)  # fmt: skip
def test_build_refuses(kwargs: dict, problem: tuple[str, str]) -> None:
    with pytest.raises(CalendarError) as caught:
        Calendar.build("x", **kwargs)
    assert caught.value.problems == [problem]


# --- hours, holidays, openings -----------------------------------------------------------


def test_is_working_includes_the_opening_and_not_the_close() -> None:
    cal = office()
    assert is_working(cal, chicago(2026, 2, 6, 8, 0))
    assert is_working(cal, chicago(2026, 2, 6, 16, 59))
    assert not is_working(cal, chicago(2026, 2, 6, 17, 0))
    assert not is_working(cal, chicago(2026, 2, 7, 10, 0))  # Saturday
    assert is_working(cal, utc(2026, 2, 6, 14, 0))  # 08:00 in Chicago, asked in UTC


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_working(office(), datetime(2026, 2, 6, 10, 0))


def test_next_opening() -> None:
    cal = office()
    assert next_opening(cal, chicago(2026, 2, 6, 10, 15)) == utc(2026, 2, 6, 16, 15)
    assert next_opening(cal, chicago(2026, 2, 6, 17, 0)) == utc(2026, 2, 9, 14, 0)
    assert next_opening(cal, chicago(2026, 2, 7, 10, 0)) == utc(2026, 2, 9, 14, 0)


def test_public_holidays_of_the_country_are_closed() -> None:
    cal = office(holiday_country="US")
    assert not is_working(cal, chicago(2026, 7, 3, 10, 0))  # Independence Day, observed
    assert not is_working(cal, chicago(2026, 11, 26, 10, 0))  # Thanksgiving
    assert is_working(cal, chicago(2026, 11, 27, 10, 0))
    assert is_working(office(), chicago(2026, 11, 26, 10, 0))
    # Wednesday 16:00 + 4h: one hour on Wednesday, Thanksgiving closed, three on Friday.
    assert add(cal, chicago(2026, 11, 25, 16, 0), H4) == chicago(2026, 11, 27, 11, 0)


def test_subdivision_holidays() -> None:
    bavaria = {d: "08:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}
    cal = Calendar.build(
        "muc", timezone="Europe/Berlin", hours=bavaria, holiday_country="DE", holiday_subdiv="BY"
    )
    epiphany = datetime(2026, 1, 6, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert not is_working(cal, epiphany)
    assert is_working(Calendar.build("de", timezone="Europe/Berlin", hours=bavaria), epiphany)


# --- adding hours ------------------------------------------------------------------------


def test_friday_afternoon_plus_four_hours_is_monday_morning() -> None:
    assert add(office(), chicago(2026, 2, 6, 16, 30), H4) == utc(2026, 2, 9, 17, 30)


def test_a_listed_holiday_moves_it_to_tuesday() -> None:
    cal = office(holidays=["2026-02-09"])
    assert add(cal, chicago(2026, 2, 6, 16, 30), H4) == chicago(2026, 2, 10, 11, 30)


def test_a_case_opened_on_saturday_counts_from_monday_opening() -> None:
    assert add(office(), chicago(2026, 2, 7, 10, 0), H4) == chicago(2026, 2, 9, 12, 0)


def test_add_returns_utc() -> None:
    result = add(office(), chicago(2026, 2, 6, 10, 0), Duration(30, "m"))
    assert result.tzinfo is UTC
    assert result == utc(2026, 2, 6, 16, 30)


def test_zero_is_the_next_opening() -> None:
    assert add(office(), chicago(2026, 2, 6, 17, 0), Duration(0, "h")) == utc(2026, 2, 9, 14, 0)


def test_a_deadline_can_be_the_close() -> None:
    assert add(office(), chicago(2026, 2, 6, 16, 0), Duration(1, "h")) == chicago(2026, 2, 6, 17)


def test_across_spring_forward() -> None:
    # Friday 15:00 CST (21:00Z): 2h on Friday, 2h on Monday 9 March, now CDT (UTC-5).
    result = add(office(), chicago(2026, 3, 6, 15, 0), H4)
    assert result == utc(2026, 3, 9, 15, 0)
    assert result.astimezone(CHICAGO).hour == 10


def test_across_fall_back() -> None:
    # Friday 30 October 15:00 CDT (20:00Z): 2h then, 2h on Monday 2 November, CST (UTC-6).
    result = add(office(), chicago(2026, 10, 30, 15, 0), H4)
    assert result == utc(2026, 11, 2, 16, 0)
    assert result.astimezone(CHICAGO).hour == 10


def test_always_open_counts_real_time_across_dst() -> None:
    cal = always_open()
    start = chicago(2026, 3, 8, 1, 30)  # CST, 07:30Z; the clocks jump at 02:00
    result = add(cal, start, parse_duration("2h"))
    assert result == utc(2026, 3, 8, 9, 30)
    assert result.astimezone(CHICAGO).hour == 4  # 04:30 CDT: two real hours, three on the wall
    assert add(cal, start, Duration(1, "d")) == utc(2026, 3, 9, 7, 30)
    assert between(cal, start, result) == timedelta(hours=2)
    assert is_working(cal, start)
    assert next_opening(cal, start) == start


def test_split_days_skip_the_lunch_break() -> None:
    cal = Calendar.build(
        "split", timezone="America/Chicago", hours={"mon": "08:00-12:00,13:00-17:00"}
    )
    monday = (2026, 2, 9)
    assert add(cal, chicago(*monday, 11, 0), Duration(2, "h")) == chicago(*monday, 14, 0)
    assert add(cal, chicago(*monday, 12, 30), Duration(1, "h")) == chicago(*monday, 14, 0)
    assert add(cal, chicago(*monday, 11, 0), Duration(1, "h")) == chicago(*monday, 12, 0)
    assert not is_working(cal, chicago(*monday, 12, 30))
    assert between(cal, chicago(*monday, 11, 0), chicago(*monday, 14, 0)) == timedelta(hours=2)
    # Monday 16:00 + 2h: an hour left, then the next Monday.
    assert add(cal, chicago(*monday, 16, 0), Duration(2, "h")) == chicago(2026, 2, 16, 9, 0)


def test_round_the_clock_days_join_across_midnight() -> None:
    cal = Calendar.build(
        "nights", timezone="UTC", hours={"mon": "20:00-24:00", "tue": "00:00-04:00"}
    )
    assert add(cal, utc(2026, 2, 9, 22, 0), Duration(3, "h")) == utc(2026, 2, 10, 1, 0)
    assert is_working(cal, utc(2026, 2, 10, 0, 0))


# --- adding days -------------------------------------------------------------------------


def test_friday_plus_one_day_is_monday_same_time() -> None:
    assert add(office(), chicago(2026, 2, 6, 10, 0), Duration(1, "d")) == chicago(2026, 2, 9, 10)


def test_two_days_over_a_monday_holiday_is_wednesday() -> None:
    cal = office(holidays=[date(2026, 2, 9)])
    assert add(cal, chicago(2026, 2, 6, 10, 0), Duration(2, "d")) == chicago(2026, 2, 11, 10)


def test_saturday_plus_one_day_is_tuesday_opening() -> None:
    # Counting starts at Monday 08:00; one whole working day later is Tuesday 08:00.
    assert add(office(), chicago(2026, 2, 7, 10, 0), Duration(1, "d")) == chicago(2026, 2, 10, 8)
    assert add(office(), chicago(2026, 2, 6, 17, 30), Duration(1, "d")) == chicago(2026, 2, 10, 8)


def test_days_keep_the_local_clock_across_dst() -> None:
    result = add(office(), chicago(2026, 3, 6, 10, 0), Duration(1, "d"))
    assert result == utc(2026, 3, 9, 15, 0)  # 10:00 CDT, 23 real hours of weekend shorter


def test_a_day_that_closes_early_ends_at_its_close() -> None:
    cal = Calendar.build("f", timezone="America/Chicago", hours={**WEEKDAYS, "fri": "08:00-12:00"})
    assert add(cal, chicago(2026, 2, 5, 15, 0), Duration(1, "d")) == chicago(2026, 2, 6, 12, 0)


def test_a_clock_time_in_a_break_ends_at_the_break() -> None:
    hours = {"mon": "08:00-17:00", "tue": "08:00-12:00,13:00-17:00"}
    cal = Calendar.build("b", timezone="America/Chicago", hours=hours)
    assert add(cal, chicago(2026, 2, 9, 12, 30), Duration(1, "d")) == chicago(2026, 2, 10, 12, 0)


def test_a_day_that_opens_late_starts_at_its_opening() -> None:
    cal = Calendar.build(
        "l", timezone="America/Chicago", hours={"mon": "08:00-17:00", "tue": "10:00-17:00"}
    )
    assert add(cal, chicago(2026, 2, 9, 8, 30), Duration(1, "d")) == chicago(2026, 2, 10, 10, 0)


def test_twenty_days_walks_days_not_minutes() -> None:
    cal = office(holiday_country="US")
    # 2 Nov 2026 + 20 working days of 9 hours: Veterans Day and Thanksgiving are skipped.
    assert add(cal, chicago(2026, 11, 2, 9, 0), Duration(20, "d")) == chicago(2026, 12, 2, 9, 0)
    assert add(cal, chicago(2026, 11, 2, 9, 0), Duration(180, "h")) == chicago(2026, 12, 2, 9, 0)


# --- between -----------------------------------------------------------------------------


def test_between_counts_only_working_time() -> None:
    cal = office()
    assert between(cal, chicago(2026, 2, 6, 16, 30), chicago(2026, 2, 9, 11, 30)) == timedelta(
        hours=4
    )
    assert between(cal, chicago(2026, 2, 7, 0, 0), chicago(2026, 2, 8, 23, 0)) == timedelta(0)
    assert between(cal, chicago(2026, 2, 9, 12, 0), chicago(2026, 2, 9, 11, 0)) == timedelta(0)
    assert between(cal, chicago(2026, 3, 6, 15, 0), utc(2026, 3, 9, 15, 0)) == timedelta(hours=4)


def test_a_calendar_that_is_never_open_gives_up() -> None:
    mondays = [date(2026, 2, 9) + timedelta(weeks=n) for n in range(4 * 53)]
    cal = Calendar.build("never", timezone="UTC", hours={"mon": "08:00-17:00"}, holidays=mondays)
    with pytest.raises(ValueError, match="no working time"):
        add(cal, utc(2026, 2, 9), H4)
    with pytest.raises(ValueError, match="no working time"):
        add(cal, utc(2026, 2, 9), Duration(1, "d"))
    assert between(cal, utc(2026, 2, 9), utc(2030, 1, 1)) == timedelta(0)


# --- invariants --------------------------------------------------------------------------

CALENDARS = [
    office(holiday_country="US", holidays=["2026-03-09", "2026-11-02"]),
    Calendar.build(
        "berlin",
        timezone="Europe/Berlin",
        hours={"mon": "08:00-12:00,13:00-17:00", "wed": "09:00-12:00", "sat": "10:00-14:00"},
        holiday_country="DE",
    ),
    # Sunday hours that straddle the 02:00 DST jumps, and a night shift over midnight.
    Calendar.build(
        "night",
        timezone="America/Chicago",
        hours={"sun": "00:30-03:30", "mon": "22:00-24:00", "tue": "00:00-06:00"},
        holidays=["2026-12-29"],
    ),
    Calendar.build("lord howe", timezone="Australia/Lord_Howe", hours={"sun": "01:00-03:00"}),
    # Openings that start or end at wall times the spring jump skips.
    Calendar.build("gap", timezone="America/Chicago", hours={"sun": "01:00-02:15,02:45-05:00"}),
]
EPOCH = utc(2025, 10, 1)
instants = st.integers(0, 3 * 366 * 24 * 60).map(lambda m: EPOCH + timedelta(minutes=m))
calendars = st.sampled_from(CALENDARS)
minutes = st.integers(0, 20_000)
PROPERTY = settings(max_examples=150, deadline=None)


def is_working_or_close(cal: Calendar, instant: datetime) -> bool:
    return is_working(cal, instant) or is_working(cal, instant - timedelta(microseconds=1))


def test_the_night_calendar_has_the_dst_lengths_worked_out_by_hand() -> None:
    night = CALENDARS[2]
    spring, fall = chicago(2026, 3, 8, 0, 0), chicago(2026, 11, 1, 0, 0)
    assert between(night, spring, spring + timedelta(hours=6)) == timedelta(hours=2)
    assert between(night, fall, fall + timedelta(hours=6)) == timedelta(hours=4)
    # Skipped wall times read with the offset before the jump: 02:15 is 03:15 CDT, 02:45 03:45.
    gap = CALENDARS[4]
    assert between(gap, spring, spring + timedelta(hours=6)) == timedelta(hours=2, minutes=30)
    assert not is_working(gap, chicago(2026, 3, 8, 3, 30))


@PROPERTY
@given(calendars, instants, minutes, st.sampled_from(["m", "h"]))
def test_between_measures_back_what_add_added(cal, start, amount, unit) -> None:
    duration = Duration(amount if unit == "m" else amount // 60, unit)
    result = add(cal, start, duration)
    assert between(cal, next_opening(cal, start), result) == duration.wall
    assert between(cal, start, result) == duration.wall


@PROPERTY
@given(calendars, instants, minutes, minutes)
def test_add_is_monotonic_in_the_amount(cal, start, a, b) -> None:
    small, large = sorted((a, b))
    assert add(cal, start, Duration(small, "m")) <= add(cal, start, Duration(large, "m"))


@PROPERTY
@given(calendars, instants, st.integers(0, 30))
def test_adding_days_is_monotonic_and_lands_in_working_time(cal, start, days) -> None:
    result = add(cal, start, Duration(days, "d"))
    assert is_working_or_close(cal, result)
    assert result <= add(cal, start, Duration(days + 1, "d"))


@PROPERTY
@given(calendars, instants, minutes)
def test_add_lands_in_working_time_or_at_a_close(cal, start, amount) -> None:
    result = add(cal, start, Duration(amount, "m"))
    assert is_working_or_close(cal, result)
    assert result >= start


@PROPERTY
@given(calendars, instants)
def test_next_opening_is_the_instant_exactly_when_working(cal, instant) -> None:
    opening = next_opening(cal, instant)
    assert (opening == instant) == is_working(cal, instant)
    assert is_working(cal, opening)
    assert between(cal, instant, opening) == timedelta(0)


@PROPERTY
@given(calendars, instants, instants, instants)
def test_between_is_additive(cal, x, y, z) -> None:
    a, b, c = sorted((x, y, z))
    assert between(cal, a, b) + between(cal, b, c) == between(cal, a, c)
