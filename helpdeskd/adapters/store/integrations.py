"""Webhook deliveries and the read API's tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso
from helpdeskd.adapters.store.persons import Found, Person, register


@dataclass(frozen=True)
class Delivery:
    id: int
    url: str
    event: str
    reference: str | None
    body: bytes
    attempts: int


class Deliveries:
    """Webhook deliveries: queued with the change, then delivered, retried or given up on."""

    def __init__(self, store: Database):
        self.store = store

    def enqueue(self, url: str, event: str, reference: str, body: bytes, now: datetime) -> int:
        row = {"url": url, "event": event, "reference": reference, "body": body}
        return self.store.insert(
            "webhook_deliveries",
            {
                **row,
                "state": "queued",
                "attempts": 0,
                "next_attempt_at": iso(now),
                "created_at": iso(now),
            },
        )

    def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Due deliveries, each the oldest one waiting for its hook and case: a case's events
        arrive in the order they happened, whatever a receiver's outage held back."""
        rows = self.store.rows(
            "SELECT * FROM webhook_deliveries d WHERE d.state = 'queued' "
            "AND d.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e "
            "WHERE e.state = 'queued' AND e.url = d.url AND e.reference = d.reference "
            "AND e.id < d.id) ORDER BY d.id LIMIT ?",
            [iso(now), limit],
        )
        return [
            Delivery(r["id"], r["url"], r["event"], r["reference"], bytes(r["body"]), r["attempts"])
            for r in rows
        ]

    def claim(self, delivery_id: int, now: datetime, until: datetime) -> bool:
        """Taken for delivery until `until`: a second process flushing at once skips it."""
        with self.store.transaction():
            cursor = self.store.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? "
                "AND state = 'queued' AND next_attempt_at <= ?",
                [iso(until), delivery_id, iso(now)],
            )
        return cursor.rowcount == 1

    def delivered(self, delivery_id: int, now: datetime, answer: str) -> None:
        self._set(delivery_id, "state = 'delivered', delivered_at = ?", [iso(now)], answer)

    def retry(self, delivery_id: int, at: datetime, error: str) -> None:
        self._set(delivery_id, "next_attempt_at = ?", [iso(at)], error)

    def give_up(self, delivery_id: int, error: str) -> None:
        self._set(delivery_id, "state = 'failed'", [], error)

    def _set(self, delivery_id: int, change: str, params: list, said: str) -> None:
        with self.store.transaction():
            self.store.execute(
                f"UPDATE webhook_deliveries SET {change}, attempts = attempts + 1, "
                "last_error = ? WHERE id = ?",
                [*params, said, delivery_id],
            )

    def forget(self, before: datetime) -> int:
        """Deliveries made before then are of no more use: the receiver has them."""
        cursor = self.store.execute(
            "DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ?",
            [iso(before)],
        )
        return cursor.rowcount

    def listed(self) -> list[dict]:
        return self.store.rows(
            "SELECT id, url, event, reference, state, attempts, created_at, next_attempt_at, "
            "delivered_at, last_error FROM webhook_deliveries ORDER BY id"
        )

    def revive(self, ids: list[int], now: datetime) -> int:
        """Failed or waiting deliveries due again at `now`, with every try ahead of them."""
        marks = ", ".join("?" * len(ids))
        cursor = self.store.execute(
            "UPDATE webhook_deliveries SET state = 'queued', attempts = 0, next_attempt_at = ? "
            f"WHERE state IN ('queued', 'failed') AND id IN ({marks})",
            [iso(now), *ids],
        )
        return cursor.rowcount

    def drop(self, ids: list[int]) -> int:
        marks = ", ".join("?" * len(ids))
        cursor = self.store.execute(
            f"DELETE FROM webhook_deliveries WHERE state != 'delivered' AND id IN ({marks})", ids
        )
        return cursor.rowcount


class Tokens:
    """The read API's bearer tokens, by name; only a hash of each is kept."""

    def __init__(self, store: Database):
        self.store = store

    def create(self, name: str, token_hash: str, customer: str | None, now: datetime) -> bool:
        """False when a token of that name exists (revoked ones too: names are not reused)."""
        if self.store.count("api_tokens", "name = ?", [name]):
            return False
        row = {"name": name, "token_hash": token_hash, "customer": customer}
        self.store.insert("api_tokens", {**row, "created_at": iso(now)})
        return True

    def revoke(self, name: str, now: datetime) -> bool:
        cursor = self.store.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            [iso(now), name],
        )
        return cursor.rowcount == 1

    def find(self, token_hash: str) -> dict | None:
        """The live token with this hash: its name and customer."""
        return self.store.row(
            "SELECT name, customer FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            [token_hash],
        )

    def listed(self) -> list[dict]:
        return self.store.rows(
            "SELECT name, customer, created_at, revoked_at FROM api_tokens ORDER BY name"
        )


# -- a person's data (persons.py): an event's JSON may name them (a subject, a customer's name) --


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """Deliveries are forgotten a week after they went; those still kept are masked."""
    rows = store.rows("SELECT id, body FROM webhook_deliveries")
    named = [(person.masked_bytes(bytes(r["body"])), r["id"]) for r in rows]
    named = [(body, i) for (body, i), r in zip(named, rows, strict=True) if body != r["body"]]
    store.executemany("UPDATE webhook_deliveries SET body = ? WHERE id = ?", named)
    return {"webhook_deliveries": len(named)}


register(("webhook_deliveries",), lambda store, person: Found(), _erase_person)
