"""The shape of the code: the core stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "helpdeskd" / "core"
# I/O the core must leave to the adapters: sockets, SQL, the file system's state, the clock
FORBIDDEN = (
    "helpdeskd.adapters",
    "helpdeskd.pipeline",
    "helpdeskd.service",
    "helpdeskd.cli",
    "sqlite3",
    "sqlite_utils",
    "socket",
    "smtplib",
    "imapclient",
    "aiosmtpd",
    "subprocess",
    "asyncio",
    "apscheduler",
    "starlette",
    "uvicorn",
)


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_does_no_io(module: Path):
    bad = {name for name in imported(module) if name.startswith(FORBIDDEN)}
    assert not bad, f"{module.name} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_never_reads_the_clock(module: Path):
    source = module.read_text(encoding="utf-8")
    for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
        assert call not in source, f"{module.name} reads the clock with {call}: take `now`"
