"""One log stream: every line JSON with level, logger and event (readable lines on a terminal);
journald priorities follow the level; chatty libraries at DEBUG; addresses at INFO reduced to
their domain, whole at DEBUG, where the listener's command lines show too."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import pty
import re
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import structlog

from helpdeskd import logs
from tests.support import (
    ROOT,
    Daemon,
    Sink,
    free_port,
    mail,
    send,
    wait_for_port,
    write_config,
)


@pytest.fixture
def restore_logs():
    yield
    logs.configure("WARNING")


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_library_logs_become_json_lines_and_chatty_ones_go_to_debug(restore_logs):
    out = io.StringIO()
    logs.configure("INFO", "stderr", stream=out)
    logging.getLogger("mail.log").info("%r Connection lost", ("127.0.0.1", 4242))
    logging.getLogger("apscheduler.executors.default").info("Running job %s", "sweep")
    logging.getLogger("mail.log").warning("%r SMTP session exception", ("127.0.0.1", 1))
    logging.getLogger("imapclient.imaplib").error("connection refused")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    structlog.get_logger("helpdeskd.test").info("accepted", mail_from="jane@acme.test", size=3)
    found = lines(out)
    assert [(f["level"], f["logger"]) for f in found] == [
        ("warning", "mail.log"),
        ("error", "imapclient.imaplib"),
        ("warning", "py.warnings"),
        ("info", "helpdeskd.test"),
    ]
    assert all({"level", "logger", "event", "timestamp"} <= f.keys() for f in found)
    assert found[-1]["mail_from"] == "@acme.test"  # the customer by domain, not by name


def test_at_debug_the_chatty_lines_show_as_debug(restore_logs):
    out = io.StringIO()
    logs.configure("DEBUG", "stderr", stream=out)
    logging.getLogger("mail.log").info("%r Connection lost", ("127.0.0.1", 4242))
    structlog.get_logger("helpdeskd.test").debug("detail", to=["jane@acme.test"])
    [warned, chatty, detail] = lines(out)
    assert warned["level"] == "warning" and "personal data" in warned["event"]
    assert chatty["level"] == "debug" and "Connection lost" in chatty["event"]
    assert detail["to"] == ["jane@acme.test"]


def fields(datagram: bytes) -> dict[str, str]:
    """Parse the journal's native format, both the KEY=value and the binary form."""
    found, rest = {}, datagram
    while rest:
        line, _, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            found[key.decode()] = value.decode()
            rest = after
        else:
            (size,) = struct.unpack("<Q", after[:8])
            found[line.decode()] = after[8 : 8 + size].decode()
            rest = after[8 + size + 1 :]
    return found


def test_on_the_journal_the_priority_follows_the_level(tmp_path: Path, restore_logs):
    path = tmp_path / "journal.sock"
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(path))
    journal.settimeout(5)
    logs.configure("DEBUG", "journal", stream=io.StringIO(), journal_socket=str(path))
    assert fields(journal.recv(65536))["PRIORITY"] == "4"  # personal data is logged
    log = structlog.get_logger("helpdeskd.test")
    log.error("spool commit failed", error="disk full")
    log.info("accepted", spool_id=7)
    logging.getLogger("mail.log").info("Peer: %r", ("127.0.0.1", 1))
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        log.exception("step failed")
    received = [fields(journal.recv(65536)) for _ in range(4)]
    assert [r["PRIORITY"] for r in received] == ["3", "6", "7", "3"]
    assert {r["SYSLOG_IDENTIFIER"] for r in received} == {"helpdeskd"}
    first = json.loads(received[0]["MESSAGE"])
    assert (first["level"], first["logger"], first["event"]) == (
        "error",
        "helpdeskd.test",
        "spool commit failed",
    )
    assert "line two" in json.loads(received[3]["MESSAGE"])["exception"]


