"""Backups of the live database, a restore, retention that keeps the figures, and migrations
from every earlier schema version."""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from helpdeskd.adapters import store as store_module
from helpdeskd.adapters.store import Cases, Store, integrity
from tests.support import Daemon, cli, free_port, mail, run_in_process, send, write_config


def references(config: Path) -> set[str]:
    return {c["reference"] for c in json.loads(run_in_process(config, "cases", "--json"))}


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_a_backup_while_mail_arrives_is_sound_and_restores(tmp_path: Path, sink):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
    copy = tmp_path / "backups" / "helpdesk.db"
    copy.parent.mkdir()
    stop = threading.Event()

    def storm() -> None:
        """Mail until the backup is over: bounded in count and time, whatever the pace."""
        deadline = time.monotonic() + 60
        for n in range(20_000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            send(port, mail(f"user{n}@acme.test", f"Storm {n}", "mail while backing up"))

    with Daemon(config, port):
        for n in range(3):
            send(port, mail(f"early{n}@acme.test", f"Early {n}", "before the backup"))
        sink.wait_for(lambda m: "early2@acme.test" in str(m["To"]))
        sender = threading.Thread(target=storm)
        sender.start()
        try:
            committed = references(config)  # every case committed before the backup starts
            result = cli(config, "backup", str(copy))
            assert sender.is_alive(), "the mail had stopped arriving before the backup ended"
        finally:
            stop.set()
            sender.join(60)
        assert result.returncode == 0, result.stderr.decode()
        assert integrity(copy) == "ok"
        assert copy.stat().st_mode & 0o077 == 0
        saved = {c.reference for c in Cases(Store(copy)).list()}
        assert committed <= saved and len(committed) >= 3
    # restore, as docs/backup.md says: stop, put the copy in place, drop the old WAL, start
    database = tmp_path / "helpdesk.db"
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy2(copy, database)
    with Daemon(config, port):
        send(port, mail("after@acme.test", "After the restore", "still here?"))
        sink.wait_for(lambda m: "after@acme.test" in str(m["To"]))
        restored = references(config)
    # every case of the copy, the new mail's, and any mail the copy held spooled, unprocessed
    assert saved < restored
    print(f"committed before: {len(committed)}, in the copy: {len(saved)}, after: {len(restored)}")


def test_backup_into_a_folder_gets_a_dated_name(tmp_path: Path):
    config = write_config(tmp_path)
    Store.open(tmp_path / "helpdesk.db")
    result = cli(config, "backup", str(tmp_path))
    assert result.returncode == 0, result.stderr.decode()
    [made] = tmp_path.glob("helpdesk-*.db")
    assert integrity(made) == "ok" and not list(tmp_path.glob(".*.partial"))


def test_backup_into_a_missing_folder_makes_it_private(tmp_path: Path):
    """`backup DIR/`: a trailing slash names a folder, even one not there yet."""
    config = write_config(tmp_path)
    Store.open(tmp_path / "helpdesk.db")
    result = cli(config, "backup", f"{tmp_path / 'nightly'}/")
    assert result.returncode == 0, result.stderr.decode()
    folder = tmp_path / "nightly"
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    [made] = folder.glob("helpdesk-*.db")
    assert integrity(made) == "ok" and result.stdout.decode() == f"backed up to {made}\n"


def test_an_earlier_backup_is_kept_unless_forced(tmp_path: Path):
    config = write_config(tmp_path)
    Store.open(tmp_path / "helpdesk.db")
    copy = tmp_path / "copy.db"
    assert cli(config, "backup", str(copy)).returncode == 0
    earlier = copy.read_bytes()
    copy.write_bytes(earlier + b"the earlier backup")  # to tell it apart
    again = cli(config, "backup", str(copy))
    assert again.returncode == 73
    err = again.stderr.decode()
    assert err.count("\n") == 1 and f"{copy} exists" in err and "--force" in err
    assert copy.read_bytes() == earlier + b"the earlier backup"
    assert not list(tmp_path.glob(".*.partial"))
    forced = cli(config, "backup", "--force", str(copy))
    assert forced.returncode == 0, forced.stderr.decode()
    assert integrity(copy) == "ok"


def test_a_file_named_as_a_folder_is_refused(tmp_path: Path):
    config = write_config(tmp_path)
    Store.open(tmp_path / "helpdesk.db")
    (tmp_path / "plain").write_text("not a folder")
    result = cli(config, "backup", f"{tmp_path / 'plain'}/")
    assert result.returncode == 73
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "is a file, not a folder" in err
    assert (tmp_path / "plain").read_text() == "not a folder"


def test_backup_to_a_folder_that_cannot_be_written_is_one_clear_line(tmp_path: Path):
    config = write_config(tmp_path)
    result = cli(config, "backup", str(tmp_path / "missing" / "copy.db"))
    assert result.returncode == 73
    err = result.stderr.decode()
    assert err.startswith("helpdeskd: backup to") and err.count("\n") == 1 and "Errno" not in err


# -- retention --------------------------------------------------------------------------------

JANE = (
    "From: Jane <jane@acme.test>\r\nTo: support@helpdesk.test\r\nSubject: {subject}\r\n"
    "Message-ID: <{mid}@acme.test>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nsee the log\r\n--b\r\n"
    "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
    "filename=big.log\r\n\r\n" + "x" * 5000 + "\r\n--b--\r\n"
)
CLOSE = (
    "From: alice@helpdesk.test\r\nTo: support@helpdesk.test\r\nSubject: Re: [{ref}] {subject}"
    "\r\nMessage-ID: <close-{ref}@helpdesk.test>\r\n\r\n#close\r\nFixed.\r\n"
)


def ingest(config: Path, text: str, now: str) -> str:
    result = cli(config, "ingest", "--now", now, stdin=text.encode())
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def raw_sizes(database: Path) -> list[int]:
    db = sqlite_utils.Database(database)
    return [r[0] for r in db.execute("SELECT length(raw) FROM spool ORDER BY id").fetchall()]


def test_purge_removes_old_raw_mail_and_keeps_history_and_report(tmp_path: Path):
    config = write_config(tmp_path)
    for n, (opened, closed) in enumerate([("2025-01-06", "2025-01-08"), ("2026-11-02", None)]):
        out = ingest(config, JANE.format(subject=f"Crash {n}", mid=f"m{n}"), f"{opened}T15:00:00")
        ref = out.split()[1].rstrip(":")
        if closed:
            ingest(config, CLOSE.format(ref=ref, subject=f"Crash {n}"), f"{closed}T15:00:00")
    report = ["report", "--format", "json", "--now", "2026-11-30T12:00:00"]
    before = cli(config, *report).stdout
    history = cli(config, "show", "HD-2025-00001", "--json").stdout
    result = cli(config, "purge", "--older-than", "365d")
    assert result.returncode == 0, result.stderr.decode()
    # the acknowledgement, the notification, the engineer's answer and the closing notice
    assert result.stdout.decode().strip() == "raw mail removed: 2 inbound, 4 sent"
    sizes = raw_sizes(tmp_path / "helpdesk.db")
    assert sizes[:2] == [0, 0] and sizes[2] > 5000  # the open case keeps its raw mail
    assert cli(config, *report).stdout == before
    assert cli(config, "show", "HD-2025-00001", "--json").stdout == history
    again = cli(config, "purge", "--older-than", "365")
    assert again.stdout.decode().strip() == "raw mail removed: 0 inbound, 0 sent"
    assert cli(config, "purge", "--older-than", "a year").returncode == 64


def test_the_sweep_applies_the_retention_setting(tmp_path: Path):
    from helpdeskd import config as configuration
    from helpdeskd.service import Service

    config = write_config(tmp_path, extra='\n[retention]\nraw_mail_after = "30d"\n')
    out = ingest(config, JANE.format(subject="Old", mid="old"), "2025-01-06T15:00:00")
    ref = out.split()[1].rstrip(":")
    ingest(config, CLOSE.format(ref=ref, subject="Old"), "2025-01-08T15:00:00")
    service = Service(configuration.load(config), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert service.config.retention.raw_mail_days == 30
    service.renew_leases()  # the sweep's lease, taken as at the daemon's start
    service.sweep_slice()
    assert raw_sizes(tmp_path / "helpdesk.db") == [0, 0]


def test_retention_is_validated(tmp_path: Path):
    from helpdeskd import config as configuration

    bad = write_config(tmp_path, extra='\n[retention]\nraw_mail_after = "12h"\nkeep = 1\n')
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(bad)
    assert [k for k, _ in refused.value.problems] == ["retention.keep", "retention.raw_mail_after"]


# -- migrations from every earlier schema version --------------------------------------------

DUMMY = {"INTEGER": 1, "BLOB": b"Subject: x\r\n\r\nold", "FLOAT": 1.0}
INSTANT = "2025-01-01T00:00:00+00:00"


def dummy(column) -> object:
    """A value every reader accepts: instants where instants go, "[]" for the JSON lists."""
    if column.type != "TEXT":
        return DUMMY[column.type]
    if column.name in ("state", "status"):
        return "new"
    timed = column.name.endswith(("_at", "_deadline", "_since", "next_due"))
    return INSTANT if timed else "[]"


def fill(db: sqlite_utils.Database) -> dict[str, int]:
    """One row in every table of this schema version, every column given a value."""
    counts = {}
    for table in db.tables:
        if table.name.startswith(("_", "search_index")):  # the FTS5 index fills itself
            continue
        auto = table.pks == ["id"]
        table.insert({c.name: dummy(c) for c in table.columns if not (auto and c.name == "id")})
        counts[table.name] = table.count
    return counts


def schema(db: sqlite_utils.Database) -> dict[str, list[str]]:
    return {t.name: sorted(c.name for c in t.columns) for t in db.tables}


@pytest.mark.parametrize(
    "stop_before",
    [m.name for m in store_module.migrations._migrations[1:]],
)
def test_a_database_from_an_earlier_version_migrates_to_head(tmp_path: Path, stop_before: str):
    old = sqlite_utils.Database(tmp_path / "old.db")
    store_module.migrations.apply(old, stop_before=stop_before)
    counts = fill(old)
    old.close()
    store = Store.open(tmp_path / "old.db")  # start-up runs the migrations
    head = Store.open(tmp_path / "head.db")
    assert schema(store.db) == schema(head.db)
    for table, count in counts.items():
        assert store.db[table].count == count, table
    assert not store_module.migrations.pending(store.db)
    # the migrated database works: mail spooled before the upgrade is still to be processed
    if "spool" in counts:
        assert [item.id for item in store.pending(datetime.now(UTC) + timedelta(days=1))] == [1]
