"""Hostile mail through the running daemon: each is processed or quarantined, and the ordinary
mail sent right after it becomes a case within the budget and a generous margin."""

from __future__ import annotations

import base64
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd.adapters.store import Store
from tests.support import Daemon, Sink, free_port, mail, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUDGET = 2  # seconds, in the test configuration
MARGIN = 30  # seconds: the machine running the tests may be busy
HEAD = (
    b"From: Mallory <mallory@acme.test>\r\nTo: support@helpdesk.test\r\n"
    b"Message-ID: <%s@acme.test>\r\nSubject: hostile %s\r\nMIME-Version: 1.0\r\n"
)


def head(name: str) -> bytes:
    return HEAD % (name.encode(), name.encode())


def header_lines() -> bytes:
    """200,000 short lines, none a header field: joined, they took minutes when quadratic."""
    lines = b"".join(b"zz%d\r\n" % i for i in range(200_000))
    return head("header-lines") + lines + b"Received: x\r\n\r\nbody\r\n"


def many_parts() -> bytes:
    parts = b"".join(
        b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(100_000)
    )
    return (
        head("parts")
        + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        + parts
        + b"--B--\r\n"
    )


def nested_messages() -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(2_000):
        body = b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % level + body
    return head("nested") + body


def base64_line() -> bytes:
    data = base64.b64encode(bytes(range(256)) * (5 * 1024 * 1024 * 3 // 4 // 256))
    return (
        head("base64")
        + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        + b"--B\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n"
        + b"--B\r\nContent-Type: application/octet-stream\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + data
        + b"\r\n--B--\r\n"
    )


def large_text() -> bytes:
    line = b"An ordinary line of a log pasted into the mail, again and again.\r\n"
    return (
        head("text") + b"Content-Type: text/plain\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    )


HOSTILE = {
    "200000-line header": header_lines,
    "100000-part body": many_parts,
    "2000 nested message/rfc822": nested_messages,
    "5 MB single-line base64 part": base64_line,
    "20 MB text body": large_text,
}

# SMTP refuses lines over 1,000 characters; such a message comes in by IMAP, spooled as the
# poller does it, and the worker takes it up when the ordinary mail wakes it.
SPOOLED = {"5 MB single-line base64 part"}


@pytest.fixture(scope="module")
def hostile_daemon(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    with Sink() as sink:
        port = free_port()
        config = write_config(folder, smtp_port=port, relay_port=sink.port)
        text = config.read_text()
        text = text.replace("[smtp]\n", "[smtp]\nmax_message_size = 31457280\n")
        text = text.replace("[policy]\n", f'[policy]\nprocessing_budget = "{BUDGET}s"\n')
        config.write_text(text)
        with Daemon(config, port) as daemon:
            yield daemon, sink


def spool_state(db: Path, message_id: str) -> tuple[str, str | None, str | None]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT state, processed_at, reason FROM spool WHERE message_id = ?", [message_id]
        ).fetchone()
    return row or ("absent", None, None)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_mail_never_holds_up_the_mail_behind_it(hostile_daemon, name):
    daemon, sink = hostile_daemon
    db = daemon.config.parent / "helpdesk.db"
    raw = HOSTILE[name]()
    hostile_id = raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()
    if name in SPOOLED:
        Store(db).spool(raw, source="imap", now=datetime.now(UTC))
    else:
        send(daemon.port, raw, "mallory@acme.test", ["support@helpdesk.test"])
    tag = name.split()[0]
    after = mail(f"next-{tag}@acme.test", f"Ordinary mail after {name}", "Hello")
    sent_at = time.monotonic()
    send(daemon.port, after)
    acknowledged = sink.wait_for(
        lambda m: f"next-{tag}@acme.test" in str(m["To"]), timeout=BUDGET + MARGIN
    )
    waited = time.monotonic() - sent_at
    assert acknowledged, f"no case for the mail sent after the {name} within {waited:.0f} s"
    assert waited < BUDGET + MARGIN
    state, hostile_done, reason = spool_state(db, hostile_id)
    _, ordinary_done, _ = spool_state(db, after["Message-ID"].strip("<>"))
    assert state in ("done", "quarantined"), (state, reason)
    assert hostile_done <= ordinary_done  # in order: the hostile one was dealt with first
    print(f"{name}: {state} {reason or ''}; the mail behind it waited {waited:.2f} s")
