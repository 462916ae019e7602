"""A courier killed between the relay's `250` and its record: at most the mail in flight goes
out twice, and a courier started again on the same node sends the rest at once, not when the
dead one's leases run out. The relay itself kills the courier (SIGKILL) when the Nth mail
arrives, before it answers."""

from __future__ import annotations

import contextlib
import email.policy
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import OutboxQueue, Store
from tests.support import ROOT, Daemon, Sink, cli, free_port, mail, write_config

MAILS = 20
KILL_AT = 5


class KillingSink(Sink):
    """A relay that SIGKILLs `victim` when the `KILL_AT`th mail arrives, before its `250`.
    `victim` is a pid, or asked for one then: a daemon may deliver before its start returns."""

    victim: int | Callable[[], int] | None = None

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.received) == KILL_AT and self.victim is not None:
            os.kill(self.victim() if callable(self.victim) else self.victim, signal.SIGKILL)
            self.victim = None
        return answer

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.received]


def queue_mails(db: Path) -> None:
    """`MAILS` acknowledgements due now (the CLI and the daemon flush at the real time)."""
    store, now = Store.open(db), datetime.now(UTC)
    with store.transaction():
        for n in range(MAILS):
            raw = mail("support@helpdesk.test", f"Ack {n}", "x", to=f"c{n}@acme.test")
            OutboxQueue(store).enqueue(
                case_id=None,
                kind="acknowledgement",
                message_id=f"ack{n}@helpdesk.test",
                mail_from="",
                recipients=(f"c{n}@acme.test",),
                raw=raw.as_bytes(policy=email.policy.SMTP),
                automatic=True,
                now=now,
            )
    store.close()


def assert_once_but_the_one_in_flight(sink: KillingSink) -> None:
    subjects = sink.subjects()
    assert sorted(set(subjects)) == sorted(f"Ack {n}" for n in range(MAILS))
    doubled = [s for s in set(subjects) if subjects.count(s) > 1]
    assert doubled in ([], [f"Ack {KILL_AT - 1}"]), doubled


def test_a_killed_flush_resends_only_the_mail_in_flight_and_the_next_sends_the_rest(
    tmp_path: Path,
):
    with KillingSink() as sink:
        config = write_config(tmp_path, relay_port=sink.port)
        queue_mails(tmp_path / "helpdesk.db")
        courier = subprocess.Popen(
            [sys.executable, "-m", "helpdeskd", "--config", str(config), "outbox", "--flush"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sink.victim = courier.pid
        assert courier.wait(60) == -signal.SIGKILL
        assert len(sink.received) == KILL_AT
        again = cli(config, "outbox", "--flush")  # seconds later: no lease has run out
        assert again.returncode == 0, again.stderr.decode()
        assert again.stdout.decode().startswith(f"sent {MAILS - KILL_AT + 1},")
        assert_once_but_the_one_in_flight(sink)


def test_a_killed_daemon_sends_the_rest_as_soon_as_it_starts_again(tmp_path: Path):
    with KillingSink() as sink:
        port = free_port()
        config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        queue_mails(tmp_path / "helpdesk.db")
        daemon = Daemon(config, port)
        sink.victim = lambda: daemon.proc.pid
        with contextlib.suppress(RuntimeError):  # killed before its port was seen open
            daemon.start()
        assert daemon.proc.wait(60) == -signal.SIGKILL
        with Daemon(config, port):
            sink.wait_for(lambda m: len(set(sink.subjects())) == MAILS, timeout=20)
        assert_once_but_the_one_in_flight(sink)


def test_a_courier_takes_back_only_what_dead_processes_of_its_own_node_held(tmp_path: Path):
    queue_mails(tmp_path / "helpdesk.db")
    store, now = Store(tmp_path / "helpdesk.db"), datetime.now(UTC)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    owners = {
        1: f"here:{dead}",
        2: f"here:{os.getppid()}",
        3: f"there:{dead}",
        4: f"here:{os.getpid()}",
    }
    queue = OutboxQueue(store)
    for outbox_id, owner in owners.items():
        assert queue.claim(outbox_id, now, now + outbox.LEASE, owner)
    assert outbox.take_back(store, "here", now) == 1  # not a live one, nor another node's
    assert [item.id for item in queue.due(now)] == [1, *range(5, MAILS + 1)]
