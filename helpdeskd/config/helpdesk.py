"""[helpdesk] and the operator's sections: [logging], [metrics], [retention]."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from helpdeskd import database_url
from helpdeskd.config.reader import Reader, _port, _readable
from helpdeskd.database_url import DatabaseUrl

# Installed, the templates sit inside the package; in a source checkout, beside it.
PACKAGED_TEMPLATES = next(
    (
        p
        for p in (Path(__file__).parents[1] / "templates", Path(__file__).parents[2] / "templates")
        if p.is_dir()
    ),
    Path(__file__).parents[1] / "templates",
)


SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(%|b|kb|kib|mb|mib|gb|gib)?\s*$")
SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}


@dataclass(frozen=True)
class FreeSpace:
    """`[helpdesk] min_free_space`: "2MB" (a size), "5%" (of the filesystem) or, by default,
    the smaller of 256 MB and 5%, so that a small disk is not short all the time."""

    size: int | None = 256 << 20
    percent: float | None = 5.0

    def of(self, total: int) -> int:
        """The margin in bytes on a filesystem of `total` bytes."""
        share = None if self.percent is None else int(total * self.percent / 100)
        return min(v for v in (self.size, share) if v is not None)


def parse_free_space(text: str) -> FreeSpace:
    found = SIZE.match(text)
    if not found:
        raise ValueError(f'must be a size like "256MB" or a share like "5%", not {text!r}')
    amount, unit = float(found[1]), (found[2] or "b").lower().replace("i", "")
    if unit == "%":
        if amount > 50:
            raise ValueError(f"{text!r} would leave most of the disk unused: at most 50%")
        return FreeSpace(size=None, percent=amount)
    return FreeSpace(size=int(amount * SIZE_UNITS[unit]), percent=None)


@dataclass(frozen=True)
class Helpdesk:
    name: str
    addresses: tuple[str, ...]
    admins: tuple[str, ...]
    reference_prefix: str
    database: Path | DatabaseUrl  # an SQLite file, or a PostgreSQL server
    timezone: str
    templates: Path
    allowlist: Path | None = None  # machine-managed file of allow-list changes, merged in
    # who holds outgoing mail being delivered (with the process id): the host name by default
    node: str = field(default_factory=socket.gethostname)
    # below this much free space mail is refused with 452 and `status` is unhealthy
    min_free_space: FreeSpace = FreeSpace()
    # a node's hold on the sweep and on each IMAP mailbox lasts this long without renewal:
    # the longest another node waits before it takes over from a dead one
    lease_seconds: int = 30

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
            "database_password_file",
            "timezone",
            "templates",
            "allowlist",
            "node",
            "min_free_space",
            "lease_seconds",
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
        database=_database(r, t, p),
        timezone=r.timezone(r.get(t, "timezone", p, str, "UTC"), f"{p}.timezone") or "UTC",
        templates=_templates(r, r.path(t, "templates", p), f"{p}.templates"),
        allowlist=r.path(t, "allowlist", p),
        node=_node(r, r.get(t, "node", p, str), f"{p}.node"),
        min_free_space=_free_space(r, r.get(t, "min_free_space", p, str), f"{p}.min_free_space"),
        lease_seconds=_lease_seconds(
            r, r.get(t, "lease_seconds", p, int, 30), f"{p}.lease_seconds"
        ),
    )


def _database(r: Reader, t: dict, p: str) -> Path | DatabaseUrl:
    """A path is an SQLite file; a value written as a URL is never taken for one (it would
    make a folder named `postgresql:`), and only postgresql:// ones are accepted."""
    text = r.get(t, "database", p, str)
    password_file = r.path(t, "database_password_file", p)
    if text is None or not database_url.looks_like_url(text):
        if password_file:
            r.problem(f"{p}.database_password_file", "is for a postgresql:// database only")
        return r.path(t, "database", p, "var/helpdesk.db")
    if why := database_url.problem(text.strip()):
        r.problem(f"{p}.database", why)
    password_file = _readable(r, password_file, f"{p}.database_password_file")
    return DatabaseUrl(text.strip(), password_file)


def _node(r: Reader, name: str | None, key: str) -> str:
    if name is None:
        return socket.gethostname()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
        r.problem(key, f"must be a name of letters, digits, '.', '_' or '-', not {name!r}")
    return name


def _lease_seconds(r: Reader, seconds: int, key: str) -> int:
    if not 3 <= seconds <= 3600:
        r.problem(key, f"must be between 3 and 3600 seconds, not {seconds}")
        return 30
    return seconds


def _free_space(r: Reader, text: str | None, key: str) -> FreeSpace:
    if text is None:
        return FreeSpace()
    try:
        return parse_free_space(text)
    except ValueError as exc:
        r.problem(key, str(exc))
        return FreeSpace()


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
