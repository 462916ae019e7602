"""Files helpdeskd creates are its user's alone: they hold every customer's mail.

The umask is set once at process start, before anything is created (database, its WAL and SHM,
the folder they live in, Maildir files), so nothing depends on how the process was started.
Files made earlier or by hand keep their modes; `exposed` finds the ones others can reach.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
# Read or write for group or others; execute alone on a folder lets them pass, not look.
REACHABLE = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH


def make_private() -> None:
    os.umask(PRIVATE_UMASK)


def exposed(database: Path | object, *others: Path) -> list[str]:
    """One line per file of the database (and its folder), or of the `others` (keys), that
    others may read or write (a database that is not a file has none)."""
    database_files: tuple[Path, ...] = ()
    if isinstance(database, Path):
        path = database
        database_files = (path.parent, path, *(Path(f"{path}{s}") for s in ("-wal", "-shm")))
    found = []
    for candidate in (*database_files, *others):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except OSError:
            continue  # not there (yet): nothing to expose
        if mode & REACHABLE:
            found.append(f"{candidate} is {mode:04o}: others may read or change it")
    return found


def warn_if_exposed(database: Path | object, *others: Path) -> None:
    import structlog  # here: the command line sets the umask before it loads the library

    log = structlog.get_logger("helpdeskd.files")
    for problem in exposed(database, *others):
        log.warning("files.exposed", problem=problem, fix="chmod go-rwx")


def write_private(path: Path, data: bytes, *, overwrite: bool) -> bool:
    """Write a file whole or not at all (a temporary file, fsynced, then renamed: a full disk
    leaves no empty file behind), readable by its owner alone. Without `overwrite` an existing
    file is kept and False returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if there is one already: two first starts
            except FileExistsError:
                return False
        _sync_folder(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    """The rename itself survives a crash only once the folder is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
