"""Time engineers spent (`#time`), added up for `report --time` and the monthly report: per
customer, plan and priority (the case's category of urgency), with each engineer's share."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

from helpdeskd.core.teamwork import duration
from helpdeskd.views import table

CSV_COLUMNS = ["customer", "plan", "priority", "cases", "minutes", "hours"]
UNKNOWN = "(unknown sender)"


def totals(entries: list[dict]) -> list[dict]:
    """One row per (customer, plan, priority), from `TimeSpent.between` entries."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for entry in entries:
        groups[(entry["customer"] or UNKNOWN, entry["plan"], entry["priority"])].append(entry)
    return [_row(key, groups[key]) for key in sorted(groups)]


def _row(key: tuple, entries: list[dict]) -> dict:
    engineers: dict[str, int] = defaultdict(int)
    for entry in entries:
        engineers[entry["engineer"]] += entry["minutes"]
    customer, plan, priority = key
    return {
        "customer": customer,
        "plan": plan,
        "priority": priority,
        "cases": len({e["reference"] for e in entries}),
        "minutes": sum(engineers.values()),
        "engineers": dict(sorted(engineers.items())),
    }


def of_customer(entries: list[dict], customer: str) -> int:
    return sum(e["minutes"] for e in entries if e["customer"] == customer)


def render(rows: list[dict], form: str) -> str:
    if form == "json":
        return json.dumps(rows, indent=2)
    if form == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "hours": f"{r['minutes'] / 60:.2f}"} for r in rows)
        return out.getvalue().rstrip("\n")
    if not rows:
        return "Time spent: nothing recorded"
    shown = [
        {
            **{k: str(r[k]) for k in ("customer", "plan", "priority", "cases")},
            "time": duration(r["minutes"]),
            "engineers": ", ".join(f"{e} {duration(m)}" for e, m in r["engineers"].items()),
        }
        for r in rows
    ]
    columns = ["customer", "plan", "priority", "cases", "time", "engineers"]
    return f"Time spent\n{table(shown, columns)}"
