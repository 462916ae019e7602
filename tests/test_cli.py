"""The command line: documented, and each command doing what it says."""

from __future__ import annotations

import json
import signal
import smtplib
import time
from pathlib import Path

import pytest

from helpdeskd.cli import parser
from tests.support import ROOT, Daemon, Sink, cli, free_port, mail, send, write_config


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = parser()._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert f"helpdeskd {name}" in readme, f"README does not document `helpdeskd {name}`"
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in readme, f"README does not mention {name} {flag}"
                assert action.help, f"{name} {flag} has no help text"


def test_ingest_dry_run_prints_the_decision_and_writes_nothing(tmp_path: Path):
    config = write_config(tmp_path)
    raw = mail("jane@acme.test", "Server down", "all red").as_bytes()
    result = cli(
        config, "ingest", "--dry-run", "--now", "2026-11-18T15:00:00+00:00", "-", stdin=raw
    )
    assert result.returncode == 0, result.stderr.decode()
    decision = json.loads(result.stdout)
    assert decision["action"] == "new" and decision["priority"] == "P1"
    assert decision["customer"] == "Acme"
    assert [m["kind"] for m in decision["would_send"]] == ["acknowledgement", "notification"]
    assert json.loads(cli(config, "cases", "--json").stdout) == []
    assert not (tmp_path / "maildir").exists()


def test_ingest_stores_processes_and_delivers(tmp_path: Path):
    config = write_config(tmp_path)
    result = cli(config, "ingest", "-", stdin=mail("jane@acme.test", "Hello", "x").as_bytes())
    assert result.returncode == 0 and result.stdout.startswith(b"new HD-")
    delivered = list((tmp_path / "maildir" / "new").iterdir())
    assert len(delivered) == 2  # the acknowledgement and the engineers' notification
    assert b"outbox empty" in cli(config, "outbox").stdout


def test_reject_policy_sends_one_polite_notice_and_opens_no_case(tmp_path: Path):
    config = write_config(tmp_path, unknown_sender="reject")
    cli(config, "ingest", "-", stdin=mail("who@nowhere.test", "Hi", "x").as_bytes())
    assert json.loads(cli(config, "cases", "--json").stdout) == []
    [notice] = list((tmp_path / "maildir" / "new").iterdir())
    text = notice.read_text()
    assert "To: who@nowhere.test" in text and "Auto-Submitted: auto-replied" in text
    unrouted = json.loads(cli(config, "cases", "--unrouted", "--json").stdout)
    assert unrouted[0]["kind"] == "rejected"


def test_the_automatic_mail_limit_holds_per_recipient(tmp_path: Path):
    config = write_config(tmp_path, auto_limit=3)
    for i in range(6):
        cli(
            config,
            "ingest",
            "--now",
            f"2026-11-18T15:0{i}:00+00:00",
            "-",
            stdin=mail("jane@acme.test", f"Loop {i}", "x").as_bytes(),
        )
    outbox = [p.read_text() for p in (tmp_path / "maildir" / "new").iterdir()]
    acks = [t for t in outbox if "To: jane@acme.test" in t]
    assert len(acks) == 3


@pytest.mark.timeout(60)
def test_sighup_reloads_and_a_bad_file_keeps_the_running_config(tmp_path: Path):
    with Sink() as sink:
        port = free_port()
        config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        good = config.read_text()
        with Daemon(config, port) as daemon:
            config.write_text(good.replace('name = "Test Support"', 'name = "Renamed Support"'))
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for_log(daemon, "configuration reloaded")
            config.write_text(good.replace('default_priority = "P3"', 'default_priority = "P9"'))
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for_log(daemon, "reload refused")
            send(port, mail("jane@acme.test", "After reload", "x"))
            [ack] = sink.wait_for(lambda m: m["Auto-Submitted"] == "auto-replied")
            assert "Renamed Support" in str(ack["From"])
            assert daemon.stop() == 0


@pytest.mark.timeout(60)
def test_lmtp_answers_once_per_recipient(tmp_path: Path):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port)
    text = config.read_text().replace("[smtp]\n", "[smtp]\nlmtp = true\n")
    text = text.replace(
        'addresses = ["support@helpdesk.test"]',
        'addresses = ["support@helpdesk.test", "help@helpdesk.test"]',
    )
    config.write_text(text)
    with Daemon(config, port), smtplib.LMTP("127.0.0.1", port, timeout=10) as lmtp:
        refused = lmtp.sendmail(
            "jane@acme.test",
            ["support@helpdesk.test", "help@helpdesk.test"],
            mail("jane@acme.test", "Via LMTP", "x").as_bytes(),
        )
        assert refused == {}
        # smtplib reads one DATA answer; RFC 2033 sends one per recipient: read the second
        code, text = lmtp.getreply()
        assert code == 250 and b"queued" in text


def wait_for_log(daemon: Daemon, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in daemon.log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never logged")


def test_every_engineer_command_is_in_the_readme():
    from helpdeskd.core.commands import COMMANDS

    readme = (ROOT / "README.md").read_text()
    for command in COMMANDS:
        assert f"`#{command.name}" in readme, f"README does not list #{command.name}"


def test_a_guessed_message_id_does_not_join_a_case(tmp_path: Path):
    config = write_config(tmp_path)
    cli(config, "ingest", "-", stdin=mail("carol@acme.test", "Secret", "x").as_bytes())
    ref = json.loads(cli(config, "cases", "--json").stdout)[0]["reference"]
    guessed = mail(
        "eve@evil.test", "hello", "let me in", in_reply_to=f"<{ref}.deadbeef@anything.invalid>"
    )
    cli(config, "ingest", "-", stdin=guessed.as_bytes())
    detail = json.loads(cli(config, "show", ref, "--json").stdout)
    assert all(m["from"] != "eve@evil.test" for m in detail["messages"])
    assert len(json.loads(cli(config, "cases", "--json").stdout)) == 2


def test_ingest_defers_with_75_when_the_configuration_is_broken(tmp_path: Path):
    config = tmp_path / "broken.toml"
    config.write_text("[helpdesk]\naddresses = 5\n")
    result = cli(config, "ingest", "-", stdin=mail("jane@acme.test", "x", "y").as_bytes())
    assert result.returncode == 75


@pytest.mark.timeout(60)
def test_a_reload_whose_listener_cannot_start_keeps_listening_as_before(tmp_path: Path):
    import socket

    with Sink() as sink, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = free_port()
        config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        with Daemon(config, port) as daemon:
            busy = taken.getsockname()[1]
            config.write_text(config.read_text().replace(f"port = {port}", f"port = {busy}"))
            daemon.proc.send_signal(signal.SIGHUP)
            wait_for_log(daemon, "new SMTP listener failed")
            send(port, mail("jane@acme.test", "Still listening", "x"))
            assert sink.wait_for(lambda m: "Still listening" in str(m["Subject"]))
            alert = sink.wait_for(lambda m: "ops@helpdesk.test" in str(m["To"]))
            assert "could not start" in str(alert[0]["Subject"])
