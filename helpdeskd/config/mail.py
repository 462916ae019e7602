"""How mail comes and goes: [smtp], [[imap]], [outbound], [alerts] and [authentication]."""

from __future__ import annotations

import ipaddress
import re
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

from helpdeskd.config.helpdesk import Helpdesk
from helpdeskd.config.reader import Reader, _is_readable_file, _port, _readable
from helpdeskd.core.calendar import Duration


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
class AlertRoutes:
    """Where admin alerts go when the outbound relay does not take them, tried in this order:
    a Maildir, a command given the mail on stdin, a second relay."""

    maildir: Path | None = None
    command: tuple[str, ...] = ()
    relay: Outbound | None = None

    def __bool__(self) -> bool:
        return bool(self.maildir or self.command or self.relay)


@dataclass(frozen=True)
class Authentication:
    """helpdeskd's own DKIM/SPF/DMARC check at a first-hop entrance."""

    authserv_id: str  # written in our Authentication-Results; default the helpdesk's domain
    dns_servers: tuple[str, ...] = ()  # empty: the system's resolvers (/etc/resolv.conf)
    dns_port: int = 53
    dns_timeout: float = 5.0  # seconds for all of one message's lookups together
    ingest_first_hop: bool = False  # `ingest` gets mail no trusted MTA has checked


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
