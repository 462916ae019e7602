"""What an admin trips over first: paths the daemon cannot write, a Maildir folder that already
exists, the [logging] keys."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import OutboxQueue, Store
from tests.support import cli, write_config

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
as_root = os.geteuid() == 0


def with_paths(tmp_path: Path, database: str, maildir: str) -> Path:
    path = write_config(tmp_path)
    text = path.read_text().replace(str(tmp_path / "helpdesk.db"), database)
    path.write_text(text.replace(str(tmp_path / "maildir"), maildir))
    return path


def test_check_config_refuses_a_database_folder_it_cannot_create(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    path = with_paths(tmp_path, str(blocker / "var" / "helpdesk.db"), str(blocker / "outbox"))
    result = cli(path, "check-config")
    assert result.returncode == 78  # EX_CONFIG, as for any other problem of the file
    err = result.stderr.decode()
    assert "helpdesk.database: " in err and "outbound.path: " in err


@pytest.mark.skipif(as_root, reason="root may write anywhere")
def test_check_config_refuses_a_read_only_database_folder(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    path = with_paths(tmp_path, str(folder / "helpdesk.db"), str(tmp_path / "md"))
    result = cli(path, "check-config")
    assert result.returncode == 78  # EX_CONFIG, as for any other problem of the file
    assert "is not writable by this user" in result.stderr.decode()


def test_a_folder_the_user_cannot_write_is_named(tmp_path: Path, monkeypatch):
    """Root may write anywhere, so here the denial a `helpdeskd` user meets is played."""
    from helpdeskd import paths

    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    config = configuration.load(with_paths(tmp_path, str(folder / "helpdesk.db"), "md"))
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and Path(p) != folder)
    assert paths.problems(config) == [
        (
            "helpdesk.database",
            f"{folder / 'helpdesk.db'}: the folder {folder} is not writable by this user",
        )
    ]


def test_check_config_accepts_a_database_folder_it_may_create(tmp_path: Path):
    path = with_paths(tmp_path, str(tmp_path / "new" / "helpdesk.db"), str(tmp_path / "md"))
    result = cli(path, "check-config")
    assert result.returncode == 0, result.stderr.decode()


def test_an_existing_empty_maildir_folder_gets_mail(tmp_path: Path):
    (tmp_path / "maildir").mkdir()  # what an admin does before the first start
    config = configuration.load(write_config(tmp_path))
    store = Store.open(config.helpdesk.database)
    OutboxQueue(store).enqueue(
        case_id=None,
        kind="note",
        message_id="<n@helpdesk.test>",
        mail_from="",
        recipients=("a@acme.test",),
        raw=b"Subject: hello\r\n\r\nbody\r\n",
        automatic=False,
        now=NOW,
    )
    result = outbox.flush(store, config.outbound, NOW)
    assert len(result.sent) == 1 and not result.retried
    [delivered] = (tmp_path / "maildir" / "new").iterdir()
    assert delivered.read_bytes() == b"Subject: hello\n\nbody\n"


def test_logging_keys_have_defaults_and_are_checked(tmp_path: Path):
    config = configuration.load(write_config(tmp_path))
    assert (config.logging.level, config.logging.output) == ("INFO", "auto")
    good = write_config(tmp_path, extra='\n[logging]\nlevel = "debug"\noutput = "stderr"\n')
    assert configuration.load(good).logging == configuration.Logging("DEBUG", "stderr")
    bad = write_config(tmp_path, extra='\n[logging]\nlevel = "LOUD"\noutput = "syslog"\n')
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(bad)
    assert [k for k, _ in refused.value.problems] == ["logging.level", "logging.output"]
