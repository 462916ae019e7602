"""The node's three processes: the main one (worker, sweep, status page), the SMTP listener and
the courier. Each child is started again when it dies, and stops when the main one dies."""

from __future__ import annotations

import os
import signal
import smtplib
import time
from pathlib import Path

import pytest

from tests.support import Daemon, Sink, free_port, mail, send, write_config


def children(pid: int) -> dict[str, list[int]]:
    """The roles of a process's children, read from /proc: {"listener": [pid], ...}; two of a
    role while one replaces the other."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"helpdeskd.roles" in argv:
            role = argv[argv.index(b"helpdeskd.roles") + 1].decode()
            found.setdefault(role, []).append(int(entry.name))
    return found


def wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.05)
    return predicate()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


@pytest.fixture
def node(tmp_path: Path, sink: Sink):
    port = free_port()
    with Daemon(write_config(tmp_path, smtp_port=port, relay_port=sink.port), port) as daemon:
        assert wait(lambda: '"event": "started"' in daemon.log.read_text())
        yield daemon


def acknowledged(sink: Sink, subject: str) -> bool:
    return bool(sink.wait_for(lambda m: subject in str(m["Subject"]) and "acme" in str(m["To"])))


def test_the_listener_and_the_courier_run_in_processes_of_their_own(node: Daemon, sink: Sink):
    roles = children(node.proc.pid)
    assert {role: len(pids) for role, pids in roles.items()} == {"listener": 1, "courier": 1}
    send(node.port, mail("jane@acme.test", "Three processes", "Hello."))
    assert acknowledged(sink, "Three processes")
    lines = node.log.read_text()  # each child's lines say whose they are
    assert '"event": "accepted"' in lines and '"process": "listener"' in lines
    assert wait(lambda: '"event": "delivered"' in node.log.read_text())
    delivered = [line for line in node.log.read_text().split("\n") if '"delivered"' in line]
    assert all('"process": "courier"' in line for line in delivered)


@pytest.mark.parametrize("role", ["listener", "courier"])
def test_a_killed_child_is_started_again_and_its_work_goes_on(node: Daemon, sink: Sink, role):
    [before] = children(node.proc.pid)[role]
    node.config.write_text("[helpdesk\n")  # an admin mid-edit: the new child runs the running one
    os.kill(before, signal.SIGKILL)
    assert wait(lambda: children(node.proc.pid).get(role, [before]) != [before])
    # the listener's sockets are the main process's: connections wait for the new listener
    send(node.port, mail("jane@acme.test", f"After the {role} died", "Hello again."))
    assert acknowledged(sink, f"After the {role} died")
    assert "process ended unexpectedly" in node.log.read_text()


def test_the_children_stop_when_the_main_process_is_killed(node: Daemon, tmp_path: Path):
    roles = children(node.proc.pid)
    node.proc.kill()
    node.proc.wait()
    assert wait(lambda: all(gone(pid) for pids in roles.values() for pid in pids), timeout=10)
    # nothing holds the port: the next start takes it at once
    with Daemon(node.config, node.port) as again:
        send(again.port, mail("jane@acme.test", "After a kill", "Still here."))


def test_a_reload_of_the_listener_takes_mail_all_along(node: Daemon, sink: Sink):
    """A changed [smtp] setting starts a new listener on the same sockets before the old one
    stops: mail sent throughout gets its 250, none a refusal."""
    config = node.config
    [old] = children(node.proc.pid)["listener"]
    config.write_text(
        config.read_text().replace("[smtp]\n", "[smtp]\nmax_message_size = 5000000\n")
    )
    node.proc.send_signal(signal.SIGHUP)
    answered, deadline = 0, time.monotonic() + 20
    while time.monotonic() < deadline and old in children(node.proc.pid)["listener"]:
        send(node.port, mail("jane@acme.test", f"During the reload {answered}", "x"))
        answered += 1
    assert wait(lambda: gone(old), timeout=15)
    assert len(children(node.proc.pid)["listener"]) == 1
    with smtplib.SMTP("127.0.0.1", node.port, timeout=10) as client:
        assert client.ehlo()[0] == 250
        assert client.esmtp_features["size"] == "5000000"
    assert answered >= 1
