"""`helpdeskd backup DEST`: a consistent copy of the live database, checked before it counts.

SQLite's online backup API copies a snapshot while the daemon keeps writing (WAL readers and
writers do not block each other). The copy is written beside DEST, checked with
`PRAGMA integrity_check`, made private and only then renamed into place, so DEST is never a
half-written or unchecked file, and never an earlier backup unless `force` says so.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from helpdeskd.adapters.store import Store, backup_to

# PostgreSQL's own tool makes the consistent copy of a live server; helpdeskd's would not be
USE_PG_DUMP = (
    "backup copies an SQLite file; on PostgreSQL use pg_dump: "
    "pg_dump --format=custom --file=helpdesk.dump postgresql://USER@HOST/DB (see docs/backup.md)"
)


class BackupFailed(Exception):
    pass


def target(dest: str, now: datetime) -> Path:
    """A folder (one that exists, or a name ending in a slash) gets a dated file name, so a
    nightly timer keeps one copy a day; a folder not there yet is made, private."""
    path = Path(dest)
    if not (dest.endswith(os.sep) or path.is_dir()):
        return path
    if path.exists() and not path.is_dir():
        raise BackupFailed(f"{path} is a file, not a folder")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path / f"helpdesk-{now:%Y%m%d-%H%M%S}.db"


def backup(store: Store, dest: str, now: datetime, *, force: bool = False) -> Path:
    final = target(dest, now)
    if final.exists() and not force:
        raise BackupFailed(f"{final} exists: an earlier backup is never replaced without --force")
    partial = final.with_name(f".{final.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        partial.touch(mode=0o600)
        verdict = backup_to(store, partial)
        if verdict != "ok":
            raise BackupFailed(f"the copy failed its integrity check: {verdict}")
        with partial.open("rb") as copy:
            os.fsync(copy.fileno())
        partial.replace(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return final