def test_auto_uses_the_journal_only_when_systemd_connected_our_stream(tmp_path, monkeypatch):
    stream = (tmp_path / "out").open("w")
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not logs.stream_is_journal(stream)
    found = Path(stream.name).stat()
    monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")
    assert logs.stream_is_journal(stream)
    stream.close()


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_demo_run_logs_nothing_but_json(daemon: Daemon, sink):
    """The daemon, five mails through SMTP, replies relayed, a stop: 100% JSON lines."""
    for n in range(5):
        send(daemon.port, mail(f"user{n}@acme.test", f"Problem {n}", "it broke"))
    sink.wait_for(lambda m: "user4@acme.test" in str(m["To"]))
    assert daemon.stop() == 0
    raw = daemon.log.read_text().splitlines()
    parsed = [json.loads(line) for line in raw]  # raises on a line that is not JSON
    assert len(parsed) >= 10
    assert all({"level", "logger", "event"} <= p.keys() for p in parsed)
    text = "\n".join(raw)
    assert "Connection lost" not in text and "Running job" not in text
    assert "user1@acme.test" not in text  # addresses at INFO are reduced to their domain


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_at_debug_the_listener_logs_each_command_line_and_whole_addresses(tmp_path, sink: Sink):
    """What the README promises of DEBUG, against the daemon: the command lines (never the
    message, never an AUTH secret), addresses in full, and one warning that says so."""
    port = free_port()
    extra = '\n[logging]\nlevel = "DEBUG"\n'
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra=extra)
    secret = base64.b64encode(b"\0jane\0hunter2-very-secret").decode()
    with Daemon(config, port) as daemon:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("client.acme.test")
            client.docmd("AUTH", f"PLAIN {secret}")
            client.send_message(mail("jane@acme.test", "Printer", "the words of the customer"))
        sink.wait_for(lambda m: "jane@acme.test" in str(m["To"]))
        assert daemon.stop() == 0
    text = daemon.log.read_text()
    parsed = [json.loads(line) for line in text.splitlines()]
    commands = [p["line"] for p in parsed if p["event"] == "smtp command"]
    assert commands[:2] == ["EHLO client.acme.test", "AUTH PLAIN ********"]
    assert commands[2].startswith("MAIL FROM:<jane@acme.test> ")  # and its SIZE
    assert commands[3:] == ["RCPT TO:<support@helpdesk.test>", "DATA", "QUIT"]
    assert all(p["logger"] == "helpdeskd.smtp" for p in parsed if p["event"] == "smtp command")
    accepted = [p for p in parsed if p["event"] == "accepted"]
    assert accepted[0]["mail_from"] == "jane@acme.test"  # not reduced to its domain
    assert secret not in text and "hunter2" not in text
    assert "the words of the customer" not in text
    warned = [p for p in parsed if p["level"] == "warning" and "personal data" in p["event"]]
    assert len(warned) == 1


def run_briefly(tmp_path: Path, stderr: int, read_from: int) -> str:
    """`helpdeskd run` with the status page on, started and stopped; what it wrote to
    `stderr`, read from `read_from` while it runs. Not under systemd: no JOURNAL_STREAM."""
    smtp, web = free_port(), free_port()
    extra = f"\n[web]\nenabled = true\nport = {web}\n"
    config = write_config(tmp_path, smtp_port=smtp, extra=extra)
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpdeskd", "--config", str(config), "run"],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    os.close(stderr)
    chunks: list[bytes] = []
    reader = threading.Thread(target=read_all, args=(read_from, chunks))
    reader.start()
    try:
        wait_for_port(web, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(10)
    return b"".join(chunks).decode()


def read_all(fd: int, chunks: list[bytes]) -> None:
    """Until the writer is gone: an empty read for a pipe, EIO for a terminal."""
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        pass
    os.close(fd)


COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_on_a_terminal_lines_are_for_people_in_the_helpdesk_time_zone(tmp_path: Path):
    terminal, its_device = pty.openpty()
    text = run_briefly(tmp_path, its_device, terminal)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines and not any(line.startswith("{") for line in lines), text
    assert "\x1b[" in text  # the levels are coloured
    plain = [COLOUR.sub("", line) for line in lines]
    # the test configuration's zone is America/Chicago: CST or CDT, never UTC
    stamped = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d C[SD]T \[")
    assert all(stamped.match(line) for line in plain), plain
    started = [line for line in plain if "Started server process" in line]
    assert started and "helpdeskd.web" in started[0] and "uvicorn" not in started[0]


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_through_a_pipe_lines_stay_json_in_utc(tmp_path: Path):
    read_end, write_end = os.pipe()
    parsed = [json.loads(line) for line in run_briefly(tmp_path, write_end, read_end).splitlines()]
    assert parsed and all(p["timestamp"].endswith("Z") for p in parsed)
    [started] = [p for p in parsed if p["event"].startswith("Started server process")]
    assert started["logger"] == "helpdeskd.web"
