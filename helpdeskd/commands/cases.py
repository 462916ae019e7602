"""Reading the cases: `cases`, `show`, `report`."""

from __future__ import annotations

import json
from argparse import Namespace
from collections.abc import Iterable
from datetime import UTC, datetime

from helpdeskd import arguments, exits, report, timesheet, views
from helpdeskd.adapters.store import Cases, Ratings, TimeSpent
from helpdeskd.commands.context import no_database, read_store, tell_no_database
from helpdeskd.config import Config
from helpdeskd.core.route import tag_pattern
from helpdeskd.exits import Failure


def cmd_cases(config: Config, args: Namespace) -> int:
    store = read_store(config, say_so=False)
    if store is None:
        filters(config, args)  # a mistaken filter is said all the same, and alone
        tell_no_database(config)
        if args.json:
            print("[]")
        return 0
    tz = config.helpdesk.timezone
    if args.quarantined:
        rows = store.quarantined()
        print(
            json.dumps(rows, indent=2)
            if args.json
            else views.table(
                views.shown_rows(rows, ("received_at",), tz),
                ["id", "received_at", "from", "subject", "size", "reason"],
            )
        )
        return 0
    cases = Cases(store)
    if args.unrouted:
        rows = cases.unrouted()
        print(
            json.dumps(rows, indent=2)
            if args.json
            else views.table(
                views.shown_rows(rows, ("at",), tz),
                ["id", "at", "kind", "from_addr", "subject", "route_reason"],
            )
        )
        return 0
    found = [views.case_summary(c, config) for c in chosen_cases(cases, config, args)]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(
        views.table(
            views.shown_rows(found, ("opened_at", "next_deadline"), tz),
            views.CASES_COLUMNS,
        )
    )
    unrouted = len(cases.unrouted())
    if unrouted:
        print(f"\n{unrouted} message(s) kept without a case: helpdeskd cases --unrouted")
    return 0


def chosen_cases(cases: Cases, config: Config, args: Namespace) -> list:
    """The cases the filters name, each filter checked against what exists first."""
    customer, plan = filters(config, args, cases.customers())
    return [
        c
        for c in cases.list(args.status, customer)
        if args.priority in (None, c.priority) and plan in (None, c.plan)
    ]


def filters(
    config: Config, args: Namespace, recorded: Iterable[str] = ()
) -> tuple[str | None, str | None]:
    """The customer and plan named, as configured (or recorded on cases), or a usage failure."""
    customer = args.customer and arguments.customer(config, args.customer, recorded)
    plan = args.plan and arguments.plan(config, args.plan)
    return customer or None, plan or None


def cmd_show(config: Config, args: Namespace) -> int:
    reference = args.reference.strip().upper()
    store = read_store(config, say_so=False)
    case = Cases(store).get(reference) if store else None
    if case is None:
        raise missing_case(config, args.reference, store is None)
    detail = views.case_detail(store, case, config, args.now or datetime.now(UTC), args.full)
    print(
        json.dumps(detail, indent=2)
        if args.json
        else views.show_text(detail, config.helpdesk.timezone)
    )
    return 0


def missing_case(config: Config, given: str, no_store: bool) -> Failure:
    """A reference that cannot be one is a usage mistake (64); one that names no case, 66."""
    prefix = config.helpdesk.reference_prefix
    if not tag_pattern(prefix).fullmatch(given.strip().upper()):
        return Failure(
            f"{given!r} is not a case reference: write it as {prefix}-2026-00042, "
            "as `helpdeskd cases` lists them",
            exits.USAGE,
        )
    where = no_database(config) if no_store else "`helpdeskd cases` lists them"
    return Failure(f"no case {given}: {where}", exits.NOINPUT)


def cmd_report(config: Config, args: Namespace) -> int:
    tz = config.helpdesk.timezone
    since, until = report.window(args.since, args.until, tz)
    if since and until and since >= until:
        raise Failure(f"--until {args.until} is not after --since {args.since}", exits.USAGE)
    store = read_store(config)
    if args.time:
        entries = TimeSpent(store).between(since, until) if store else []
        print(timesheet.render(timesheet.totals(entries), args.format))
        return 0
    cases = Cases(store).opened_between(since, until) if store else []
    ratings = Ratings(store).of_cases([c.id for c in cases]) if store else {}
    parts = {
        "sla": report.compliance(cases, config, args.now or datetime.now(UTC)),
        "satisfaction": report.satisfaction(cases, ratings),
        "fair-use": report.fair_use(cases, config),
        "categories": report.categories(cases),
    }
    print(report.render_parts(parts, args.format, args.part))
    if args.format == "table" and parts["sla"] and (since or until):
        print(f"cases opened from {views.shown(since, tz)} until {views.shown(until, tz)}")
    return 0
