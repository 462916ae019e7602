"""`helpdeskd search`: cases whose mail holds every word, best first, with a snippet."""

from __future__ import annotations

import json
from argparse import Namespace
from dataclasses import asdict

from helpdeskd import exits, report, views
from helpdeskd.adapters.store import Cases, SearchIndex, Store
from helpdeskd.commands.cases import filters
from helpdeskd.commands.context import read_store, tell_no_database
from helpdeskd.config import Config
from helpdeskd.core import search
from helpdeskd.exits import Failure

COLUMNS = ["reference", "status", "customer", "subject", "snippet"]


def cmd_search(config: Config, args: Namespace) -> int:
    wanted = search.words(" ".join(args.words))
    if not wanted:
        raise Failure("nothing to search for: give one or more words", exits.USAGE)
    store = read_store(config, say_so=False)
    if store is None:
        tell_no_database(config)
        found = []
    else:
        found = find(store, config, args, wanted)
    if args.json:
        print(json.dumps([asdict(f) for f in found], indent=2))
    elif found:
        print(views.table([asdict(f) for f in found], COLUMNS))
    else:
        print("no case holds " + " and ".join(f'"{w}"' for w in wanted))
    return 0


def find(store: Store, config: Config, args: Namespace, wanted: list[str]) -> list:
    args.plan = None  # `filters` reads the customer as `cases --customer` does
    customer, _ = filters(config, args, Cases(store).customers())
    since, _ = report.window(args.since, None, config.helpdesk.timezone)
    rows = SearchIndex(store).matching(wanted, customer=customer, status=args.status, since=since)
    return search.rank(rows, wanted, args.limit)
