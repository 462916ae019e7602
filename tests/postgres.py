"""A throwaway PostgreSQL for the tests: a cluster made with `initdb` in a temporary folder,
started on 127.0.0.1 on a free port (fsync off: nothing here must survive a power cut), one
database per test copied from a migrated template, all removed at the end.

As root, the server runs as the `postgres` user (it refuses to run as root), which owns the
folder. The superuser `postgres` connects without a password; other roles need theirs
(`password_role` makes one), so the tests see libpq's password handling for real.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TEMPLATE = "helpdeskd_template"
START_TIMEOUT = 60  # seconds for pg_ctl to see the server up (a loaded CI machine)
HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


def binaries() -> Path | None:
    """The newest installed server's bin folder (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(initdb: str) -> int:
    return int(Path(initdb).parts[-3]) if Path(initdb).parts[-3].isdigit() else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, bindir: Path, folder: Path, fsync: bool = False):
        self.bindir, self.folder, self.fsync = bindir, folder, fsync
        self.data, self.port = folder / "data", free_port()
        self.user = "postgres" if os.geteuid() == 0 else None  # None: the test's own user
        self.numbers = itertools.count(1)

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def start(self) -> Cluster:
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self.folder.chmod(0o700)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--no-locale")
        (self.data / "pg_hba.conf").write_text(HBA)
        options = f"-k {self.folder} -h 127.0.0.1 -p {self.port} -c max_connections=400"
        if not self.fsync:
            options += " -F"
        log = str(self.folder / "server.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, params: tuple = ()) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql, params)

    def make_template(self) -> None:
        """The schema built once; each test's database is a copy of it (a file copy)."""
        from helpdeskd.adapters.store import open_store
        from helpdeskd.adapters.store.postgres import close_pools

        self.admin(f"CREATE DATABASE {TEMPLATE}")
        open_store(self.url(TEMPLATE)).close()
        close_pools()

    def database(self, *, migrated: bool = True) -> str:
        """A new database of its own: migrated (from the template), or empty."""
        name = f"helpdeskd_test_{next(self.numbers)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE if migrated else 'template0'}")
        return name

    def drop(self, name: str) -> None:
        from helpdeskd.adapters.store.postgres import close_pools

        close_pools()  # the test's own connections; a stopped daemon's are gone already
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def password_role(self, name: str, password: str) -> None:
        """A role that signs in with a password, owner of nothing, allowed everywhere."""
        self.admin(f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{password}'")


@contextlib.contextmanager
def running_cluster(fsync: bool = False) -> Iterator[Cluster]:
    bindir = binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on "
            "PATH): `make postgresql` installs it"
        )
    folder = Path(tempfile.mkdtemp(prefix="helpdeskd-pg-"))
    cluster = Cluster(bindir, folder, fsync)
    try:
        cluster.start()
        cluster.make_template()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
