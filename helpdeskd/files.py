"""Files helpdeskd creates are its user's alone: they hold every customer's mail.

The umask is set once at process start, before anything is created (database, its WAL and SHM,
the folder they live in, Maildir files), so nothing depends on how the process was started.
Files made earlier or by hand keep their modes; `exposed` finds the ones others can reach.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger("helpdeskd.files")

PRIVATE_UMASK = 0o077
# Read or write for group or others; execute alone on a folder lets them pass, not look.
REACHABLE = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH


def make_private() -> None:
    os.umask(PRIVATE_UMASK)


def exposed(database: Path | object) -> list[str]:
    """One line per file of the database (and its folder) that others may read or write
    (none for a database that is not a file)."""
    if not isinstance(database, Path):
        return []
    path = database
    found = []
    for candidate in (path.parent, path, *(Path(f"{path}{s}") for s in ("-wal", "-shm"))):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except OSError:
            continue  # not there (yet): nothing to expose
        if mode & REACHABLE:
            found.append(f"{candidate} is {mode:04o}: others may read or change it")
    return found


def warn_if_exposed(database: Path | object) -> None:
    for problem in exposed(database):
        log.warning("files.exposed", problem=problem, fix="chmod go-rwx")
