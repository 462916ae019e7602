"""Records that must outlive the process the moment they are made, but may reach the database
a little later: appended to a file beside an SQLite database, without its write lock, and
taken into the database a batch at a time, in one transaction.

The courier's deliveries are such records. Each is written as soon as the relay's `250` comes
back, as before; but waiting for the write lock for each of them, behind the worker's group
transactions, had the courier sending at a third of its pace while the worker was busy. A
line written here survives the process being killed (it is in the kernel's page cache), as
the outbox's lazy commits do; only a power cut can take it, as it can them.

Appenders share the file (`flock` LOCK_SH, for the length of one write); a fold takes it alone,
moves it aside (`-folding`) and reads it, and deletes it only after the caller's transaction
has taken its lines, so a fold killed halfway is folded again by the next one (what a fold
does must therefore be idempotent). An appender that finds, once it holds the file, that a
fold has moved it aside opens the new one and writes there.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class Journal:
    def __init__(self, path: Path):
        self.path = path
        self.folding = path.with_name(path.name + "-folding")

    def append(self, line: str) -> None:
        data = line.encode() + b"\n"
        while True:
            with _opened(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as fd:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if _same_file(fd, self.path):  # not moved aside by a fold meanwhile
                    os.write(fd, data)
                    return

    def fold(self, take: Callable[[list[str]], None]) -> int:
        """Hand every line appended so far to `take`, which commits what it makes of them;
        the caller keeps other folds out (the database's write lock). How many lines."""
        if not self.folding.exists():  # else a fold killed before its end left it: that first
            try:
                with _opened(self.path, os.O_RDONLY) as fd:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # appenders finish their line
                    os.rename(self.path, self.folding)
            except FileNotFoundError:
                return 0
        lines = self.folding.read_text().splitlines()
        take(lines)
        self.folding.unlink()
        return len(lines)


@contextmanager
def _opened(path: Path, flags: int) -> Iterator[int]:
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)  # and its flock with it


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
