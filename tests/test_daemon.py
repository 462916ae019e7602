"""End to end: the daemon as a subprocess, mail sent with smtplib, outgoing mail caught by a real
aiosmtpd relay; the spine (mail in, case, acknowledgement) on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

import pytest

from tests.support import Daemon, Sink, cli, free_port, mail, run_in_process, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def cases(config: Path) -> list[dict]:
    return json.loads(run_in_process(config, "cases", "--json"))


def show(config: Path, reference: str) -> dict:
    return json.loads(run_in_process(config, "show", reference, "--json"))


def acknowledgement(sink: Sink, to: str):
    found = sink.wait_for(lambda m: to in str(m["To"]) and m["Auto-Submitted"] == "auto-replied")
    assert found, f"no acknowledgement to {to}: {[str(m['Subject']) for m in sink.received]}"
    return found[-1]


def test_a_customer_mail_becomes_a_case_with_an_acknowledgement(
    daemon: Daemon, sink: Sink, database
):
    first = mail("Jane <jane@acme.test>", "Portal login fails", "invalid session since 9:00")
    send(daemon.port, first)
    ack = acknowledgement(sink, "jane@acme.test")
    [case] = cases(daemon.config)
    ref = case["reference"]
    assert ref.startswith("HD-") and case["customer"] == "Acme" and case["plan"] == "gold"
    assert str(ack["Subject"]) == f"[{ref}] Portal login fails"
    assert ack["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in ack["References"]
    assert ack["Message-ID"].startswith(f"<{ref}.")
    assert ack["X-Loop"] and ack["X-Auto-Response-Suppress"] == "All"
    assert ref in ack.get_content()


def test_replies_by_tag_and_by_in_reply_to_join_the_case(daemon: Daemon, sink: Sink, database):
    send(daemon.port, mail("jane@acme.test", "Printer on fire", "it is burning"))
    ack = acknowledgement(sink, "jane@acme.test")
    [case] = cases(daemon.config)
    ref = case["reference"]
    send(daemon.port, mail("jane@acme.test", f"Re: [{ref}] Printer on fire", "more smoke now"))
    send(
        daemon.port,
        mail("joe@acme.test", "Re: that printer", "it's out now", in_reply_to=ack["Message-ID"]),
    )
    sink.wait_for(
        lambda m: (
            "joe@acme.test" in m.get_content() if m.get_content_type() == "text/plain" else False
        ),
        timeout=10,
    )
    detail = wait_messages(daemon.config, ref, 3)
    reasons = [m["route_reason"] for m in detail["messages"] if m["direction"] == "in"]
    assert reasons[1] == f"tag {ref}"
    assert reasons[2].startswith("in-reply-to <")
    assert len(cases(daemon.config)) == 1


def test_a_stranger_using_a_customers_tag_gets_a_new_case(daemon: Daemon, sink: Sink):
    send(daemon.port, mail("jane@acme.test", "Secret project", "confidential"))
    acknowledgement(sink, "jane@acme.test")
    ref = cases(daemon.config)[0]["reference"]
    send(daemon.port, mail("mallory@evil.test", f"Re: [{ref}] Secret project", "let me in"))
    acknowledgement(sink, "mallory@evil.test")
    found = cases(daemon.config)
    assert len(found) == 2
    stranger = show(daemon.config, found[1]["reference"])
    assert stranger["related"] == ref
    assert "not on the case" in stranger["messages"][0]["route_reason"]
    assert all(m["from"] != "mallory@evil.test" for m in show(daemon.config, ref)["messages"])


def wait_messages(config: Path, ref: str, inbound: int) -> dict:
    for _ in range(100):
        detail = show(config, ref)
        if sum(m["direction"] == "in" for m in detail["messages"]) >= inbound:
            return detail
        import time

        time.sleep(0.1)
    raise AssertionError(f"{ref} did not get {inbound} inbound messages: {detail}")


def test_protocol_answers_for_bad_input(tmp_path: Path, sink: Sink):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra="")
    text = config.read_text().replace("[smtp]\n", "[smtp]\nmax_message_size = 20000\n")
    config.write_text(text)
    with Daemon(config, port), smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        assert "8bitmime" in smtp.esmtp_features and "smtputf8" in smtp.esmtp_features
        code, _ = smtp.docmd("MAIL FROM:<jane@acme.test>")
        assert code == 250
        code, _ = smtp.docmd("RCPT TO:<someone@elsewhere.test>")
        assert code == 550  # never an open relay
        smtp.rset()
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as big:
            smtp.sendmail(
                "jane@acme.test", ["support@helpdesk.test"], b"Subject: x\r\n\r\n" + b"y" * 30000
            )
        assert big.value.smtp_code == 552


def test_long_lines_and_8bit_mail_are_accepted(daemon: Daemon, sink: Sink):
    body = ("<p>" + "x" * 5000 + "</p>").encode()
    raw = (
        b"From: jane@acme.test\r\nTo: support@helpdesk.test\r\nSubject: caf\xc3\xa9\r\n"
        b"Message-ID: <long@acme.test>\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )
    send(daemon.port, raw, "jane@acme.test", ["support@helpdesk.test"])
    ack = acknowledgement(sink, "jane@acme.test")
    assert "café" in str(ack["Subject"])


def test_the_same_message_by_smtp_then_ingest_is_one_case(daemon: Daemon, sink: Sink, database):
    msg = mail("jane@acme.test", "Twice", "delivered twice")
    send(daemon.port, msg)
    acknowledgement(sink, "jane@acme.test")
    again = cli(daemon.config, "ingest", "-", stdin=b"Received: from relay2\r\n" + msg.as_bytes())
    assert again.returncode == 0 and b"duplicate" in again.stdout
    assert len(cases(daemon.config)) == 1


def test_a_store_that_cannot_commit_answers_451_and_ingest_75(tmp_path: Path, sink: Sink):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
    with Daemon(config, port):
        db = tmp_path / "helpdesk.db"
        import sqlite3

        blocker = sqlite3.connect(db, timeout=1)
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        try:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                # the spool waits out SQLite's busy time-out (and the worker's, if it holds the
                # write lock) before it answers: a client waits minutes for DATA (RFC 5321)
                send(port, mail("jane@acme.test", "Locked out", "db is locked"), timeout=60)
            assert refused.value.smtp_code == 451
        finally:
            blocker.rollback()
            blocker.close()
    locked = sqlite3.connect(db, timeout=1)
    locked.execute("BEGIN EXCLUSIVE")
    try:
        result = cli(config, "ingest", "-", stdin=mail("jane@acme.test", "x", "y").as_bytes())
    finally:
        locked.rollback()
        locked.close()
    assert result.returncode == 75, result.stderr.decode()
