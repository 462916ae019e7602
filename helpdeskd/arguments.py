"""The admin's arguments, read in the admin's words: dates, instants, statuses, priorities, and
the customers and plans the configuration knows.

Instants without a zone, like dates, are the helpdesk's time (`[helpdesk] timezone`); they are
read before the configuration is, so `settle` gives them their zone once it is known.
"""

from __future__ import annotations

import argparse
import calendar
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from helpdeskd.exits import USAGE, Failure
from helpdeskd.names import PRIORITIES, STATUSES

if TYPE_CHECKING:  # the configuration's reader is not imported to parse a command line
    from helpdeskd.config import Config

DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
INSTANT = re.compile(
    r"(\d{4}-\d{1,2}-\d{1,2})(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?)?"
    r" ?([Zz]|UTC|[+-]\d{2}:?\d{2})?"
)
INSTANT_FORM = (
    "write it as 2026-11-18T09:00 (the helpdesk's time zone) or with a zone, "
    "2026-11-18T09:00+01:00 or 2026-11-18T15:00Z"
)
LISTED = 20  # known names shown in an error before "and N more"


def day(text: str) -> date:
    match = DAY.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write it as YYYY-MM-DD")
    year, month, dom = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: there is no month {month}")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= dom <= last:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: {calendar.month_name[month]} {year} has {last} days"
        )
    return date(year, month, dom)


def instant(text: str) -> datetime:
    """A moment; without a zone it is naive until `settle` makes it the helpdesk's time."""
    match = INSTANT.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time: {INSTANT_FORM}")
    on = day(match[1])
    hour, minute, second = (int(g or 0) for g in match.group(2, 3, 4))
    if hour > 23 or minute > 59 or second > 59:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {hour:02d}:{minute:02d}:{second:02d} is not a time of day"
        )
    micro = int((match[5] or ".0")[1:].ljust(6, "0"))
    return datetime(on.year, on.month, on.day, hour, minute, second, micro, _zone(match[6]))


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text.upper() in ("Z", "UTC"):
        return UTC
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if offset >= timedelta(hours=24) or int(digits[2:]) > 59:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time zone offset: {INSTANT_FORM}")
    return timezone(-offset if text[0] == "-" else offset)


def settle(args: argparse.Namespace, zone: str) -> None:
    """Every instant argument without a zone becomes the helpdesk's time; then all are UTC."""
    from zoneinfo import ZoneInfo  # here: the configuration has loaded it; --help need not

    for name, value in vars(args).items():
        if isinstance(value, datetime):
            local = value if value.tzinfo else value.replace(tzinfo=ZoneInfo(zone))
            setattr(args, name, local.astimezone(UTC))


def status(text: str) -> str:
    if text.lower() not in STATUSES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a status (known: {', '.join(STATUSES)})")
    return text.lower()


def priority(text: str) -> str:
    if text.upper() not in PRIORITIES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a priority (known: {', '.join(PRIORITIES)})"
        )
    return text.upper()


def number(what: str, listed_by: str):
    """A converter for ids: a positive whole number, or an error naming where ids are listed."""

    def convert(text: str) -> int:
        if not text.isdigit() or int(text) == 0:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {what} id: a number, as `{listed_by}` lists them"
            )
        return int(text)

    return convert


def positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def customer(config: Config, text: str, recorded: Iterable[str] = ()) -> str:
    """The customer's name as configured, from its name (any case), a domain or an address;
    a name only found on recorded cases (a former customer) is accepted too."""
    wanted = text.strip().lower()
    for known in config.customers:
        names = (known.name, *known.domains, *known.addresses)
        if wanted in (n.lower() for n in names):
            return known.name
    found = next((name for name in recorded if name.lower() == wanted), None)
    if found:
        return found
    choices = [
        f"{c.name} ({', '.join(c.domains)})" if c.domains else c.name for c in config.customers
    ]
    near = [c.name for c in config.customers if wanted and wanted in c.name.lower()]
    guess = f"did you mean {' or '.join(near)}? " if near else ""
    raise Failure(
        f"cases --customer: no customer {text!r}: {guess}name one by its name or one of its "
        f"domains (known: {listing(choices)})",
        USAGE,
    )


def plan(config: Config, text: str) -> str:
    found = next((name for name in config.plans if name.lower() == text.strip().lower()), None)
    if found is None:
        raise Failure(f"cases --plan: no plan {text!r} (known: {listing(config.plans)})", USAGE)
    return found


def listing(names: Iterable[str]) -> str:
    names = list(names)
    if not names:
        return "none"
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" and {more} more" if more > 0 else "")
