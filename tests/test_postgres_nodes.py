"""Several nodes on one PostgreSQL database: leases that move when a holder dies, and two
`helpdeskd run` nodes taking 2,000 mails at once while one of them is killed and restarted."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd.adapters.store import Leases, Nodes, open_store, parse_iso
from tests import support
from tests.support import ROOT, Daemon, free_port, mail, write_config

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MAILS = 2000
CLIENTS = 8
LEASE_SECONDS = 3
URGENT = 10  # one mail in ten says "outage": P1, whose first response is due first


def test_a_lease_is_one_holders_until_it_runs_out(store):
    leases = Leases(store)
    assert leases.take("sweep", "a", NOW, 30)
    assert not leases.take("sweep", "b", NOW + timedelta(seconds=29), 30)
    assert leases.take("sweep", "a", NOW + timedelta(seconds=20), 30)  # renewed
    assert not leases.take("sweep", "b", NOW + timedelta(seconds=49), 30)
    assert leases.take("sweep", "b", NOW + timedelta(seconds=51), 30)  # a stopped renewing
    assert leases.holder("sweep", NOW + timedelta(seconds=52)) == "b"
    leases.release("sweep", "b")
    assert leases.take("sweep", "a", NOW + timedelta(seconds=53), 30)


def test_status_shows_every_node_and_what_it_holds(store, database, tmp_path):
    Nodes(store).beat("a", 101, NOW, NOW)
    Nodes(store).beat("b", 202, NOW, NOW - timedelta(minutes=5))
    Leases(store).take("sweep", "a", NOW, 30)
    Leases(store).take("imap:support", "b", NOW - timedelta(minutes=5), 30)
    config = write_config(tmp_path)
    done = support.cli(config, "status", "--json")
    import json

    nodes = {n["name"]: n for n in json.loads(done.stdout)["nodes"]}
    assert nodes["b"]["leases"] == [] and not nodes["b"]["alive"]
    # `status` runs on the real clock: what matters is that the rows are read and shown
    assert nodes["a"]["pid"] == 101
    text = support.cli(config, "status").stdout.decode()
    assert "node         a: heartbeat" in text and "node         b: heartbeat" in text


def test_only_the_node_holding_the_sweeps_lease_sweeps(database, tmp_path):
    from dataclasses import replace

    from helpdeskd import config as configuration
    from helpdeskd.adapters.store import Heartbeats
    from helpdeskd.service import Service

    loaded = configuration.load(write_config(tmp_path))
    a, b = (
        Service(replace(loaded, helpdesk=replace(loaded.helpdesk, node=name)), clock=lambda: NOW)
        for name in "ab"
    )
    b.renew_leases()
    a.renew_leases()
    assert (a.held, b.held) == (frozenset(), frozenset({"sweep"}))
    a.request_sweep()
    a.work()
    assert "sweep" not in Heartbeats(a.store).all()
    b.work()  # b asked itself to sweep when it took the lease
    assert Heartbeats(a.store).all()["sweep"] == NOW
    b.release_leases()
    a.renew_leases()
    assert a.held == frozenset({"sweep"})


class Node:
    """One `helpdeskd run` of the pair: its own folder, port and node name."""

    def __init__(self, name: str, folder: Path, relay_port: int):
        folder.mkdir()
        self.name, self.port = name, free_port()
        extra_helpdesk = f'node = "{name}"\nlease_seconds = {LEASE_SECONDS}\n'
        self.config = write_config(
            folder, smtp_port=self.port, relay_port=relay_port, auto_limit=100
        )
        text = self.config.read_text().replace("[smtp]\n", f"{extra_helpdesk}\n[smtp]\n", 1)
        self.config.write_text(text)
        self.daemon = Daemon(self.config, self.port)

    def kill(self) -> int:
        pid = self.daemon.proc.pid
        self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait()
        return pid


class Clients:
    """8 senders sharing the mails, each trying its node first and the other when refused or
    cut off (two MX records): a mail counts as accepted at its first `250`."""

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        self.accepted: dict[int, int] = {}  # mail number -> port that said 250
        self.retried = 0
        self.guard = threading.Lock()
        self.sent = 0

    def run(self, client: int) -> None:
        for number in range(client, MAILS, CLIENTS):
            subject = f"Outage {number}" if number % URGENT == 0 else f"Question {number}"
            msg = mail(f"user{number}@acme.test", subject, f"Body of {number}.")
            order = self.nodes if number % 2 else self.nodes[::-1]
            for attempt in range(200):
                node = order[attempt % 2]
                try:
                    support.send(node.port, msg, timeout=30)
                except (OSError, smtplib.SMTPException):
                    with self.guard:
                        self.retried += 1
                    time.sleep(0.05)
                    continue
                with self.guard:
                    self.accepted[number] = node.port
                    self.sent += 1
                break


def wait_until(predicate, timeout: float, state=lambda: "") -> float:
    """Seconds until `predicate()` held; fails the test past `timeout`, saying `state()`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"not within the time allowed: {state()}"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.mark.timeout(300)
