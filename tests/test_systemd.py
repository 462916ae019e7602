"""The unit file and the daemon's side of systemd's protocols: verify, the security score,
READY=1 after the port is bound, WATCHDOG=1 only while the worker answers, STOPPING=1."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.loops import Loop
from helpdeskd.service import Service
from tests.support import ROOT, free_port, write_config

UNIT = ROOT / "systemd" / "helpdeskd.service"
needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def unit_with_stub(tmp_path: Path) -> Path:
    """`verify` wants the ExecStart binary to exist: point the unit at a stub."""
    stub = tmp_path / "bin" / "helpdeskd"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = tmp_path / "helpdeskd.service"
    unit.write_text(UNIT.read_text().replace("/opt/helpdeskd/bin/helpdeskd", str(stub)))
    return unit


@needs_analyze
def test_the_unit_verifies(tmp_path: Path):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit_with_stub(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "helpdeskd.service" not in result.stderr, result.stderr


@needs_analyze
def test_the_unit_is_hardened_to_a_score_of_2_or_lower(tmp_path: Path):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit_with_stub(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score, result.stdout + result.stderr
    assert float(score.group(1)) <= 2.0, result.stdout


def directives(name: str) -> list[str]:
    return re.findall(rf"^{name}=(.*)$", UNIT.read_text(), re.M)


def test_the_unit_says_what_the_daemon_does():
    assert directives("Type") == ["notify"]
    assert directives("WatchdogSec")
    # check-config first: a bad file fails `systemctl reload`, then SIGHUP
    reload = directives("ExecReload")
    assert reload[0].endswith("helpdeskd check-config") and "kill -HUP" in reload[1]
    for kind in ("State", "Configuration", "Logs"):
        assert directives(f"{kind}DirectoryMode") == ["0700"]
    assert directives("UMask") == ["0077"] and directives("LimitNOFILE")
    assert directives("CapabilityBoundingSet") == ["CAP_NET_BIND_SERVICE"]


def syscalls(names: list[str]) -> set[str]:
    """The system calls of these names and @groups, as systemd-analyze expands them."""
    found: set[str] = set()
    for name in names:
        if not name.startswith("@"):
            found.add(name)
            continue
        listing = subprocess.run(
            ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[1:]
        entries = [line.strip() for line in listing if line.strip()]
        found |= syscalls([e for e in entries if not e.startswith("#")])
    return found


def test_the_parse_child_may_set_its_own_limits():
    """SystemCallFilter= lines apply in order: the first allows, `~` removes, later ones add
    back. The parse child's setrlimit must survive @resources being removed."""
    allowed: set[str] = set()
    for line in directives("SystemCallFilter"):
        names = line.removeprefix("~").split()
        if line.startswith("~"):
            allowed -= syscalls(names)
        else:
            allowed |= syscalls(names)
    assert {"setrlimit", "prlimit64"} <= allowed
    assert "reboot" not in allowed and "mount" not in allowed


class Listener:
    """A unix datagram socket standing in for systemd's notify socket."""

    def __init__(self, folder: Path):
        self.path = str(folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)

    def next(self, timeout: float = 20.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.sock.recv(4096).decode()
            except TimeoutError:
                continue
        return None

    def until(self, wanted: str, timeout: float = 20.0) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.next(deadline - time.monotonic())
            if state is None:
                break
            seen.append(state)
            if state == wanted:
                return seen
        raise AssertionError(f"no {wanted} in {seen}")


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_ready_after_the_port_is_bound_then_watchdog_then_stopping(tmp_path: Path):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port)
    notify = Listener(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpdeskd", "--config", str(config), "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert notify.next() == "READY=1"  # the first word the daemon says
        assert accepts(port), "READY=1 came before the listener was bound"
        pings = [notify.next(5) for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 3
        proc.send_signal(signal.SIGTERM)
        notify.until("STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_watchdog_is_fed_only_while_the_worker_answers(tmp_path: Path, monkeypatch):
    notify = Listener(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    service = Service(configuration.load(write_config(tmp_path)))
    stuck, released = threading.Event(), threading.Event()

    def step() -> bool:
        stuck.set()
        released.wait(10)  # a message that holds the worker
        return False

    service.worker = Loop("worker", step, 5)
    service.worker.start()
    stuck.wait(5)

    async def watch_for(seconds: float) -> None:
        task = asyncio.create_task(service.watch())
        await asyncio.sleep(seconds)
        task.cancel()

    asyncio.run(watch_for(0.6))
    notify.sock.settimeout(0.05)
    assert notify.next(0.2) is None, "the watchdog was fed while the worker was stuck"
    released.set()
    asyncio.run(watch_for(0.6))
    assert notify.next(2) == "WATCHDOG=1"
    service.worker.stop()
    service.worker.join(5)
