"""The key that signs the status page's sessions: never empty, never short, never readable by
others. A forged cookie must open nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd.adapters import signin
from helpdeskd.config import load
from tests.support import Daemon, Sink, cli, free_port, wait_for_port, write_config
from tests.webclient import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def web_config(tmp_path: Path, sink: Sink) -> tuple[Path, int, int]:
    smtp, web = free_port(), free_port()
    extra = f'\n[web]\nenabled = true\nport = {web}\nbase_url = "http://127.0.0.1:{web}"\n'
    return write_config(tmp_path, smtp_port=smtp, relay_port=sink.port, extra=extra), smtp, web


def forged(secret: bytes, address: str) -> str:
    session = signin.new_session(address, 3600, datetime.now(UTC))
    return f"{signin.COOKIE}={signin.seal(secret, session)}"


def test_an_empty_secret_is_replaced_and_a_cookie_signed_with_it_opens_nothing(
    tmp_path: Path, sink: Sink
):
    config, smtp, web = web_config(tmp_path, sink)
    secret = tmp_path / "web-secret"
    secret.write_bytes(b"")  # what a full disk at first start left behind
    secret.chmod(0o600)
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
        page = Browser(f"http://127.0.0.1:{web}").get(
            "/queue", headers={"Cookie": forged(b"", "alice@helpdesk.test")}
        )
    assert page.url.endswith("/signin") and "queue" not in page.text.lower()
    key = bytes.fromhex(secret.read_text())
    assert len(key) == 32 and secret.stat().st_mode & 0o777 == 0o600
    replaced = [json.loads(line) for line in daemon.log.read_text().splitlines()]
    assert [e for e in replaced if e.get("event") == "web secret replaced"]


@pytest.mark.parametrize("content", [b"", b"ab" * 31, b"not hex at all\n", b"\xff\xfe"])
def test_a_short_or_unreadable_secret_is_never_used(tmp_path: Path, content: bytes):
    config = load(write_config(tmp_path, extra="\n[web]\nenabled = true\n"))
    (tmp_path / "web-secret").write_bytes(content)
    key = signin.load_secret(config)
    assert len(key) == 32 and bytes.fromhex((tmp_path / "web-secret").read_text()) == key
    assert signin.load_secret(config) == key  # kept from then on
    assert [p.name for p in tmp_path.iterdir() if "web-secret" in p.name] == ["web-secret"]


def test_a_secret_others_may_read_is_reported_by_check_config_and_at_start(
    tmp_path: Path, sink: Sink
):
    config, smtp, web = web_config(tmp_path, sink)
    moved = tmp_path / "keys" / "session.key"
    config.write_text(config.read_text() + f'secret_file = "{moved}"\n')
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
    assert "session.key" not in cli(config, "check-config").stderr.decode()
    moved.chmod(0o644)
    result = cli(config, "check-config")
    assert result.returncode == 0
    assert f"{moved} is 0644: others may read" in result.stderr.decode()
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
    exposed = [line for line in daemon.log.read_text().splitlines() if "files.exposed" in line]
    assert any("session.key is 0644" in line for line in exposed)


def test_a_page_that_cannot_start_says_why_in_one_line(tmp_path: Path, sink: Sink):
    config, _, _ = web_config(tmp_path, sink)
    (tmp_path / "plain-file").write_text("")
    unusable = config.read_text() + f'secret_file = "{tmp_path / "plain-file" / "key"}"\n'
    config.write_text(unusable)
    failed = cli(config, "run")
    assert failed.returncode == 69
    (line,) = [x for x in failed.stderr.decode().splitlines() if x.startswith("helpdeskd:")]
    assert "status page cannot start" in line and "plain-file" in line
