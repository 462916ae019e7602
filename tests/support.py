"""Real parts for tests: a free port, an aiosmtpd sink as the outgoing relay, the daemon as a
subprocess, and a configuration written to a temporary folder."""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import io
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from unittest import mock

from aiosmtpd.controller import Controller

from helpdeskd.model import Case

ROOT = Path(__file__).resolve().parents[1]
# The database `write_config` names: None for helpdesk.db in the test's folder; the `database`
# fixture (conftest.py) sets a PostgreSQL URL here for the tests it runs on PostgreSQL.
DATABASE: str | None = None

BASE_CONFIG = """
[helpdesk]
name = "Test Support"
addresses = ["support@helpdesk.test"]
admins = ["ops@helpdesk.test"]
reference_prefix = "HD"
database = "{db}"
timezone = "America/Chicago"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
# most tests send unsigned mail straight to the listener: no DNS checks, engineers trusted
# (tests/test_authentication.py runs the first-hop checks against a DNS server of its own)
first_hop = false

[outbound]
{outbound}
backoff = 1
backoff_max = 2

[calendars.business]
timezone = "America/Chicago"
mon = "08:00-17:00"
tue = "08:00-17:00"
wed = "08:00-17:00"
thu = "08:00-17:00"
fri = "08:00-17:00"

[calendars.always]
timezone = "UTC"
always_open = true

[plans.standard]
calendar = "business"
first_response = {{ P1 = "2h", P2 = "4h", P3 = "1d", P4 = "3d" }}
resolution = {{ P1 = "3d", P2 = "5d", P3 = "20d", P4 = "20d" }}
calendars = {{ P1 = "always" }}
warn_at = 0.8

[plans.gold]
calendar = "always"
first_response = {{ P1 = "30m", P2 = "1h", P3 = "2h", P4 = "4h" }}
resolution = {{ P1 = "1d", P2 = "2d", P3 = "5d", P4 = "5d" }}

[[customers]]
name = "Acme"
domains = ["acme.test"]
plan = "gold"

[[customers]]
name = "Globex"
domains = ["globex.test"]
addresses = ["boss@globex.test"]
plan = "standard"
authorized_only = true

[[engineers]]
name = "Alice Engineer"
email = "alice@helpdesk.test"
tier = 1

[[engineers]]
name = "Bob Engineer"
email = "bob@helpdesk.test"
tier = 2

[escalation]
levels = [
  {{ notify = ["lead@helpdesk.test"], on = "warn" }},
  {{ notify = ["manager@helpdesk.test"], on = "breach" }},
]

[policy]
unknown_sender = "{unknown_sender}"
default_plan = "standard"
default_priority = "P3"
priority_keywords = {{ P1 = ["outage", "down"], P2 = ["urgent"] }}
close_warning_after = "3d"
close_after_warning = "2d"
reopen_window = "5d"
auto_replies_per_hour = {auto_limit}
trust_unauthenticated_engineers = true
"""


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost, and its key (needs openssl)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(
    folder: Path,
    *,
    smtp_port: int = 0,
    relay_port: int | None = None,
    unknown_sender: str = "standard",
    auto_limit: int = 10,
    extra: str = "",
) -> Path:
    if relay_port is None:
        outbound = f'transport = "maildir"\npath = "{folder / "maildir"}"'
    else:
        outbound = f'transport = "smtp"\nhost = "127.0.0.1"\nport = {relay_port}'
    text = BASE_CONFIG.format(
        db=DATABASE or folder / "helpdesk.db",
        smtp_port=smtp_port or free_port(),
        outbound=outbound,
        unknown_sender=unknown_sender,
        auto_limit=auto_limit,
    )
    path = folder / "helpdeskd.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


