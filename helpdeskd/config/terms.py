"""The agreements' small print, per plan: who may close a case, how long it may be reopened,
what the acknowledgement says after hours and of each priority; and [categories.NAME], what a
case is about (a question, a defect, a request not covered by the agreement)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from helpdeskd.config.reader import Reader
from helpdeskd.core.calendar import Duration
from helpdeskd.names import PRIORITIES

FOREVER = "forever"
TERMS_KEYS = {
    "close_by",
    "auto_close",
    "service_manager",
    "reopen_window",
    "after_hours_note",
    "priorities",
    "not_covered_note",
}
_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Terms:
    """A plan's small print; the defaults keep the behaviour of a plan that says none of it."""

    close_by: str = "anyone"  # "requester": only the case's opener among its customer's people
    auto_close: bool = True  # False: a case that timed out waits for the service manager
    service_manager: str | None = None  # who decides on such a case
    reopen_window: Duration | str | None = None  # None: [policy] reopen_window; or FOREVER
    after_hours_note: str = ""  # in the acknowledgement of a P1/P2 case opened after hours
    priorities: dict[str, str] = field(default_factory=dict)  # a definition per priority
    not_covered_note: str = ""  # told once when a case's category stops its clocks


@dataclass(frozen=True)
class Category:
    name: str
    stops_clocks: bool = False  # not covered by the agreement: no promise runs for it
    description: str = ""


def _terms(r: Reader, t: dict, p: str) -> Terms:
    """The small-print keys of [plans.NAME]."""
    auto_close = r.get(t, "auto_close", p, bool, True)
    manager = r.address(r.get(t, "service_manager", p, str), f"{p}.service_manager")
    if not auto_close and not manager:
        r.problem(
            f"{p}.service_manager",
            "is required with auto_close = false: the address that closes or keeps a case "
            "that timed out",
        )
    return Terms(
        close_by=r.choice(t, "close_by", p, ("anyone", "requester"), "anyone"),
        auto_close=auto_close,
        service_manager=manager,
        reopen_window=_reopen_window(r, t, p),
        after_hours_note=r.get(t, "after_hours_note", p, str, "").strip(),
        priorities=_definitions(r, t, p),
        not_covered_note=r.get(t, "not_covered_note", p, str, "").strip(),
    )


def _reopen_window(r: Reader, t: dict, p: str) -> Duration | str | None:
    value = t.get("reopen_window")
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == FOREVER:
        return FOREVER
    if not isinstance(value, str) or not value.strip()[:1].isdigit():
        why = f'must be a duration like "30d" or "forever", not {value!r}'
        r.problem(f"{p}.reopen_window", why)
        return None
    return r.parse_duration(value, f"{p}.reopen_window")


def _definitions(r: Reader, t: dict, p: str) -> dict[str, str]:
    """[plans.NAME.priorities]: P1 = "Business is not operational ...", one line each."""
    table = r.table(t, "priorities", f"{p}.priorities")
    found = {}
    for priority, text in table.items():
        q = f"{p}.priorities.{priority}"
        if priority not in PRIORITIES:
            r.problem(q, f"unknown priority (known: {', '.join(PRIORITIES)})")
        elif not isinstance(text, str) or not text.strip():
            r.problem(q, f"must be a short definition, not {text!r}")
        else:
            found[priority] = " ".join(text.split())
    return found


def _categories(r: Reader, tables: dict) -> dict[str, Category]:
    found = {}
    for name, t in tables.items():
        p = f"categories.{name}"
        if not _CATEGORY_NAME.fullmatch(name):
            r.problem(p, "a category's name is lower-case letters, digits and _, e.g. not_covered")
        elif not isinstance(t, dict):
            r.problem(p, "must be a table, e.g. { stops_clocks = true }")
        else:
            r.unknown(t, p, {"stops_clocks", "description"})
            found[name] = Category(
                name,
                stops_clocks=r.get(t, "stops_clocks", p, bool, False),
                description=r.get(t, "description", p, str, ""),
            )
    return found
