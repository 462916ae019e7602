"""The command line starts fast: a command imports what it needs when it runs, no more."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpdeskd.cli import COMMANDS, command, parser
from tests.support import write_config

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
# What only a first-hop entrance (DKIM, SPF, DMARC) or a calendar's holiday_country needs
FIRST_HOP_AND_HOLIDAYS = ("dkim", "spf", "dns", "holidays")


def imported(*args: str) -> set[str]:
    """The modules `python -X importtime -m helpdeskd ARGS` imports."""
    return imported_by("-m", "helpdeskd", *args)


def imported_by(*argv: str) -> set[str]:
    """The modules `python -X importtime ARGV` imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
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


def test_the_daemon_and_the_mail_commands_load_no_first_hop_or_holiday_library(tmp_path):
    """Each daemon and each command the tests start pays its imports: the DNS, DKIM, SPF and
    holiday libraries wait until a mail at a first-hop entrance or a holiday_country needs
    them."""
    config = write_config(tmp_path)
    code = (
        "import helpdeskd.commands.daemon, helpdeskd.commands.mail, helpdeskd.commands.cases\n"
        f"from helpdeskd import config; config.load({str(config)!r})"
    )
    assert loaded(imported_by("-c", code), FIRST_HOP_AND_HOLIDAYS) == []


def test_every_command_is_in_the_table_and_its_function_exists() -> None:
    subcommands = next(a for a in parser()._actions if a.dest == "command").choices
    assert set(subcommands) == set(COMMANDS)
    for name in COMMANDS:
        assert callable(command(name)), name
