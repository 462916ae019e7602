"""A resolver that never answers: each message from a new domain waits out its own DNS time-out,
side by side with the others, so nine mails from nine domains take about one time-out, not
nine. The resolver is a real UDP socket on 127.0.0.1 that reads every query and answers none."""

from __future__ import annotations

import socket
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd.adapters.store import Arrival, Store
from tests.support import Daemon, free_port, mail, write_config

pytestmark = pytest.mark.timeout(180)

TIMEOUT = 3.0  # [authentication] dns_timeout, seconds
DOMAINS = [f"d{n}.test" for n in range(9)]


@pytest.fixture
def dead_resolver():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # queries pile up unread in its buffer: nobody answers


def spooled(db: Path) -> None:
    """Nine mails from nine domains, spooled by the listener before a restart."""
    store = Store.open(db)
    store.spool_all(
        [
            Arrival(
                mail(f"someone@{domain}", f"Help from {domain}", "x").as_bytes(),
                source="smtp",
                now=datetime.now(UTC),
                envelope_from=f"someone@{domain}",
                recipients=("support@helpdesk.test",),
                peer_ip="192.0.2.1",
                helo=f"mx.{domain}",
            )
            for domain in DOMAINS
        ]
    )
    store.close()


def processed(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM spool WHERE state != 'new'").fetchone()[0]


def test_nine_domains_behind_a_dead_resolver_take_about_one_time_out(
    tmp_path: Path, dead_resolver: int
):
    port = free_port()
    config = write_config(
        tmp_path,
        smtp_port=port,
        extra=(
            f'\n[authentication]\ndns_servers = ["127.0.0.1"]\ndns_port = {dead_resolver}\n'
            f"dns_timeout = {TIMEOUT}\n"
        ),
    )
    config.write_text(config.read_text().replace("first_hop = false", "first_hop = true"))
    db = tmp_path / "helpdesk.db"
    spooled(db)
    with Daemon(config, port):
        started = time.monotonic()  # up: the worker took the nine in hand as it started
        while processed(db) < len(DOMAINS) and time.monotonic() - started < 12 * TIMEOUT:
            time.sleep(0.1)
        spent = time.monotonic() - started
    assert processed(db) == len(DOMAINS)
    assert spent < 2.5 * TIMEOUT, f"{spent:.1f} s for {len(DOMAINS)} domains"
