"""The status page: single-use sign-in links, the request counts that rate-limit them, and
the sessions they open."""

from __future__ import annotations

from datetime import datetime

from helpdeskd.adapters.store.database import Database, iso
from helpdeskd.adapters.store.persons import Found, Person, mask_rows, register


class SignIns:
    """Single-use sign-in links and the request counts that rate-limit them."""

    def __init__(self, store: Database):
        self.store = store

    def issue(self, token_hash: str, address: str, now: datetime, expires: datetime) -> None:
        self.store.insert(
            "web_links",
            {
                "token_hash": token_hash,
                "address": address,
                "created_at": iso(now),
                "expires_at": iso(expires),
            },
        )

    def redeem(self, token_hash: str, now: datetime) -> str | None:
        """The address a link signs in, once: used or expired links give None."""
        with self.store.transaction():
            row = self.store.row(
                "SELECT address FROM web_links WHERE token_hash = ? AND used_at IS NULL "
                "AND expires_at > ?",
                [token_hash, iso(now)],
            )
            if row:
                self.store.execute(
                    "UPDATE web_links SET used_at = ? WHERE token_hash = ?", [iso(now), token_hash]
                )
        return row["address"] if row else None

    def count(self, key: str, since: datetime) -> int:
        return self.store.count("web_requests", "key = ? AND at >= ?", [key, iso(since)])

    def note(self, keys: list[str], now: datetime) -> None:
        self.store.executemany(
            "INSERT INTO web_requests (key, at) VALUES (?, ?)", [(k, iso(now)) for k in keys]
        )

    def forget(self, before: datetime) -> None:
        """Old links and counts are of no use after their window."""
        self.store.execute("DELETE FROM web_links WHERE expires_at < ?", [iso(before)])
        self.store.execute("DELETE FROM web_requests WHERE at < ?", [iso(before)])


class Sessions:
    """Signed-in sessions, by the hash of their nonce: a cookie counts while its row is here."""

    def __init__(self, store: Database):
        self.store = store

    def start(
        self, nonce_hash: str, address: str, role: str, now: datetime, expires: datetime
    ) -> None:
        with self.store.transaction():
            self.store.execute("DELETE FROM web_sessions WHERE expires_at < ?", [iso(now)])
            self.store.insert(
                "web_sessions",
                {
                    "nonce_hash": nonce_hash,
                    "address": address,
                    "role": role,
                    "created_at": iso(now),
                    "expires_at": iso(expires),
                },
            )

    def find(self, nonce_hash: str, now: datetime) -> dict | None:
        return self.store.row(
            "SELECT address, role FROM web_sessions WHERE nonce_hash = ? AND expires_at > ?",
            [nonce_hash, iso(now)],
        )

    def end(self, nonce_hash: str) -> None:
        with self.store.transaction():
            self.store.execute("DELETE FROM web_sessions WHERE nonce_hash = ?", [nonce_hash])

    def end_all(self, address: str) -> int:
        """Every session of the address; how many there were."""
        with self.store.transaction():
            ended = self.store.execute("DELETE FROM web_sessions WHERE address = ?", [address])
        return ended.rowcount


# -- a person's data (persons.py): their sign-in links and sessions --


def _export_person(store: Database, person: Person) -> Found:
    """When they asked for links and signed in; the hashes are of no use to them."""
    links = store.rows(
        "SELECT created_at, expires_at, used_at FROM web_links WHERE lower(address) = ?",
        [person.address],
    )
    sessions = store.rows(
        "SELECT role, created_at, expires_at FROM web_sessions WHERE lower(address) = ?",
        [person.address],
    )
    return Found({"sign_ins": links, "sessions": sessions})


def _erase_person(store: Database, person: Person) -> dict[str, int]:
    """Links and sessions go (a session of an erased address must not go on); the request
    counts stay, under the pseudonym, for the rate limit."""
    address = [person.address]
    links = store.execute("DELETE FROM web_links WHERE lower(address) = ?", address)
    sessions = store.execute("DELETE FROM web_sessions WHERE lower(address) = ?", address)
    return {
        "web_links": links.rowcount,
        "web_sessions": sessions.rowcount,
        "web_requests": mask_rows(store, person, "web_requests", "id", ["key"]),
    }


register(("web_links", "web_sessions", "web_requests"), _export_person, _erase_person)
