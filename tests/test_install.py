"""docs/install.md, as far as a test machine allows, in a temporary root: a virtual environment
under opt/helpdeskd with helpdeskd installed, config.production.toml as
etc/helpdeskd/helpdeskd.toml with its paths moved into the root, check-config, the daemon
started as systemd starts it (READY=1 on a notify socket), a mail through it, `status` healthy."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, mail, send
from tests.test_systemd import Listener

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def production_config(root: Path, smtp_port: int, relay_port: int) -> Path:
    text = (ROOT / "config.production.toml").read_text()
    assert re.findall(r'^database = "(.*)"', text, re.M) == ["/var/lib/helpdeskd/helpdesk.db"]
    text = text.replace('"/var/lib/helpdeskd/', f'"{root}/var/lib/helpdeskd/')
    text = re.sub(r"(?m)^port = 8025$", f"port = {smtp_port}", text)
    text = re.sub(r"(?m)^port = 25$", f"port = {relay_port}", text)
    text = text.replace("lmtp = true", "lmtp = false")  # smtplib speaks SMTP
    config = root / "etc" / "helpdeskd" / "helpdeskd.toml"
    config.parent.mkdir(parents=True, mode=0o700)
    config.write_text(text)
    config.chmod(0o600)
    return config


def test_the_install_steps_give_a_healthy_service(tmp_path: Path, sink):
    root = tmp_path / "root"
    venv = root / "opt" / "helpdeskd"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)]
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=500)
    assert installed.returncode == 0, installed.stderr
    binary = venv / "bin" / "helpdeskd"
    unit = (ROOT / "systemd" / "helpdeskd.service").read_text()
    assert "ExecStart=/opt/helpdeskd/bin/helpdeskd run" in unit and binary.exists()

    state = root / "var" / "lib" / "helpdeskd"
    state.mkdir(parents=True, mode=0o700)  # what StateDirectory= does
    port = free_port()
    config = production_config(root, port, sink.port)
    env = {**os.environ, "HELPDESKD_CONFIG": str(config)}  # the unit's Environment=
    env.pop("PYTHONPATH", None)

    def helpdeskd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binary), *args], env=env, cwd=state, capture_output=True, text=True, timeout=60
        )

    checked = helpdeskd("check-config")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{config}: OK")

    notify = Listener(tmp_path)
    daemon = subprocess.Popen(
        [str(binary), "run"],
        env={**env, "NOTIFY_SOCKET": notify.path},
        cwd=state,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "daemon.log").open("wb"),
    )
    try:
        assert notify.next(60) == "READY=1"
        message = mail("jane@acme.example", "Portal down", "since now", to="support@example.com")
        send(port, message)
        assert sink.wait_for(lambda m: "jane@acme.example" in str(m["To"]))
        status = helpdeskd("status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.startswith("helpdeskd: healthy")
        assert (state / "helpdesk.db").exists()
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
