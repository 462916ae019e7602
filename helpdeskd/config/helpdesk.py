"""[helpdesk] and the operator's sections: [logging], [metrics], [retention]."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from helpdeskd.config.reader import Reader, _port

# Installed, the templates sit inside the package; in a source checkout, beside it.
PACKAGED_TEMPLATES = next(
    (
        p
        for p in (Path(__file__).parents[1] / "templates", Path(__file__).parents[2] / "templates")
        if p.is_dir()
    ),
    Path(__file__).parents[1] / "templates",
)


@dataclass(frozen=True)
class Helpdesk:
    name: str
    addresses: tuple[str, ...]
    admins: tuple[str, ...]
    reference_prefix: str
    database: Path
    timezone: str
    templates: Path
    allowlist: Path | None = None  # machine-managed file of allow-list changes, merged in

    @property
    def address(self) -> str:
        """The From of outgoing mail."""
        return self.addresses[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class Logging:
    level: str = "INFO"
    output: str = "auto"  # "auto": the journal when systemd connected us to it; "journal"; "stderr"


@dataclass(frozen=True)
class Metrics:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9325


@dataclass(frozen=True)
class Retention:
    # raw mail (and its attachments) of cases closed longer ago than this is removed; None keeps it
    raw_mail_days: int | None = None


def _helpdesk(r: Reader, t: dict) -> Helpdesk:
    p = "helpdesk"
    r.unknown(
        t,
        p,
        {
            "name",
            "addresses",
            "admins",
            "reference_prefix",
            "database",
            "timezone",
            "templates",
            "allowlist",
        },
    )
    addresses = r.addresses(t, "addresses", p)
    if not addresses:
        r.problem(f"{p}.addresses", "at least one support address is required")
    prefix = r.get(t, "reference_prefix", p, str, "HD")
    if not re.fullmatch(r"[A-Z][A-Z0-9]{0,9}", prefix):
        r.problem(f"{p}.reference_prefix", 'must be 1-10 capital letters or digits, e.g. "HD"')
    return Helpdesk(
        name=r.get(t, "name", p, str, "Support"),
        addresses=addresses or ("support@localhost.localdomain",),
        admins=r.addresses(t, "admins", p),
        reference_prefix=prefix,
        database=r.path(t, "database", p, "var/helpdesk.db"),
        timezone=r.timezone(r.get(t, "timezone", p, str, "UTC"), f"{p}.timezone") or "UTC",
        templates=_templates(r, r.path(t, "templates", p), f"{p}.templates"),
        allowlist=r.path(t, "allowlist", p),
    )


def _templates(r: Reader, folder: Path | None, key: str) -> Path:
    """A folder of one's own must hold every template the daemon renders, or mail fails later."""
    if folder is None:
        return PACKAGED_TEMPLATES
    if not folder.is_dir():
        r.problem(key, f"not a folder: {folder}")
        return folder
    # files starting with "_" are included by the others, so they are needed just the same
    needed = sorted(p.name for p in PACKAGED_TEMPLATES.glob("*.txt"))
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        r.problem(key, f"templates missing from {folder}: {', '.join(missing)}")
    return folder


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _logging(r: Reader, t: dict) -> Logging:
    p = "logging"
    r.unknown(t, p, {"level", "output"})
    level = r.get(t, "level", p, str, Logging.level).upper()
    if level not in LOG_LEVELS:
        r.problem(f"{p}.level", f"must be one of {', '.join(LOG_LEVELS)}")
        level = Logging.level
    return Logging(level, r.choice(t, "output", p, ("auto", "journal", "stderr"), "auto"))


def _metrics(r: Reader, t: dict) -> Metrics:
    p = "metrics"
    r.unknown(t, p, {"enabled", "host", "port"})
    return Metrics(
        enabled=r.get(t, "enabled", p, bool, False),
        host=r.get(t, "host", p, str, Metrics.host),
        port=_port(r, t, p, Metrics.port),
    )


def _retention(r: Reader, t: dict) -> Retention:
    """Whole calendar days: retention is about law and disk, not about business hours."""
    p = "retention"
    r.unknown(t, p, {"raw_mail_after"})
    text = r.get(t, "raw_mail_after", p, str)
    if text is None:
        return Retention()
    days = retention_days(text)
    if days is None:
        r.problem(f"{p}.raw_mail_after", f'must be whole days like "365d", not {text!r}')
    return Retention(days)


def retention_days(text: str) -> int | None:
    """ "90d" -> 90; anything else (another unit, zero, junk) -> None."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*d\s*", text)
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None
