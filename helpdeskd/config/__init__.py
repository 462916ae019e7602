"""The TOML configuration, read into frozen dataclasses.

Every problem is collected with the path of its key (`plans.gold.first_response.P5`) so an admin
sees all of them at once; nothing is half-loaded.
"""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from helpdeskd import database_url
from helpdeskd.config.agreements import (
    ClockRule,
    EscalationLevel,
    Plan,
    Tier,
    _calendars,
    _escalation,
    _plans,
    _tiers,
)
from helpdeskd.config.customers import Customer, Engineer, _allowlist, _customers, _engineer
from helpdeskd.config.helpdesk import (
    PACKAGED_TEMPLATES,
    FreeSpace,
    Helpdesk,
    Logging,
    Metrics,
    Retention,
    _helpdesk,
    _logging,
    _metrics,
    _retention,
    retention_days,
)
from helpdeskd.config.mail import (
    AlertRoutes,
    Authentication,
    Mailbox,
    Outbound,
    Smtp,
    _alert_routes,
    _authentication,
    _mailboxes,
    _outbound,
    _smtp,
)
from helpdeskd.config.oncall import OnCall, _oncall
from helpdeskd.config.policy import Policy, _policy
from helpdeskd.config.reader import ConfigError, Reader
from helpdeskd.config.terms import Category, Terms, _categories
from helpdeskd.config.web import Web, _web
from helpdeskd.config.webhooks import Webhook, _webhooks
from helpdeskd.core.calendar import Calendar
from helpdeskd.database_url import DatabaseUrl
from helpdeskd.names import PRIORITIES


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
    tiers: dict[int, Tier] = field(default_factory=dict)
    webhooks: tuple[Webhook, ...] = ()
    categories: dict[str, Category] = field(default_factory=dict)
    oncall: OnCall | None = None

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
        """Our own people: engineers, escalation contacts, service managers and admins (asked
        per recipient and per message, so worked out once per loaded config)."""
        ladders = [self.escalation, *(p.escalation or () for p in self.plans.values())]
        levels = (a for ladder in ladders for level in ladder for a in level.notify)
        managers = (p.terms.service_manager for p in self.plans.values())
        return frozenset(
            (
                *(e.email for e in self.engineers),
                *levels,
                *(m for m in managers if m),
                *self.helpdesk.admins,
            )
        )


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
            "tiers",
            "webhooks",
            "categories",
            "oncall",
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
        tiers=_tiers(r, r.table(data, "tiers", "tiers"), calendars),
        webhooks=_webhooks(r, data, plans),
        categories=_categories(r, r.table(data, "categories", "categories")),
        oncall=_oncall(
            r, r.table(data, "oncall", "oncall"), calendars, frozenset(e.email for e in engineers)
        ),
    )


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
    if config.smtp.enabled and config.smtp.lmtp and config.smtp.first_hop:
        found.append(
            (
                "smtp.first_hop",
                "lmtp = true, yet the listener is taken for the first hop: LMTP comes from an MTA "
                "in front, whose address SPF would judge instead of the sender's. Set first_hop = "
                "false and trusted_authserv_id to the MTA's authserv-id",
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


__all__ = [
    "DEMO_CONFIG",
    "PACKAGED_TEMPLATES",
    "PRIORITIES",
    "SYSTEM_CONFIG",
    "AlertRoutes",
    "Authentication",
    "Category",
    "ClockRule",
    "Config",
    "ConfigError",
    "Customer",
    "Engineer",
    "EscalationLevel",
    "FreeSpace",
    "Helpdesk",
    "Logging",
    "Mailbox",
    "Metrics",
    "Outbound",
    "Plan",
    "Policy",
    "Retention",
    "Smtp",
    "Terms",
    "Tier",
    "Web",
    "Webhook",
    "default_path",
    "load",
    "retention_days",
    "warnings",
]
