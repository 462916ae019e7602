"""A full disk that heals: the database on a small filesystem of its own (a 20 MB tmpfs the test
mounts), 16 KB mails from two senders until the listener answers `452 4.3.1` (the margin,
`[helpdesk] min_free_space`, is reached before the disk is full), `status` unhealthy with the
free space; then space is freed, and within seconds mail is taken and processed again and
`status` is healthy."""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import Daemon, cli, free_port, mail, write_config

pytestmark = pytest.mark.timeout(300)

MARGIN = 2 << 20


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the database needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def fill(folder: Path, leave: int) -> Path:
    """A file that takes all but `leave` bytes of the filesystem (grown, if it is there)."""
    filler = folder / "filler"
    with filler.open("ab") as out:
        while (room := free(folder) - leave) > 0:
            out.write(b"\0" * min(room, 1 << 20))
            out.flush()
    return filler


def send(port: int, n: int) -> int:
    """One 16 KB mail from one of two senders; the listener's code."""
    sender = ("jane@acme.test", "boss@globex.test")[n % 2]
    msg = mail(
        sender,
        f"Log {n}",
        f"mail {n}\n" + "a log line of sixty-four characters, more or less....\n" * 300,
    )
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.send_message(msg)
    except smtplib.SMTPDataError as exc:
        assert b"4.3.1" in exc.smtp_error, exc
        return exc.smtp_code
    return 250


def status(config: Path) -> dict:
    return json.loads(cli(config, "status", "--json").stdout)


def processed(db: Path) -> int:
    """Spooled mail the worker is done with (read-only: the disk may be full)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM spool WHERE state != 'new'").fetchone()[0]


def test_the_margin_refuses_mail_with_452_and_the_daemon_heals_when_space_returns(
    tmp_path: Path, small_disk: Path
):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port)
    text = config.read_text().replace(
        f'database = "{tmp_path / "helpdesk.db"}"',
        f'database = "{small_disk / "helpdesk.db"}"\nmin_free_space = "2MB"',
    )
    config.write_text(text)
    with Daemon(config, port):
        assert send(port, 0) == 250
        filler = fill(small_disk, leave=MARGIN + (2 << 20))
        codes: list[int] = []  # a 451 (a commit that failed: the disk full) fails `send`
        while codes[-5:] != [452] * 5:  # the margin holds while mail keeps coming
            assert len(codes) < 400, f"{free(small_disk)} bytes free, mail still taken"
            codes.append(send(port, len(codes) + 1))
        taken = codes.count(250)
        fill(small_disk, leave=MARGIN // 2)
        short = time.monotonic()
        while (report := status(config))["healthy"]:
            # the daemon gave space back by cutting its WAL: the filler takes that too
            assert time.monotonic() - short < 15, report
            fill(small_disk, leave=MARGIN // 2)
        assert any(p.startswith("free space:") for p in report["problems"]), report["problems"]
        assert report["disk"]["free_bytes"] - report["disk"]["wal_bytes"] < MARGIN

        filler.unlink()
        healed = time.monotonic()
        while send(port, 1000) != 250:
            assert time.monotonic() - healed < 5, "still refused after space returned"
            time.sleep(0.2)
        while processed(small_disk / "helpdesk.db") < taken + 2:
            assert time.monotonic() - healed < 15, "accepted mail left unprocessed"
            time.sleep(0.3)
        report = status(config)
        assert report["healthy"], report["problems"]
        assert report["disk"]["free_bytes"] > MARGIN
