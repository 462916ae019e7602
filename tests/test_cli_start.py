"""The command line starts fast: a command imports what it needs when it runs, no more."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpdeskd.cli import COMMANDS, command, parser

ROOT = Path(__file__).resolve().parents[1]
# What the daemon and the mail commands need, and none of --version, --help or completion does
HEAVY = (
    "jinja2",
    "sqlite_utils",
    "aiosmtpd",
    "structlog",
    "helpdeskd.config",
    "helpdeskd.adapters",
)
MAIL_PARSING = ("email.parser", "email.feedparser", "email.policy", "helpdeskd.core.parse")


def imported(*args: str) -> set[str]:
    """The modules `python -X importtime -m helpdeskd ARGS` imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "helpdeskd", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rpartition("|")[2].strip() for line in lines}


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.startswith(prefixes))


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["cases", "--help"]])
def test_version_and_help_load_no_library(args: list[str]) -> None:
    assert loaded(imported(*args), HEAVY + MAIL_PARSING) == []


def test_completion_loads_no_library() -> None:
    assert loaded(imported("completion", "bash"), HEAVY) == []


def test_every_command_is_in_the_table_and_its_function_exists() -> None:
    subcommands = next(a for a in parser()._actions if a.dest == "command").choices
    assert set(subcommands) == set(COMMANDS)
    for name in COMMANDS:
        assert callable(command(name)), name