def test_two_nodes_one_killed_apply_and_send_each_mail_once(
    postgres_url, sink, tmp_path, monkeypatch
):
    monkeypatch.setattr(support, "DATABASE", postgres_url)
    nodes = [Node("a", tmp_path / "a", sink.port), Node("b", tmp_path / "b", sink.port)]
    store = open_store(postgres_url, migrate=False)
    leases = Leases(store)
    for node in nodes:
        node.daemon.start()
    try:
        wait_until(lambda: leases.holder("sweep", datetime.now(UTC)) is not None, 30)
        holder = next(n for n in nodes if n.name == leases.holder("sweep", datetime.now(UTC)))
        survivor = next(n for n in nodes if n is not holder)
        clients = Clients(nodes)
        threads = [threading.Thread(target=clients.run, args=(c,)) for c in range(CLIENTS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        wait_until(lambda: clients.sent >= MAILS // 2, 120)
        killed_pid = holder.kill()
        in_flight = store.count(
            "outbox", "state = 'queued' AND leased_by = ?", [f"{holder.name}:{killed_pid}"]
        )
        takeover = wait_until(
            lambda: leases.holder("sweep", datetime.now(UTC)) == survivor.name,
            4 * LEASE_SECONDS + 5,
        )
        holder.daemon.start()  # restarted: it takes back what its killed process held
        for thread in threads:
            thread.join(180)
        sending = time.monotonic() - started
        assert len(clients.accepted) == MAILS

        def settled() -> bool:
            waiting = store.count("spool", "state = 'new'") + store.count(
                "outbox", "state = 'queued'"
            )
            return waiting == 0 and len(sink.received) >= MAILS

        def state() -> str:
            spool = store.rows("SELECT state, attempts, reason FROM spool WHERE state != 'done'")
            outbox = store.rows(
                "SELECT kind, state, leased_by, next_attempt_at, last_error FROM outbox "
                "WHERE state != 'sent'"
            )
            activity = store.rows(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 100) AS q "
                "FROM pg_stat_activity WHERE datname = current_database() AND state != 'idle'"
            )
            return (
                f"spool {spool[:5]} ({len(spool)}), outbox {outbox[:5]} ({len(outbox)}), "
                f"sink {len(sink.received)}, server {activity}"
            )

        wait_until(settled, 150, state)
        drained = time.monotonic() - started

        # every accepted mail applied exactly once
        assert store.count("spool", "1 = 1") == MAILS
        applied = store.count("spool", "state = 'done'")
        assert applied == MAILS
        per_spool = store.rows(
            "SELECT spool_id, count(*) AS n FROM messages WHERE spool_id IS NOT NULL "
            "GROUP BY spool_id"
        )
        assert len(per_spool) == MAILS and {r["n"] for r in per_spool} == {1}
        # no reference issued twice, and none skipped
        references = [r["reference"] for r in store.rows("SELECT reference FROM cases")]
        assert len(references) == len(set(references)) == MAILS
        numbers = sorted(int(r.rsplit("-", 1)[1]) for r in references)
        assert numbers == list(range(1, MAILS + 1))
        # every acknowledgement sent, at most the ones in the killed courier's hands twice
        acks = Counter(to for _, tos in sink.envelopes for to in tos if to.startswith("user"))
        assert set(acks) == {f"user{n}@acme.test" for n in range(MAILS)}
        twice = sum(n - 1 for n in acks.values())
        assert twice <= in_flight
        assert store.count("outbox", "kind = 'acknowledgement' AND state = 'sent'") == MAILS

        # both nodes sweep at once, their clocks shifted to when every P1 case's first
        # response is due a warning (gold: 30 minutes, warned at 80%), and no other's
        opened = [
            parse_iso(r["opened_at"])
            for r in store.rows("SELECT opened_at FROM cases WHERE priority = 'P1'")
        ]
        assert len(opened) == MAILS // URGENT
        shifted = max(opened) + timedelta(minutes=25)
        assert min(opened) + timedelta(minutes=30) > shifted  # warnings, no breach yet
        sweeps = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "helpdeskd",
                    "--config",
                    str(n.config),
                    "sweep",
                    "--now",
                    shifted.isoformat(),
                    "--json",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for n in nodes
        ]
        outputs = [s.communicate(timeout=240) for s in sweeps]
        assert [s.returncode for s in sweeps] == [0, 0], outputs
        warnings = Counter(
            r["case_id"]
            for r in store.rows("SELECT case_id FROM events WHERE kind = 'sla_warning'")
        )
        assert len(warnings) == len(opened) and set(warnings.values()) == {1}
        escalated = Counter(
            r["case_id"] for r in store.rows("SELECT case_id FROM events WHERE kind = 'escalate'")
        )
        assert len(escalated) == len(opened) and set(escalated.values()) == {1}
        assert store.count("outbox", "kind = 'sla_warning'") == len(opened)
        print(
            f"\naccepted {len(clients.accepted)} (retried {clients.retried}), applied "
            f"{applied}, acks sent {sum(acks.values())}, "
            f"sent twice {twice} (in the killed courier's hands {in_flight}), sweep lease taken "
            f"over in {takeover:.1f}s, all sent in {sending:.1f}s, settled in {drained:.1f}s, "
            f"warnings {sum(warnings.values())} for {len(warnings)} cases"
        )
    finally:
        for node in nodes:
            node.daemon.stop()
        store.close()
