"""Exit codes and the one-line failure every expected problem of the command line becomes.

The codes are those of sysexits.h, which MTAs read: 75 (temporary failure) makes them retry,
the others make them bounce. `helpdeskd` never shows a traceback for these (only `--debug` does).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

USAGE = os.EX_USAGE  # 64: a bad argument or option
DATAERR = os.EX_DATAERR  # 65: the input itself is refused (a message over the size limit)
NOINPUT = os.EX_NOINPUT  # 66: a file, case, message or mail named does not exist
UNAVAILABLE = os.EX_UNAVAILABLE  # 69: a port or database that is there but cannot be used
SOFTWARE = os.EX_SOFTWARE  # 70: a bug: please report it (run again with --debug)
CANTCREAT = os.EX_CANTCREAT  # 73: the database cannot be created
TEMPFAIL = os.EX_TEMPFAIL  # 75: try again later; nothing was stored
CONFIG = os.EX_CONFIG  # 78: the configuration is missing or refused


class Failure(Exception):
    """An expected failure: one line naming the thing and what to do, and its exit code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def busy(exc: Exception) -> bool:
    """The database is busy or out of reach for now (SQLite's lock, PostgreSQL's lost
    connection): asked only of a failure, so the store is imported only then."""
    from helpdeskd.adapters.store import unavailable

    return unavailable(exc)


def why(exc: OSError) -> str:
    """`no such file or directory`, without the errno number Python puts in front."""
    return (exc.strerror or str(exc)).lower()


def unreadable(path: Path, exc: OSError) -> Failure:
    """An input file that cannot be read: what it is, and why."""
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return Failure(f"{path} is a folder: name a file", NOINPUT)
    if isinstance(exc, FileNotFoundError):
        return Failure(f"{path}: no such file", NOINPUT)
    return Failure(f"cannot read {path}: {why(exc)}", NOINPUT)


def database_failure(path: Path | object, exc: Exception, config_path: Path) -> Failure:
    """The database could not be opened: why, in words, and where it is configured."""
    where = f"check [helpdesk] database in {config_path}"
    if not isinstance(path, Path):  # a server (its URL masked in `exc`): maybe later
        return Failure(f"cannot use the database {exc}; {where}", TEMPFAIL)
    text = why(exc) if isinstance(exc, OSError) else str(exc).lower()
    if "locked" in text or "busy" in text:
        return Failure(f"the database {path} is busy: try again in a moment", TEMPFAIL)
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return Failure(f"{path} is not a helpdeskd database, or is damaged: {where}", DATAERR)
    if path.is_dir():
        return Failure(f"the database {path} is a folder: {where}", CANTCREAT)
    if path.exists():
        return Failure(f"cannot open the database {path}: {text}; {where}", UNAVAILABLE)
    if blocker := blocking_file(path):
        text = f"{blocker} is not a folder"
    return Failure(f"cannot create the database {path}: {text}; {where}", CANTCREAT)


def blocking_file(path: Path) -> Path | None:
    """A file where a folder of `path` should be: nothing can ever be made there."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)
