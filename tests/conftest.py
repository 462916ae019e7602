"""Shared fixtures: the real-world corpus beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the mail corpus is missing: expected it at {CORPUS}")
    return CORPUS


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
def daemon(tmp_path: Path, sink):
    """`helpdeskd run` on the test configuration, relaying to `sink`."""
    from tests.support import Daemon, free_port, write_config

    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
    with Daemon(config, port) as running:
        yield running
