"""One sweep over many open cases of which few are due: wall time and peak memory.

    .venv/bin/python -m bench.sweep_bench [--cases 100000] [--due 1000] [--keep DIR]

Builds a SQLite database of open cases (inserted in bulk with sqlite-utils, with the clock
rows and `next_due` the daemon itself would write), then runs `sweep.run` once at a fixed
Monday 11:00 in Chicago and prints what it cost. See bench/README.md.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from helpdeskd import config as configuration
from helpdeskd import logs, sweep
from helpdeskd.adapters.store import Cases, Store, case_row
from helpdeskd.adapters.store.cases import clock_row
from helpdeskd.core import sla
from helpdeskd.model import Case
from tests import support

NOW = datetime(2026, 4, 20, 11, 0, tzinfo=ZoneInfo("America/Chicago"))


def write_config(folder: Path) -> Path:
    """The test suite's configuration (Chicago business hours, a standard plan with P2 first
    response in 4h warned at 0.8, escalation to a lead at warn_at and a manager at breach),
    with outgoing mail to a Maildir in `folder`. The per-recipient limit on automatic mail is
    lifted: it would drop most of the engineers' notices and make the sweep look cheaper than
    it is, when every due notice is to be rendered and queued."""
    return support.write_config(folder, auto_limit=1_000_000)


def shapes(config) -> list[tuple[Case, bool]]:
    """A few kinds of open case, as the daemon would have saved them, each with due or not.

    Due: a P2 opened on Friday at 16:30, 3h of working time ago, past its warning (Monday
    10:42) and not yet late (11:30): it
    gets the team's warning and escalation level 1 (the lead, and the customer told).
    Not due: answered cases whose resolution clock runs for days, cases opened in the last
    hour, and cases waiting on the customer whose closing warning is days away.
    """

    def case(opened, status="open"):
        base = support.sample_case(
            status=status,
            priority="P2",
            plan="standard",
            subject="Bench case",
            opened_at=opened,
            id=None,
        )
        return sla.start_clocks(base, config)

    answered = sla.meet(case(NOW - timedelta(days=1)), "first_response", NOW - timedelta(hours=20))
    waiting = sla.pause(replace(answered, status="waiting"), NOW - timedelta(hours=2))
    return [
        (case(NOW - timedelta(days=2, hours=18, minutes=30)), True),
        (answered, False),
        (case(NOW - timedelta(minutes=30), status="new"), False),
        (waiting, False),
    ]


def cases(config, total: int, due: int):
    # next_due depends on the clocks only, so each shape's is computed once
    due_shape, *others = [(c, sla.next_due(c, config)) for c, _ in shapes(config)]
    for number in range(1, total + 1):
        shape, next_due = due_shape if number <= due else others[number % len(others)]
        contact = f"customer{number}@example.test"
        case = replace(
            shape, reference=f"HD-2026-{number:06d}", opener=contact, contacts=(contact,)
        )
        yield number, case, next_due


def build(folder: Path, total: int, due: int):
    config = configuration.load(write_config(folder))
    store = Store.open(config.helpdesk.database)
    with store.transaction():
        rows = ({**case_row(c, d), "id": n} for n, c, d in cases(config, total, due))
        store.db["cases"].insert_all(rows, batch_size=2000)
        clocks = (
            clock_row(n, i, clock)
            for n, case, _ in cases(config, total, due)
            for i, clock in enumerate(case.clocks)
        )
        store.db["case_clocks"].insert_all(clocks, batch_size=2000)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return config


def copy_of(folder: Path, name: str):
    """A fresh copy of the database, so the timed and the traced run both find work to do."""
    target = folder / name
    target.mkdir()
    shutil.copy(folder / "helpdesk.db", target / "helpdesk.db")
    return configuration.load(write_config(target))


def timed(config) -> tuple[float, list[dict], float, float]:
    store = Store.open(config.helpdesk.database)
    started = time.perf_counter()
    found = sweep.run(store, config, NOW)
    seconds = time.perf_counter() - started
    again = time.perf_counter()
    repeat = sweep.run(store, config, NOW)
    assert repeat == [], "a second sweep at the same now must send nothing"
    second = time.perf_counter() - again
    started = time.perf_counter()
    Cases(store).due(NOW, 1)
    query = time.perf_counter() - started
    store.close()
    return seconds, found, second, query


def traced(config) -> int:
    store = Store.open(config.helpdesk.database)
    tracemalloc.start()
    sweep.run(store, config, NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    store.close()
    return peak


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--cases", type=int, default=100_000, help="open cases in the database")
    args.add_argument("--due", type=int, default=1_000, help="how many of them are due")
    args.add_argument("--keep", type=Path, help="build the database in this (empty) folder")
    options = args.parse_args()
    logs.configure("WARNING")  # one log line per action would time the terminal
    folder = options.keep or Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    build(folder, options.cases, options.due)
    print(
        f"built {options.cases} open cases ({options.due} due) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    report(folder, options.due)
    if options.keep is None:
        shutil.rmtree(folder)


def report(folder: Path, due: int) -> None:
    seconds, found, second, query = timed(copy_of(folder, "timed"))
    peak = traced(copy_of(folder, "traced"))
    mails = sum(len(a["to"]) for a in found)
    settled = len({a["reference"] for a in found})
    print(
        f"sweep: {seconds:.2f} s for {settled} due cases, {len(found)} actions, "
        f"{mails} recipients queued ({seconds / max(settled, 1) * 1000:.1f} ms a case)"
    )
    print(f"second sweep at the same now: {second * 1000:.1f} ms, nothing sent")
    print(f"'what is due?' on the index alone: {query * 1000:.2f} ms")
    print(f"peak Python memory during the sweep (tracemalloc): {peak / 2**20:.1f} MiB")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        f"peak resident memory of the whole run (maxrss, includes the build): "
        f"{maxrss / 1024:.0f} MiB"
    )
    if settled != due:
        raise SystemExit(f"expected {due} due cases to be settled, got {settled}")


if __name__ == "__main__":
    main()
