"""Several nodes on one database: who is alive (`Nodes`, a heartbeat each) and who does the
work that must run on one node at a time (`Leases`: the sweep, each IMAP mailbox). A lease is
held until `expires_at`; its holder renews it well before, and once a holder stops renewing
(killed, cut off) any node takes it."""

from __future__ import annotations

from datetime import datetime, timedelta

from helpdeskd.adapters.store.database import Database, iso, parse_iso


class Leases:
    def __init__(self, store: Database):
        self.store = store

    def take(self, name: str, holder: str, now: datetime, seconds: int) -> bool:
        """Take or renew `name` for `seconds`; True when `holder` holds it now. One statement:
        of two nodes asking at once, the database lets one in."""
        expires = iso(now + timedelta(seconds=seconds))
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO leases (name, holder, taken_at, heartbeat, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "holder = excluded.holder, heartbeat = excluded.heartbeat, "
                "expires_at = excluded.expires_at, taken_at = CASE WHEN leases.holder = "
                "excluded.holder THEN leases.taken_at ELSE excluded.taken_at END "
                "WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.heartbeat",
                [name, holder, iso(now), iso(now), expires],
            )
            row = self.store.row("SELECT holder FROM leases WHERE name = ?", [name])
        return row is not None and row["holder"] == holder

    def release(self, name: str, holder: str) -> None:
        """Let `name` go at once (a node stopping), so another need not wait it out."""
        self.store.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [name, holder])

    def holder(self, name: str, now: datetime) -> str | None:
        row = self.store.row(
            "SELECT holder FROM leases WHERE name = ? AND expires_at >= ?", [name, iso(now)]
        )
        return row["holder"] if row else None

    def listing(self) -> list[dict]:
        """Every lease, live or run out, by name."""
        rows = self.store.rows("SELECT * FROM leases ORDER BY name")
        return [_instants(r, "taken_at", "heartbeat", "expires_at") for r in rows]


class Nodes:
    def __init__(self, store: Database):
        self.store = store

    def beat(self, name: str, pid: int, started_at: datetime, now: datetime) -> None:
        """This node is alive at `now` (a restarted node's row is its own again)."""
        self.store.execute(
            "INSERT INTO nodes (name, pid, started_at, heartbeat) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, "
            "started_at = excluded.started_at, heartbeat = excluded.heartbeat",
            [name, pid, iso(started_at), iso(now)],
        )

    def listing(self) -> list[dict]:
        """Every node seen, with the leases it holds (live or run out) by name."""
        held: dict[str, list[dict]] = {}
        for lease in Leases(self.store).listing():
            held.setdefault(lease["holder"], []).append(lease)
        rows = self.store.rows("SELECT * FROM nodes ORDER BY name")
        return [
            {**_instants(r, "started_at", "heartbeat"), "leases": held.get(r["name"], [])}
            for r in rows
        ]


def _instants(row: dict, *names: str) -> dict:
    return {**row, **{n: parse_iso(row[n]) for n in names}}
