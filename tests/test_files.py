"""Private by default: whatever umask helpdeskd is started with, what it creates is its own."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from helpdeskd import files
from tests.support import Daemon, cli, free_port, mail, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def loose_umask():
    """The common default, under which files come out 0644 and folders 0755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def private_setup(tmp_path: Path, port: int = 0) -> Path:
    """The database in a folder helpdeskd makes itself; outgoing mail to a Maildir."""
    config = write_config(tmp_path, smtp_port=port)
    text = config.read_text().replace(str(tmp_path / "helpdesk.db"), str(tmp_path / "var/hd.db"))
    config.write_text(text)
    return config


def modes(*paths: Path) -> dict[str, str]:
    return {p.name: f"{stat.S_IMODE(p.stat().st_mode):04o}" for p in paths}


def test_daemon_files_are_private_under_umask_022(tmp_path: Path, loose_umask):
    port = free_port()
    config = private_setup(tmp_path, port)
    var, maildir = tmp_path / "var", tmp_path / "maildir"
    with Daemon(config, port):
        send(port, mail("jane@acme.test", "Private?", "my secrets"))
        for _ in range(200):
            if list(maildir.glob("new/*")):
                break
            time.sleep(0.05)
        made = [var, *var.iterdir(), maildir, *maildir.iterdir(), *maildir.glob("new/*")]
        found = modes(*made)
    assert {"hd.db", "hd.db-wal", "hd.db-shm", "new"} <= found.keys()
    assert len(list(maildir.glob("new/*"))) >= 1
    assert {name: m for name, m in found.items() if int(m, 8) & 0o077} == {}


def test_ingest_creates_a_private_database_under_umask_022(tmp_path: Path, loose_umask):
    config = private_setup(tmp_path)
    result = cli(config, "ingest", "-", stdin=mail("jane@acme.test", "x", "y").as_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert modes(tmp_path / "var", tmp_path / "var/hd.db") == {"var": "0700", "hd.db": "0600"}


def test_an_exposed_database_is_reported_by_check_config_and_at_start(tmp_path: Path):
    port = free_port()
    config = private_setup(tmp_path, port)
    assert (
        cli(config, "ingest", "-", stdin=mail("jane@acme.test", "x", "y").as_bytes()).returncode
        == 0
    )
    assert "others may" not in cli(config, "check-config").stderr.decode()
    (tmp_path / "var").chmod(0o755)
    (tmp_path / "var/hd.db").chmod(0o644)
    result = cli(config, "check-config")
    assert result.returncode == 0
    warnings = [w for w in result.stderr.decode().splitlines() if "others may" in w]
    assert len(warnings) == 2 and all("others may read" in w for w in warnings)
    assert "hd.db is 0644" in warnings[1]
    with Daemon(config, port) as daemon:
        pass
    # SQLite gives the WAL and SHM it makes the database's own mode: they are exposed too
    logged = daemon.log.read_text()
    assert logged.count('"files.exposed"') == 4 and "hd.db-wal is 0644" in logged


def test_only_group_and_other_read_or_write_count(tmp_path: Path):
    db = tmp_path / "hd.db"
    db.write_bytes(b"")
    tmp_path.chmod(0o711)  # others may pass through, not list
    db.chmod(0o600)
    assert files.exposed(db) == []
    db.chmod(0o620)
    assert files.exposed(db) == [f"{db} is 0620: others may read or change it"]
