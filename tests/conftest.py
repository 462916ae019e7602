"""Shared fixtures: the real-world mail corpus, logging, the umask, a relay and the daemon."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OWN_CORPUS = ROOT / "tests" / "corpus"  # in the repository: every clone can run the tests
LARGER_CORPUS = ROOT.parent / "shared" / "corpus"  # optional, beside the repository
ABOUT = {"README.md", "NOTICE", ".gitattributes"}  # files about a corpus, not in it


def chosen_corpus(own: Path, larger: Path) -> Path:
    """The repository's copy, unless a larger set laid out the same way holds files it lacks:
    then that set, so newly collected mail is tested before it is copied in."""
    if not larger.is_dir():
        return own
    return larger if _files(larger) - _files(own) else own


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - ABOUT


@pytest.fixture(scope="session")
def corpus() -> Path:
    return chosen_corpus(OWN_CORPUS, LARGER_CORPUS)


@pytest.fixture(autouse=True, scope="session")
def quiet_logs():
    """The library logs JSON lines; in tests only warnings are worth reading."""
    from helpdeskd import logs

    logs.configure("WARNING")


# The test process's own umask, read before any test runs.
UMASK = os.umask(0o022)
os.umask(UMASK)


@pytest.fixture(autouse=True)
def umask_kept():
    """A command run in-process (`cli.main`) sets the umask to 0077 for good, as the daemon
    must; what a later test sets up (Dovecot's unprivileged processes reading the files the
    test writes) needs the test process's own umask back."""
    yield
    os.umask(UMASK)


@pytest.fixture
def sink():
    """A real SMTP server standing in for the company's relay."""
    from tests.support import Sink

    with Sink() as running:
        yield running


@pytest.fixture
def daemon(tmp_path: Path, sink, request):
    """`helpdeskd run` on the test configuration, relaying to `sink` (on each store when the
    test takes the `database` fixture)."""
    from tests.support import Daemon, free_port, write_config

    if "database" in request.fixturenames:
        request.getfixturevalue("database")  # before the configuration names it

    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
    with Daemon(config, port) as running:
        yield running


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster of the test run's own (tests/postgres.py); skipped when the server
    is not installed."""
    from tests.postgres import running_cluster

    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres) -> Iterator[str]:
    """The URL of a fresh, migrated database of this test's own."""
    name = postgres.database()
    yield postgres.url(name)
    postgres.drop(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path: Path, monkeypatch) -> Path | str:
    """The test's database on each store: an SQLite file, then a PostgreSQL URL.
    `tests.support.write_config` writes it into the configuration it makes."""
    from tests import support

    if request.param == "sqlite":
        return tmp_path / "helpdesk.db"
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setattr(support, "DATABASE", url)
    return url


@pytest.fixture
def store(database):
    """An open store on each database (the `database` fixture), migrated."""
    from helpdeskd.adapters.store import open_store

    opened = open_store(database)
    yield opened
    opened.close()
