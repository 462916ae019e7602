"""The free space of the filesystem that holds the database, against `[helpdesk] min_free_space`.

Below the margin the listener answers `452 4.3.1` and `status` is unhealthy, before the disk is
full: on a full disk commits fail, checkpoints fail, and a WAL that cannot be copied back into
the database grows into whatever space is freed. The margin leaves the worker and the courier
room to finish the mail already taken, and the daemon cuts the WAL back as space returns.
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass

from helpdeskd.config import Config

SQLITE_FULL = 13
POSTGRES_DISK_FULL = "53100"


@dataclass(frozen=True)
class Space:
    free: int  # bytes an ordinary writer may still use
    total: int
    margin: int
    wal: int  # the WAL's size: copying it back may grow the database as much, until it is cut

    @property
    def left(self) -> int:
        """Free space once the WAL is copied into the database."""
        return self.free - self.wal

    @property
    def short(self) -> bool:
        """Below the margin: the listener refuses mail."""
        return self.left < self.margin

    @property
    def scarce(self) -> bool:
        """Below half the margin: the worker waits too, and the rest is kept for the courier's
        records (mail it delivered must be recorded, or it goes twice) and checkpoints."""
        return self.left < self.margin // 2


def space(config: Config) -> Space | None:
    """None when there is no local folder to measure (not created yet, or a database server's)."""
    database = config.helpdesk.database
    try:
        usage = shutil.disk_usage(database.parent)
    except (OSError, AttributeError):
        return None
    try:
        wal = database.with_name(database.name + "-wal").stat().st_size
    except OSError:
        wal = 0
    margin = config.helpdesk.min_free_space.of(usage.total)
    return Space(usage.free, usage.total, margin, wal)


def short(config: Config) -> bool:
    room = space(config)
    return room is not None and room.short


def scarce(config: Config) -> bool:
    room = space(config)
    return room is not None and room.scarce


def is_full(exc: BaseException) -> bool:
    """Whether an error says the disk is full: not the fault of the message being written."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return (
        getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL
        or getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL
    )


def megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"
