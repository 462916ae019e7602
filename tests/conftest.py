"""Shared fixtures: the real-world corpus beside the repository."""

from __future__ import annotations

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