class Sink:
    """A real SMTP server standing in for the company's relay; it keeps what it receives."""

    def __init__(self, **controller):
        """`controller`: more arguments for aiosmtpd's Controller (`ssl_context` for implicit
        TLS, `tls_context` for STARTTLS)."""
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: set = set()  # the client end of each connection that said EHLO
        self.lock = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port(), **controller)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.peers.add(session.peer)
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        with self.lock:
            self.received.append(msg)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.lock.notify_all()
        return "250 OK"

    @property
    def port(self) -> int:
        return self.controller.port

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def wait_for(self, predicate, timeout: float = 15.0) -> list[EmailMessage]:
        """Wait (bounded) until some received message matches; return all that match."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                found = [m for m in self.received if predicate(m)]
                if found or time.monotonic() > deadline:
                    return found
                self.lock.wait(0.1)

    def to(self, address: str, kind_subject: str | None = None) -> list[EmailMessage]:
        return [
            m
            for m in self.received
            if address in str(m["To"])
            and (kind_subject is None or kind_subject in str(m["Subject"]))
        ]


class Daemon:
    """`helpdeskd run` as a subprocess, stopped with SIGTERM."""

    def __init__(self, config: Path, smtp_port: int):
        self.config, self.port = config, smtp_port
        self.proc: subprocess.Popen | None = None
        self.log = config.parent / "daemon.log"

    def start(self) -> Daemon:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "helpdeskd", "--config", str(self.config), "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else 0

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def send(
    port: int,
    msg: EmailMessage | bytes,
    sender: str | None = None,
    to: list[str] | None = None,
    timeout: float = 10,
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as smtp:
        if isinstance(msg, bytes):
            smtp.sendmail(sender, to, msg)
        else:
            smtp.send_message(msg, from_addr=sender, to_addrs=to)


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    to: str = "support@helpdesk.test",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    headers: dict | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=sender.rpartition("@")[2])
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def call_in_process(config: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """A command in this process (some ten times faster than `cli`, which pays an interpreter
    and its imports each time): exit code, stdout, stderr. `stdin` is what it reads there, as
    `cli` gives it. The session's logging set-up stays: `main` would otherwise bind structlog
    to this call's stderr for good."""
    from helpdeskd import cli as command_line

    out, err = io.StringIO(), io.StringIO()
    given = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        mock.patch("sys.stdin", given),
        mock.patch("helpdeskd.logs.configure"),
    ):
        code = command_line.main(["--config", str(config), *args])
    return code, out.getvalue(), err.getvalue()


def run_in_process(config: Path, *args: str, stdin: bytes | None = None) -> str:
    """`run` in this process: for tests of what a command does, not of the process it runs in."""
    code, out, err = call_in_process(config, *args, stdin=stdin)
    assert code == 0, err
    return out


def run(config: Path, *args: str, stdin: bytes | None = None) -> str:
    """A command that must succeed; what it printed."""
    result = cli(config, *args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def cli(config: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "helpdeskd", "--config", str(config), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def queued(config: Path) -> list[tuple[str, list[str], EmailMessage]]:
    """(kind, recipients, message) of every mail in the configuration's outbox, oldest first:
    what a test reads when the relay is not there."""
    from helpdeskd.adapters.store import open_store
    from helpdeskd.config import load

    store = open_store(load(config).helpdesk.database)
    try:
        rows = store.rows("SELECT kind, recipients, raw FROM outbox ORDER BY id")
    finally:
        store.close()
    return [
        (
            r["kind"],
            json.loads(r["recipients"]),
            email.message_from_bytes(bytes(r["raw"]), policy=email.policy.default),
        )
        for r in rows
    ]


def sample_case(**changes) -> Case:
    """An open case of Acme's opened at a fixed instant; tests change what they need."""
    opened = changes.pop("opened_at", datetime(2026, 11, 18, 15, 0, tzinfo=UTC))
    fields = dict(
        reference="HD-2026-00042",
        status="open",
        priority="P3",
        plan="gold",
        customer="Acme",
        subject="Help",
        opener="jane@acme.test",
        opened_at=opened,
        updated_at=opened,
        contacts=("jane@acme.test",),
        id=1,
    )
    return Case(**{**fields, **changes})


def delivered(folder: Path) -> list[EmailMessage]:
    """What the maildir transport of `write_config(folder)` delivered, oldest first."""
    files = sorted((folder / "maildir" / "new").glob("*"), key=lambda f: f.stat().st_mtime_ns)
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
