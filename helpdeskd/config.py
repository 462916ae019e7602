"""The TOML configuration, read into frozen dataclasses.

Every problem is collected with the path of its key (`plans.gold.first_response.P5`) so an admin
sees all of them at once; nothing is half-loaded.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import shutil
import ssl
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdeskd import database_url
from helpdeskd.core.calendar import UNITS, Calendar, CalendarError, Duration, parse_duration
from helpdeskd.database_url import DatabaseUrl

PRIORITIES = ("P1", "P2", "P3", "P4")
LONGEST_DURATION_MINUTES = 3650 * 24 * 60
# Installed, the templates sit inside the package; in a source checkout, beside it.
PACKAGED_TEMPLATES = next(
    (
        p
        for p in (Path(__file__).parent / "templates", Path(__file__).parents[1] / "templates")
        if p.is_dir()
    ),
    Path(__file__).parent / "templates",
)
ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")
DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")


class ConfigError(Exception):
    """The file was refused; `problems` lists (key path, reason) for every problem found."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{key}: {why}" for key, why in problems))


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

    @property
    def address(self) -> str:
        """The From of outgoing mail."""
        return self.addresses[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class Smtp:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8025
    lmtp: bool = False
    max_message_size: int = 25 * 1024 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # connection limits and timeouts (seconds): see helpdeskd/adapters/connections.py
    max_connections: int = 200
    max_connections_per_client: int = 20
    greeting_timeout: int = 30
    command_timeout: int = 300
    data_timeout: int = 300
    session_timeout: int = 900
    # Clients connect straight to the listener (helpdeskd is the MX): no Authentication-Results
    # they bring is believed, and helpdeskd checks DKIM, SPF and DMARC itself.
    first_hop: bool = True


@dataclass(frozen=True)
class Mailbox:
    name: str
    host: str
    port: int
    tls: str  # "ssl" (IMAPS), "starttls" or "none"
    username: str
    password_file: Path | None
    password_command: str | None
    oauth2_token_command: str | None
    folder: str = "INBOX"
    processed_folder: str | None = None
    idle: bool = True
    poll_interval: int = 60  # seconds
    alert_after: int = 900  # seconds a mailbox may be unreachable before admins are told
    batch_size: int = 50
    ca_file: Path | None = None  # trust this CA (or self-signed certificate) for the server
    first_hop: bool = False  # True: nobody checked its mail before helpdeskd, which checks it


MAX_RELAY_CONNECTIONS = 16


@dataclass(frozen=True)
class Outbound:
    transport: str = "maildir"
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password_file: Path | None = None
    path: Path | None = None
    max_attempts: int = 8
    backoff: int = 30  # seconds before the first retry; doubles each attempt
    backoff_max: int = 3600
    tls: str = "none"  # "starttls", "implicit" (SMTPS, port 465) or "none"
    ca_file: Path | None = None  # trust this CA (or self-signed certificate) for the relay
    automatic_sender: str = ""  # envelope sender of automatic mail; "" is the null sender
    connections: int = 1  # relay sessions a flush delivers through side by side


@dataclass(frozen=True)
class Plan:
    name: str
    calendar: str
    first_response: dict[str, Duration]
    resolution: dict[str, Duration]
    calendars: dict[str, str]  # per-priority calendar override
    warn_at: float = 0.8
    notify_tier: int = 1
    survey: bool = False  # ask the customer to rate a case once it is resolved or closed
    fair_use_cap: int | None = None  # new cases per customer in a report's period

    def calendar_for(self, priority: str) -> str:
        return self.calendars.get(priority, self.calendar)


@dataclass(frozen=True)
class Customer:
    name: str
    domains: tuple[str, ...]
    addresses: tuple[str, ...]
    plan: str
    plan_expires: date | None = None
    authorized_only: bool = False
    primary_contact: str | None = None
    stand_in_contacts: tuple[str, ...] = ()

    @property
    def contacts(self) -> tuple[str, ...]:
        """Who hears about the service itself: reports, announcements."""
        primary = (self.primary_contact,) if self.primary_contact else ()
        return tuple(dict.fromkeys((*primary, *self.stand_in_contacts)))


@dataclass(frozen=True)
class Engineer:
    name: str
    email: str
    tier: int = 1


@dataclass(frozen=True)
class EscalationLevel:
    notify: tuple[str, ...]
    on: str  # "warn" | "breach"
    after: Duration | None = None
    name: str | None = None  # how the customer hears of the level ("Team lead")


@dataclass(frozen=True)
class AlertRoutes:
    """Where admin alerts go when the outbound relay does not take them, tried in this order:
    a Maildir, a command given the mail on stdin, a second relay."""

    maildir: Path | None = None
    command: tuple[str, ...] = ()
    relay: Outbound | None = None

    def __bool__(self) -> bool:
        return bool(self.maildir or self.command or self.relay)


@dataclass(frozen=True)
class Policy:
    unknown_sender: str = "standard"
    default_plan: str = "standard"
    default_priority: str = "P3"
    priority_keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    close_warning_after: Duration = Duration(5, "d")
    close_after_warning: Duration = Duration(2, "d")
    reopen_window: Duration = Duration(10, "d")
    require_dmarc_pass: bool = False
    trusted_authserv_id: str | None = None
    new_cases_per_hour: int = 20  # per sender
    auto_replies_per_hour: int = 10  # per recipient, the last guard against mail loops
    max_attempts: int = 5  # processing tries before a message is quarantined
    forward_attachments_max: int = 10 * 1024 * 1024  # bytes attached to engineers' copies
    processing_budget: float = 5.0  # seconds one message may hold the worker
    mails_per_hour_per_recipient: int = 30  # all mail to one outside address, relays included
    loop_messages: int = 10  # inbound mails from one outside address on one case per window...
    loop_repeats: int = 3  # ...or this many with the same text: forwarding pauses
    loop_window: Duration = Duration(1, "h")
    trust_unauthenticated_engineers: bool = False  # test set-ups only: see check-config

    unauthorized: str = "forward"  # notice | forward | open: an authorized_only domain's others
    unauthorized_open_keywords: tuple[str, ...] = ()  # words that open the case all the same
    escalation_request_interval: Duration = Duration(1, "d")  # per case, for customers
    survey_after_auto_close: bool = False
    fair_use_multiple: float = 3.0  # of the median of new cases per customer
    announce_to: str = "contacts"  # contacts (primary and stand-in) | all (every listed address)
    monthly_report: bool = True  # each customer's figures to its contacts, monthly


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


@dataclass(frozen=True)
class Authentication:
    """helpdeskd's own DKIM/SPF/DMARC check at a first-hop entrance."""

    authserv_id: str  # written in our Authentication-Results; default the helpdesk's domain
    dns_servers: tuple[str, ...] = ()  # empty: the system's resolvers (/etc/resolv.conf)
    dns_port: int = 53
    dns_timeout: float = 5.0  # seconds for all of one message's lookups together
    ingest_first_hop: bool = False  # `ingest` gets mail no trusted MTA has checked


@dataclass(frozen=True)
class Web:
    """The optional status page. Off by default: no port is opened unless an admin says so."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    link_ttl: int = 900  # seconds a mailed sign-in link stays valid (wall-clock time)
    session_ttl: int = 8 * 3600  # seconds a sign-in lasts
    secret_file: Path | None = None  # default: web-secret beside the database

    @property
    def secure(self) -> bool:
        """Behind TLS the session cookie is marked Secure."""
        return self.base_url.startswith("https://")


@dataclass(frozen=True)
class Config:
    path: Path
    helpdesk: Helpdesk
    smtp: Smtp
    imap: tuple[Mailbox, ...]
    outbound: Outbound
    calendars: dict[str, Calendar]
    plans: dict[str, Plan]
    customers: tuple[Customer, ...]
    engineers: tuple[Engineer, ...]
    escalation: tuple[EscalationLevel, ...]
    policy: Policy
    alerts: AlertRoutes = AlertRoutes()
    logging: Logging = Logging()
    metrics: Metrics = Metrics()
    retention: Retention = Retention()
    authentication: Authentication | None = None  # None only in configs built by hand

    web: Web = Web()

    def first_hop(self, source: str) -> bool:
        """Whether mail from this entrance (a spool row's source) comes straight from the
        sender, so that helpdeskd is the hop that must check it."""
        if source == "smtp":
            return self.smtp.first_hop
        if source == "ingest":
            return self.authentication is not None and self.authentication.ingest_first_hop
        name = source.removeprefix("imap:")
        return any(box.first_hop for box in self.imap if box.name == name)

    def engineer(self, address: str) -> Engineer | None:
        return next((e for e in self.engineers if e.email == address.lower()), None)

    @functools.cached_property
    def staff(self) -> frozenset[str]:
        """Our own people: engineers, escalation contacts and admins (asked per recipient and
        per message, so worked out once per loaded config)."""
        levels = (a for level in self.escalation for a in level.notify)
        return frozenset((*(e.email for e in self.engineers), *levels, *self.helpdesk.admins))


SYSTEM_CONFIG = Path("/etc/helpdeskd/helpdeskd.toml")
DEMO_CONFIG = Path("config.example.toml")


def default_path(system: Path | None = None) -> Path:
    """$HELPDESKD_CONFIG, else the installed file when there is one, else the demo file in the
    current folder (`make run`). `system` stands in for /etc in tests."""
    if os.environ.get("HELPDESKD_CONFIG"):
        return Path(os.environ["HELPDESKD_CONFIG"])
    system = system or SYSTEM_CONFIG
    return system if system.exists() else DEMO_CONFIG


def load(path: Path | str, allowlist: Path | None = None) -> Config:
    """Read and validate the file; raise ConfigError listing every problem. `allowlist`
    stands in for the file [helpdesk] allowlist names: a change is tried before it is kept."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([("(file)", f"cannot read {path}: {exc.strerror}")]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([("(file)", f"not valid TOML: {exc}")]) from exc
    reader = Reader(path.resolve().parent)
    reader.allowlist = allowlist
    config = _build(reader, path, data)
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


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


def _build(r: Reader, path: Path, data: dict) -> Config:
    r.unknown(
        data,
        "",
        {
            "helpdesk",
            "smtp",
            "imap",
            "outbound",
            "calendars",
            "plans",
            "customers",
            "engineers",
            "escalation",
            "policy",
            "alerts",
            "logging",
            "metrics",
            "retention",
            "authentication",
            "web",
        },
    )
    calendars = _calendars(r, r.table(data, "calendars", "calendars"))
    plans = _plans(r, r.table(data, "plans", "plans"), calendars)
    smtp, imap = _smtp(r, r.table(data, "smtp", "smtp")), _mailboxes(r, data)
    policy = _policy(r, r.table(data, "policy", "policy"), plans, smtp.enabled and smtp.first_hop)
    engineers = tuple(_engineer(r, p, t) for p, t in r.tables(data, "engineers"))
    helpdesk = _helpdesk(r, r.table(data, "helpdesk", "helpdesk"))
    return Config(
        path=path,
        helpdesk=helpdesk,
        smtp=smtp,
        imap=imap,
        outbound=_outbound(r, r.table(data, "outbound", "outbound")),
        calendars=calendars,
        plans=plans,
        customers=_customers(r, data, plans, _allowlist(r, r.allowlist or helpdesk.allowlist)),
        engineers=engineers,
        escalation=_escalation(r, r.table(data, "escalation", "escalation")),
        policy=policy,
        alerts=_alert_routes(r, r.table(data, "alerts", "alerts")),
        logging=_logging(r, r.table(data, "logging", "logging")),
        metrics=_metrics(r, r.table(data, "metrics", "metrics")),
        retention=_retention(r, r.table(data, "retention", "retention")),
        authentication=_authentication(
            r, r.table(data, "authentication", "authentication"), helpdesk
        ),
        web=_web(r, r.table(data, "web", "web")),
    )


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


def _smtp(r: Reader, t: dict) -> Smtp:
    p = "smtp"
    r.unknown(t, p, {*SMTP_KEYS, *SMTP_LIMITS})
    cert, key = _tls_files(r, t, p)
    return Smtp(
        enabled=r.get(t, "enabled", p, bool, True),
        host=r.get(t, "host", p, str, "127.0.0.1"),
        port=_port(r, t, p, 8025),
        lmtp=r.get(t, "lmtp", p, bool, False),
        max_message_size=r.positive(t, "max_message_size", p, Smtp.max_message_size),
        tls_cert=cert,
        tls_key=key,
        **{k: r.positive(t, k, p, getattr(Smtp, k)) for k in SMTP_LIMITS},
        first_hop=r.get(t, "first_hop", p, bool, True),
    )


SMTP_KEYS = (
    "enabled",
    "host",
    "port",
    "lmtp",
    "max_message_size",
    "tls_cert",
    "tls_key",
    "first_hop",
)
SMTP_LIMITS = (
    "max_connections",
    "max_connections_per_client",
    "greeting_timeout",
    "command_timeout",
    "data_timeout",
    "session_timeout",
)


def _web(r: Reader, t: dict) -> Web:
    p = "web"
    r.unknown(
        t, p, {"enabled", "host", "port", "base_url", "link_ttl", "session_ttl", "secret_file"}
    )
    port = _port(r, t, p, Web.port)
    base_url = r.get(t, "base_url", p, str, f"http://127.0.0.1:{port}").rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", base_url):
        r.problem(f"{p}.base_url", f"not an http(s) URL: {base_url!r}")
    return Web(
        enabled=r.get(t, "enabled", p, bool, False),
        host=r.get(t, "host", p, str, Web.host),
        port=port,
        base_url=base_url,
        link_ttl=r.positive(t, "link_ttl", p, Web.link_ttl),
        session_ttl=r.positive(t, "session_ttl", p, Web.session_ttl),
        secret_file=r.path(t, "secret_file", p),
    )


def _tls_files(r: Reader, t: dict, p: str) -> tuple[Path | None, Path | None]:
    cert = _readable(r, r.path(t, "tls_cert", p), f"{p}.tls_cert")
    key = _readable(r, r.path(t, "tls_key", p), f"{p}.tls_key")
    if (cert is None) != (key is None):
        r.problem(
            f"{p}.tls_key" if key is None else f"{p}.tls_cert", "tls_cert and tls_key go together"
        )
    elif cert and key and all(map(_is_readable_file, (cert, key))):
        _tls_pair(r, cert, key, f"{p}.tls_cert")
    return cert, key


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> bytes:
    # the listener has no passphrase to give; without this OpenSSL would ask on the terminal
    raise _EncryptedKey


def _tls_pair(r: Reader, cert: Path, key: Path, where: str) -> None:
    """Load the pair as the listener will: a bad one would stop the daemon at start-up, or
    lose the listener on SIGHUP."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKey:
        r.problem(where, f"{key} is encrypted; the daemon needs a key without a passphrase")
    except OSError as exc:  # ssl.SSLError included: not PEM, or a key of another certificate
        r.problem(where, f"{cert} and {key} do not load as a certificate and its key: {exc}")


def _port(r: Reader, t: dict, p: str, default: int) -> int:
    port = r.get(t, "port", p, int, default)
    if not 0 <= port <= 65535:
        r.problem(f"{p}.port", "must be between 0 and 65535")
        return default
    return port


MAILBOX_KEYS = {
    "name",
    "host",
    "port",
    "tls",
    "username",
    "password_file",
    "password_command",
    "oauth2_token_command",
    "folder",
    "processed_folder",
    "idle",
    "poll_interval",
    "alert_after",
    "batch_size",
    "ca_file",
    "first_hop",
}


def _mailboxes(r: Reader, data: dict) -> tuple[Mailbox, ...]:
    boxes = tuple(_mailbox(r, p, t) for p, t in r.tables(data, "imap"))
    names = [b.name for b in boxes]
    for name in {n for n in names if names.count(n) > 1}:
        r.problem("imap", f"mailbox name {name!r} is used twice")
    return boxes


def _mailbox(r: Reader, p: str, t: dict) -> Mailbox:
    r.unknown(t, p, MAILBOX_KEYS)
    tls = t.get("tls", "ssl")
    tls = {True: "ssl", False: "none"}.get(tls, tls) if isinstance(tls, bool) else tls
    if tls not in ("ssl", "starttls", "none"):
        r.problem(f"{p}.tls", 'must be "ssl", "starttls" or "none" (or true/false)')
    secrets = [k for k in ("password_file", "password_command", "oauth2_token_command") if k in t]
    if len(secrets) != 1:
        r.problem(p, "needs exactly one of password_file, password_command, oauth2_token_command")
    password_file = _readable(r, r.path(t, "password_file", p), f"{p}.password_file")
    # operational timeouts are wall-clock time, not working time
    alert = r.duration(t, "alert_after", p, Duration(15, "m"))
    return Mailbox(
        name=r.get(t, "name", p, str, p),
        host=r.required(t, "host", p, str) or "",
        port=_port(r, t, p, 993 if tls == "ssl" else 143),
        tls=tls if isinstance(tls, str) else "ssl",
        username=r.required(t, "username", p, str) or "",
        password_file=password_file,
        password_command=r.get(t, "password_command", p, str),
        oauth2_token_command=r.get(t, "oauth2_token_command", p, str),
        folder=r.get(t, "folder", p, str, "INBOX"),
        processed_folder=r.get(t, "processed_folder", p, str),
        idle=r.get(t, "idle", p, bool, True),
        poll_interval=r.positive(t, "poll_interval", p, 60),
        alert_after=int(alert.wall.total_seconds()) if alert else 900,
        batch_size=r.positive(t, "batch_size", p, 50),
        ca_file=_readable(r, r.path(t, "ca_file", p), f"{p}.ca_file"),
        first_hop=r.get(t, "first_hop", p, bool, False),
    )


def _readable(r: Reader, path: Path | None, key: str) -> Path | None:
    if path is not None and not _is_readable_file(path):
        r.problem(key, f"not a file that can be read: {path}")
    return path


def _is_readable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def _connections(r: Reader, t: dict, p: str) -> int:
    connections = r.positive(t, "connections", p, Outbound.connections)
    if connections > MAX_RELAY_CONNECTIONS:
        r.problem(f"{p}.connections", f"at most {MAX_RELAY_CONNECTIONS}")
    return min(connections, MAX_RELAY_CONNECTIONS)


def _outbound(r: Reader, t: dict) -> Outbound:
    p = "outbound"
    r.unknown(
        t,
        p,
        {
            "transport",
            "host",
            "port",
            "starttls",
            "username",
            "password_file",
            "path",
            "max_attempts",
            "backoff",
            "backoff_max",
            "tls",
            "ca_file",
            "automatic_sender",
            "connections",
        },
    )
    transport = r.choice(t, "transport", p, ("smtp", "maildir"), "maildir")
    starttls = r.get(t, "starttls", p, bool, False)
    # `starttls = true` is the older spelling of `tls = "starttls"`, still understood
    tls = r.choice(t, "tls", p, RELAY_TLS, "starttls" if starttls else "none")
    if starttls and tls != "starttls":
        r.problem(f"{p}.starttls", f'contradicts tls = "{tls}": keep only tls')
    # the keys of the other transport are left alone: an admin switching back and forth
    # keeps them, and nothing reads them
    path = r.path(t, "path", p, "var/outbox-maildir" if transport == "maildir" else None)
    host = r.get(t, "host", p, str, "127.0.0.1")
    username, password_file = r.get(t, "username", p, str), r.path(t, "password_file", p)
    if transport == "smtp":
        _relay(r, p, host, username, password_file)
    return Outbound(
        transport=transport,
        host=host,
        port=_port(r, t, p, 465 if tls == "implicit" else 25),
        starttls=tls == "starttls",
        username=username,
        password_file=password_file,
        path=path,
        max_attempts=r.positive(t, "max_attempts", p, 8),
        connections=_connections(r, t, p),
        backoff=r.positive(t, "backoff", p, 30),
        backoff_max=r.positive(t, "backoff_max", p, 3600),
        tls=tls,
        ca_file=_readable(r, r.path(t, "ca_file", p), f"{p}.ca_file"),
        automatic_sender=r.address(
            r.get(t, "automatic_sender", p, str) or None, f"{p}.automatic_sender"
        )
        or "",
    )


def _alert_routes(r: Reader, t: dict) -> AlertRoutes:
    p = "alerts"
    r.unknown(t, p, {"maildir", "command", "relay"})
    command = r.strings(t, "command", p)
    if "command" in t and (not command or not shutil.which(command[0])):
        r.problem(f"{p}.command", "must be a list: a program that can be run, then its arguments")
    relay = None
    if "relay" in t:
        q = f"{p}.relay"
        table = r.table(t, "relay", q)
        r.unknown(table, q, {"host", "port", "starttls"})
        host = r.required(table, "host", q, str) or ""
        starttls = r.get(table, "starttls", q, bool, False)
        relay = Outbound(
            "smtp", host, _port(r, table, q, 25), starttls, tls="starttls" if starttls else "none"
        )
    return AlertRoutes(maildir=r.path(t, "maildir", p), command=command, relay=relay)


RELAY_TLS = ("starttls", "implicit", "none")


def _relay(r: Reader, p: str, host: str, username: str | None, password: Path | None) -> None:
    if not host.strip():
        r.problem(f"{p}.host", 'is required with transport = "smtp"')
    # one without the other would quietly send without logging in
    if (username is None) != (password is None):
        missing = "password_file" if password is None else "username"
        r.problem(f"{p}.{missing}", "username and password_file go together")
    _readable(r, password, f"{p}.password_file")


def _calendars(r: Reader, tables: dict) -> dict[str, Calendar]:
    found = {}
    for name, t in tables.items():
        p = f"calendars.{name}"
        if not isinstance(t, dict):
            r.problem(p, "must be a table")
            continue
        calendar = _calendar(r, name, p, t)
        if calendar is not None:
            found[name] = calendar
    return found


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _calendar(r: Reader, name: str, p: str, t: dict) -> Calendar | None:
    r.unknown(
        t,
        p,
        {"timezone", "holidays", "holiday_country", "holiday_subdiv", "always_open", *WEEKDAYS},
    )
    hours = {day: t[day] for day in WEEKDAYS if day in t}
    try:
        return Calendar.build(
            name,
            timezone=r.required(t, "timezone", p, str) or "UTC",
            hours=hours,
            # entries go in as TOML gave them: Calendar.build takes dates and ISO strings and
            # lists anything else as a problem of its own (holidays[2])
            holidays=r.get(t, "holidays", p, list, []),
            holiday_country=r.get(t, "holiday_country", p, str),
            holiday_subdiv=r.get(t, "holiday_subdiv", p, str),
            always_open=r.get(t, "always_open", p, bool, False),
        )
    except CalendarError as exc:
        for key, why in exc.problems:
            # the weekdays sit directly in the calendar's table, not under "hours"
            r.problem(f"{p}.{key.removeprefix('hours.')}", why)
        return None


def _plans(r: Reader, tables: dict, calendars: dict) -> dict[str, Plan]:
    plans = {}
    for name, t in tables.items():
        if isinstance(t, dict):
            plans[name] = _plan(r, name, f"plans.{name}", t, calendars)
        else:
            r.problem(f"plans.{name}", "must be a table")
    if not plans:
        r.problem("plans", "at least one plan is required")
    return plans


def _plan(r: Reader, name: str, p: str, t: dict, calendars: dict) -> Plan:
    r.unknown(
        t,
        p,
        {
            "calendar",
            "first_response",
            "resolution",
            "calendars",
            "warn_at",
            "notify_tier",
            "survey",
            "fair_use_cap",
        },
    )
    calendar = r.required(t, "calendar", p, str)
    if calendar is not None and calendar not in calendars:
        r.problem(f"{p}.calendar", f"unknown calendar {calendar!r}")
    overrides = _calendar_overrides(r, t, p, calendars)
    warn_at = r.get(t, "warn_at", p, (int, float), 0.8)
    if not 0 < warn_at < 1:
        r.problem(f"{p}.warn_at", "must be a fraction between 0 and 1, e.g. 0.8")
    return Plan(
        name=name,
        calendar=calendar or "",
        first_response=_targets(r, t, "first_response", p),
        resolution=_targets(r, t, "resolution", p),
        calendars=overrides,
        warn_at=float(warn_at),
        notify_tier=r.choice(t, "notify_tier", p, (1, 2, 3), 1),
        survey=r.get(t, "survey", p, bool, False),
        fair_use_cap=r.positive(t, "fair_use_cap", p, 0) or None if "fair_use_cap" in t else None,
    )


def _calendar_overrides(r: Reader, t: dict, p: str, calendars: dict) -> dict[str, str]:
    """`calendars = { P1 = "around-the-clock" }`: a calendar name per priority."""
    table = r.table(t, "calendars", f"{p}.calendars")
    _priority_keys(r, table, f"{p}.calendars")
    for priority, name in table.items():
        if not isinstance(name, str):
            r.problem(f"{p}.calendars.{priority}", f"must be a calendar's name, not {name!r}")
        elif name not in calendars:
            r.problem(f"{p}.calendars.{priority}", f"unknown calendar {name!r}")
    return {k: v for k, v in table.items() if isinstance(v, str) and k in PRIORITIES}


def _targets(r: Reader, t: dict, key: str, p: str) -> dict[str, Duration]:
    table = r.table(t, key, f"{p}.{key}")
    if key not in t:
        r.problem(f"{p}.{key}", 'is required: a target per priority, e.g. { P1 = "2h", ... }')
    _priority_keys(r, table, f"{p}.{key}")
    for missing in (pr for pr in PRIORITIES if key in t and pr not in table):
        r.problem(f"{p}.{key}.{missing}", "is required")
    found = {pr: r.parse_duration(v, f"{p}.{key}.{pr}") for pr, v in table.items()}
    return {pr: d for pr, d in found.items() if d is not None and pr in PRIORITIES}


def _priority_keys(r: Reader, table: dict, p: str) -> None:
    for key in table:
        if key not in PRIORITIES:
            r.problem(f"{p}.{key}", f"unknown priority (known: {', '.join(PRIORITIES)})")


def _customers(
    r: Reader, data: dict, plans: dict, allowed: dict[str, dict]
) -> tuple[Customer, ...]:
    customers = tuple(_customer(r, p, t, plans) for p, t in r.tables(data, "customers"))
    names = {c.name for c in customers}
    for name in sorted(set(allowed) - names):
        r.problem(f"allowlist.customers.{name}", "no such customer in [[customers]]")
    customers = tuple(_allowed(c, allowed.get(c.name)) for c in customers)
    _no_overlap(r, customers)
    return customers


ALLOWLIST_KEYS = ("addresses", "removed", "domains")


def _allowlist(r: Reader, path: Path | None) -> dict[str, dict]:
    """The machine-managed allow-list changes (`#allow` commands), per customer's name: a
    file written by helpdeskd beside the admin's, which it never rewrites. No file, no
    changes."""
    if path is None or not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        r.problem("helpdesk.allowlist", f"cannot read {path}: {exc}")
        return {}
    r.unknown(data, "allowlist", {"customers"})
    found = {}
    for name, t in r.table(data, "customers", "allowlist.customers").items():
        p = f"allowlist.customers.{name}"
        if not isinstance(t, dict):
            r.problem(p, "must be a table")
            continue
        r.unknown(t, p, set(ALLOWLIST_KEYS))
        found[name] = {
            "addresses": r.addresses(t, "addresses", p),
            "removed": tuple(v.lower() for v in r.strings(t, "removed", p)),
            "domains": tuple(_domains(r, t, p)),
        }
    return found


def _allowed(customer: Customer, change: dict | None) -> Customer:
    """The customer with its allow-list changes applied: added, then removed."""
    if not change:
        return customer
    removed = set(change["removed"])
    addresses = dict.fromkeys((*customer.addresses, *change["addresses"]))
    domains = dict.fromkeys((*customer.domains, *change["domains"]))
    return replace(
        customer,
        addresses=tuple(a for a in addresses if a not in removed),
        domains=tuple(d for d in domains if d not in removed),
    )


def _domains(r: Reader, t: dict, p: str) -> list[str]:
    domains = r.strings(t, "domains", p)
    for i, d in enumerate(domains):
        if not DOMAIN.match(d):
            r.problem(f"{p}.domains[{i}]", f"not a domain name: {d!r}")
    return [d.lower() for d in domains]


def _customer(r: Reader, p: str, t: dict, plans: dict) -> Customer:
    r.unknown(
        t,
        p,
        {
            "name",
            "domains",
            "addresses",
            "plan",
            "plan_expires",
            "authorized_only",
            "primary_contact",
            "stand_in_contacts",
        },
    )
    domains = _domains(r, t, p)
    plan = r.required(t, "plan", p, str)
    if plan is not None and plan not in plans:
        r.problem(f"{p}.plan", f"unknown plan {plan!r} (known: {', '.join(sorted(plans))})")
    expires = r.get(t, "plan_expires", p, date)
    addresses = r.addresses(t, "addresses", p)
    if not domains and not addresses:
        r.problem(p, "needs domains or addresses to recognise its senders")
    return Customer(
        name=r.required(t, "name", p, str) or p,
        domains=tuple(domains),
        addresses=addresses,
        plan=plan or "",
        plan_expires=expires,
        authorized_only=r.get(t, "authorized_only", p, bool, False),
        primary_contact=r.address(r.get(t, "primary_contact", p, str), f"{p}.primary_contact"),
        stand_in_contacts=r.addresses(t, "stand_in_contacts", p),
    )


def _no_overlap(r: Reader, customers: tuple[Customer, ...]) -> None:
    """A domain or address naming two customers would make the plan a coin toss."""
    seen: dict[str, str] = {}
    for c in customers:
        for key in (*c.domains, *c.addresses):
            if key in seen and seen[key] != c.name:
                r.problem("customers", f"{key!r} belongs to both {seen[key]!r} and {c.name!r}")
            seen[key] = c.name


def _engineer(r: Reader, p: str, t: dict) -> Engineer:
    r.unknown(t, p, {"name", "email", "tier"})
    return Engineer(
        name=r.required(t, "name", p, str) or "",
        email=r.address(r.required(t, "email", p, str), f"{p}.email") or "",
        tier=r.choice(t, "tier", p, (1, 2, 3), 1),
    )


def _escalation(r: Reader, t: dict) -> tuple[EscalationLevel, ...]:
    r.unknown(t, "escalation", {"levels"})
    levels = r.get(t, "levels", "escalation", list, [])
    if len(levels) > 3:
        r.problem("escalation.levels", "at most three levels")
    return tuple(_level(r, f"escalation.levels[{i}]", t) for i, t in enumerate(levels[:3]))


def _level(r: Reader, p: str, t: Any) -> EscalationLevel:
    if not isinstance(t, dict):
        r.problem(p, 'must be a table like { notify = [...], on = "breach" }')
        return EscalationLevel((), "breach")
    r.unknown(t, p, {"notify", "on", "after", "name"})
    notify = r.addresses(t, "notify", p)
    if not notify:
        r.problem(f"{p}.notify", "at least one address is required")
    return EscalationLevel(
        notify=notify,
        on=r.choice(t, "on", p, ("warn", "breach"), "breach"),
        after=r.duration(t, "after", p, None),
        name=r.get(t, "name", p, str),
    )


def _policy(r: Reader, t: dict, plans: dict, first_hop: bool) -> Policy:
    """`first_hop`: the listener faces the world, so customers must prove their domain by
    default too (require_dmarc_pass), and helpdeskd's own check says whether they did."""
    p = "policy"
    r.unknown(
        t,
        p,
        {
            "unknown_sender",
            "default_plan",
            "default_priority",
            "priority_keywords",
            "close_warning_after",
            "close_after_warning",
            "reopen_window",
            "require_dmarc_pass",
            "trusted_authserv_id",
            "new_cases_per_hour",
            "auto_replies_per_hour",
            "max_attempts",
            "forward_attachments_max",
            *LOOP_KEYS,
            "trust_unauthenticated_engineers",
            *CUSTOMER_SERVICE_KEYS,
        },
    )
    default_plan = r.get(t, "default_plan", p, str, next(iter(plans), "standard"))
    if plans and default_plan not in plans:
        r.problem(f"{p}.default_plan", f"unknown plan {default_plan!r}")
    dmarc = r.get(t, "require_dmarc_pass", p, bool, first_hop)
    authserv = r.get(t, "trusted_authserv_id", p, str)
    if dmarc and not authserv and not first_hop:
        r.problem(
            f"{p}.trusted_authserv_id",
            "is required with require_dmarc_pass: the "
            "authserv-id your MTA writes in Authentication-Results",
        )
    return Policy(
        unknown_sender=r.choice(
            t, "unknown_sender", p, ("standard", "reject", "ignore"), "standard"
        ),
        default_plan=default_plan,
        default_priority=r.choice(t, "default_priority", p, PRIORITIES, "P3"),
        priority_keywords=_keywords(r, t, p),
        close_warning_after=r.duration(t, "close_warning_after", p, Duration(5, "d")),
        close_after_warning=r.duration(t, "close_after_warning", p, Duration(2, "d")),
        reopen_window=r.duration(t, "reopen_window", p, Duration(10, "d")),
        require_dmarc_pass=dmarc,
        trusted_authserv_id=authserv,
        new_cases_per_hour=r.positive(t, "new_cases_per_hour", p, 20),
        auto_replies_per_hour=r.positive(t, "auto_replies_per_hour", p, 10),
        max_attempts=r.positive(t, "max_attempts", p, 5),
        forward_attachments_max=r.positive(t, "forward_attachments_max", p, 10 * 1024 * 1024),
        **_bounds(r, t, p),
        trust_unauthenticated_engineers=r.get(t, "trust_unauthenticated_engineers", p, bool, False),
        **_customer_service(r, t, p),
    )


LOOP_KEYS = (
    "processing_budget",
    "mails_per_hour_per_recipient",
    "loop_messages",
    "loop_repeats",
    "loop_window",
)
BUDGET = re.compile(r"(\d+)(s|m)")


def _bounds(r: Reader, t: dict, p: str) -> dict:
    """The limits on work and mail per message, per recipient and per conversation."""
    return dict(
        processing_budget=_budget(r, t.get("processing_budget"), f"{p}.processing_budget"),
        mails_per_hour_per_recipient=r.positive(t, "mails_per_hour_per_recipient", p, 30),
        loop_messages=r.positive(t, "loop_messages", p, 10),
        loop_repeats=r.positive(t, "loop_repeats", p, 3),
        loop_window=r.duration(t, "loop_window", p, Duration(1, "h")) or Duration(1, "h"),
    )


def _budget(r: Reader, value: Any, path: str) -> float:
    """ "5s" or "1m": whole seconds or minutes, at least one second and at most ten minutes."""
    if value is None:
        return Policy.processing_budget
    found = BUDGET.fullmatch(value) if isinstance(value, str) else None
    seconds = int(found[1]) * (60 if found[2] == "m" else 1) if found else 0
    if not 1 <= seconds <= 600:
        r.problem(path, f'must be a time from "1s" to "10m", like "5s", not {value!r}')
        return Policy.processing_budget
    return float(seconds)


CUSTOMER_SERVICE_KEYS = (
    "unauthorized",
    "unauthorized_open_keywords",
    "escalation_request_interval",
    "survey_after_auto_close",
    "fair_use_multiple",
    "announce_to",
    "monthly_report",
)


def _customer_service(r: Reader, t: dict, p: str) -> dict:
    """The [policy] keys of the customer's side: unauthorised contacts, escalation on request,
    surveys, fair use, announcements and monthly reports."""
    multiple = r.get(t, "fair_use_multiple", p, (int, float), 3.0)
    if multiple <= 1:
        r.problem(f"{p}.fair_use_multiple", "must be a number above 1, e.g. 3")
        multiple = 3.0
    interval = r.duration(t, "escalation_request_interval", p, Duration(1, "d"))
    return {
        "unauthorized": r.choice(t, "unauthorized", p, ("notice", "forward", "open"), "forward"),
        "unauthorized_open_keywords": tuple(
            w.lower() for w in r.strings(t, "unauthorized_open_keywords", p)
        ),
        "escalation_request_interval": interval or Duration(1, "d"),
        "survey_after_auto_close": r.get(t, "survey_after_auto_close", p, bool, False),
        "fair_use_multiple": float(multiple),
        "announce_to": r.choice(t, "announce_to", p, ("contacts", "all"), "contacts"),
        "monthly_report": r.get(t, "monthly_report", p, bool, True),
    }


def _keywords(r: Reader, t: dict, p: str) -> dict[str, tuple[str, ...]]:
    table = r.table(t, "priority_keywords", f"{p}.priority_keywords")
    _priority_keys(r, table, f"{p}.priority_keywords")
    return {
        pr: tuple(w.lower() for w in r.strings(table, pr, f"{p}.priority_keywords"))
        for pr in PRIORITIES
        if pr in table
    }


# -- operations: [logging], [metrics], [retention] -------------------------------------------

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


def _authentication(r: Reader, t: dict, helpdesk: Helpdesk) -> Authentication:
    p = "authentication"
    r.unknown(t, p, {"authserv_id", "dns_servers", "dns_port", "dns_timeout", "ingest_first_hop"})
    authserv = r.get(t, "authserv_id", p, str, helpdesk.domain)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", authserv):
        r.problem(f"{p}.authserv_id", f"must be a host or domain name, not {authserv!r}")
    servers = r.strings(t, "dns_servers", p)
    for i, server in enumerate(servers):
        try:
            ipaddress.ip_address(server)
        except ValueError:
            r.problem(f"{p}.dns_servers[{i}]", f"not an IP address: {server!r}")
    timeout = r.get(t, "dns_timeout", p, (int, float), 5.0)
    if not 0 < timeout <= 60:
        r.problem(f"{p}.dns_timeout", "must be between 0 and 60 seconds")
        timeout = 5.0
    return Authentication(
        authserv_id=authserv,
        dns_servers=servers,
        dns_port=_dns_port(r, t, p),
        dns_timeout=float(timeout),
        ingest_first_hop=r.get(t, "ingest_first_hop", p, bool, False),
    )


def _dns_port(r: Reader, t: dict, p: str) -> int:
    port = r.get(t, "dns_port", p, int, 53)
    if not 0 < port <= 65535:
        r.problem(f"{p}.dns_port", "must be between 1 and 65535")
        return 53
    return port


def warnings(config: Config) -> list[tuple[str, str]]:
    """Set-ups that load but weaken a guarantee: `check-config` prints them (exit still 0)."""
    found = []
    if config.policy.trust_unauthenticated_engineers:
        found.append(
            (
                "policy.trust_unauthenticated_engineers",
                "anyone can write as an engineer: commands and replies are applied without "
                "proof (DMARC or aligned DKIM). For test set-ups only.",
            )
        )
    found += _database_warnings(config)
    if config.smtp.enabled and not config.smtp.first_hop and not config.policy.trusted_authserv_id:
        found.append(
            (
                "policy.trusted_authserv_id",
                "the listener is behind an MTA (smtp.first_hop = false) but no authserv-id is "
                "trusted: no sender can be proven, engineers' mail is kept as unverified notes",
            )
        )
    return found


def _database_warnings(config: Config) -> list[tuple[str, str]]:
    database = config.helpdesk.database
    if not isinstance(database, DatabaseUrl):
        return []
    found = []
    if database_url.has_password(database.url):
        found.append(
            (
                "helpdesk.database",
                "the URL holds the password: put it in database_password_file (or PGPASSFILE) "
                "instead, so the configuration can be shown without it",
            )
        )
    if config.web.enabled and config.web.secret_file is None:
        found.append(
            (
                "web.secret_file",
                "each node makes its own sign-in secret: with several nodes, links and sessions "
                "work only on the node that made them; give every node the same file",
            )
        )
    return found
