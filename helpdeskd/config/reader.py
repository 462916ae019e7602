"""The reader every section uses: typed values out of TOML tables, every problem recorded with
its key path, and the shapes shared by many sections (addresses, ports, readable files)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdeskd.core.calendar import UNITS, Duration, parse_duration

PRIORITIES = ("P1", "P2", "P3", "P4")


LONGEST_DURATION_MINUTES = 3650 * 24 * 60


ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")


DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")


class ConfigError(Exception):
    """The file was refused; `problems` lists (key path, reason) for every problem found."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{key}: {why}" for key, why in problems))


class Reader:
    """Takes typed values out of TOML tables, recording every problem with its key path."""

    def __init__(self, base: Path):
        self.base = base
        self.problems: list[tuple[str, str]] = []
        self.allowlist: Path | None = None  # read instead of [helpdesk] allowlist

    def problem(self, key: str, why: str) -> None:
        self.problems.append((key, why))

    def table(self, data: dict, key: str, path: str) -> dict:
        value = data.get(key, {})
        if isinstance(value, dict):
            return value
        self.problem(path, "must be a table")
        return {}

    def tables(self, data: dict, key: str) -> list[tuple[str, dict]]:
        """An array of tables, each with its path (`customers[2]`)."""
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(key, "must be an array of tables ([[" + key + "]])")
            return []
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]

    def unknown(self, data: dict, path: str, known: set[str]) -> None:
        for key in data:
            if key not in known:
                where = f"{path}.{key}" if path else key
                self.problem(where, f"unknown key (known: {', '.join(sorted(known))})")

    def get(self, data: dict, key: str, path: str, kind: type | tuple, default: Any = None) -> Any:
        if key not in data:
            return default
        value = data[key]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.problem(_join(path, key), f"must be {_kind_name(kind)}, not {value!r}")
            return default
        return value

    def required(self, data: dict, key: str, path: str, kind: type | tuple) -> Any:
        if key not in data:
            self.problem(_join(path, key), "is required")
            return None
        return self.get(data, key, path, kind)

    def strings(self, data: dict, key: str, path: str) -> tuple[str, ...]:
        value = self.get(data, key, path, list, [])
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            self.problem(_join(path, key), f"must be a list of strings, has {bad[0]!r}")
        return tuple(v for v in value if isinstance(v, str))

    def address(self, value: str | None, path: str) -> str | None:
        if value is None:
            return None
        if not ADDRESS.match(value):
            self.problem(path, f"not an email address: {value!r}")
        return value.lower()

    def addresses(self, data: dict, key: str, path: str) -> tuple[str, ...]:
        found = self.strings(data, key, path)
        return tuple(self.address(v, f"{_join(path, key)}[{i}]") for i, v in enumerate(found))

    def duration(self, data: dict, key: str, path: str, default: Duration | None) -> Any:
        text = self.get(data, key, path, str)
        return default if text is None else self.parse_duration(text, _join(path, key))

    def parse_duration(self, text: Any, path: str) -> Duration | None:
        if not isinstance(text, str):
            self.problem(path, f'must be a duration string like "4h", not {text!r}')
            return None
        try:
            duration = parse_duration(text)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None
        # beyond this, deadlines pass year 9999 (OverflowError) or take the calendar long to count
        if duration.amount * UNITS[duration.unit] > LONGEST_DURATION_MINUTES:
            self.problem(path, f"{text!r} is too long: at most 3650d, about ten years")
            return None
        return duration

    def path(self, data: dict, key: str, path: str, default: str | None = None) -> Path | None:
        text = self.get(data, key, path, str, default)
        if text is not None and ("\0" in text or not text.strip()):
            # the system refuses a NUL only when the daemon opens the file; an empty path
            # would quietly mean this file's folder
            self.problem(_join(path, key), f"not a usable path: {text!r}")
            text = default
        return None if text is None else self.base / text

    def choice(self, data: dict, key: str, path: str, choices: tuple, default: Any) -> Any:
        value = self.get(data, key, path, type(default) if default is not None else str, default)
        if value not in choices:
            self.problem(_join(path, key), f"must be one of {', '.join(map(str, choices))}")
            return default
        return value

    def positive(self, data: dict, key: str, path: str, default: int) -> int:
        value = self.get(data, key, path, int, default)
        if value <= 0:
            self.problem(_join(path, key), "must be a positive whole number")
            return default
        return value

    def timezone(self, value: str | None, path: str) -> str | None:
        try:
            if value is not None:
                ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(path, f"unknown time zone {value!r}")
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind_name(kind: type | tuple) -> str:
    names = {
        str: "a string",
        int: "a whole number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        float: "a number",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _port(r: Reader, t: dict, p: str, default: int) -> int:
    port = r.get(t, "port", p, int, default)
    if not 0 <= port <= 65535:
        r.problem(f"{p}.port", "must be between 0 and 65535")
        return default
    return port


def _readable(r: Reader, path: Path | None, key: str) -> Path | None:
    if path is not None and not _is_readable_file(path):
        r.problem(key, f"not a file that can be read: {path}")
    return path


def _is_readable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)
