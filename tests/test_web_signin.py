"""Signing in and out of the status page: what the answer to a sign-in request may depend on,
and sessions that end when they are ended."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from helpdeskd.config import PACKAGED_TEMPLATES
from tests.support import Daemon, Sink, cli, free_port, wait_for_port, write_config
from tests.test_cli import wait_for_log
from tests.test_web import WEB, Site, running_site
from tests.webclient import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_the_answer_to_a_sign_in_request_waits_for_no_mail_work(tmp_path: Path, sink: Sink):
    """Only a known address gets a link, rendered and queued: that work is handed off, so the
    answer is the same page at the same point whether the address is known or not. Here the
    link's template fails to render: the answer does not notice."""
    templates = tmp_path / "templates"
    shutil.copytree(PACKAGED_TEMPLATES, templates)
    (templates / "signin_link.txt").write_text("Subject: {{ no_such_value.at_all }}\n\nx\n")
    smtp, web = free_port(), free_port()
    config = write_config(
        tmp_path, smtp_port=smtp, relay_port=sink.port, extra=WEB.format(port=web)
    )
    text = config.read_text().replace("[helpdesk]\n", f'[helpdesk]\ntemplates = "{templates}"\n')
    config.write_text(text)
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
        browser = Browser(f"http://127.0.0.1:{web}")
        form = browser.get("/signin")
        known = browser.post("/signin", {"csrf": form.csrf, "address": "jane@acme.test"})
        stranger = browser.post("/signin", {"csrf": form.csrf, "address": "eve@nowhere.test"})
        assert known.status == stranger.status == 200
        assert known.text.replace("jane@acme.test", "X") == stranger.text.replace(
            "eve@nowhere.test", "X"
        )
        wait_for_log(daemon, "sign-in link not sent")


@pytest.fixture
def site(tmp_path: Path, sink: Sink):
    with running_site(tmp_path, sink) as running:
        yield running


def copied(site: Site, browser: Browser) -> Browser:
    """Another browser holding a copy of the first one's session cookie."""
    thief = Browser(site.base)
    for cookie in browser.cookies:
        thief.cookies.set_cookie(cookie)
    return thief


def test_a_session_ends_at_sign_out_even_for_a_copied_cookie(site: Site):
    jane = site.signed_in("jane@acme.test")
    thief = copied(site, jane)
    assert thief.get("/cases").url.endswith("/cases")
    page = jane.get("/cases")
    assert jane.post("/signout", {"csrf": page.csrf}).url.endswith("/signin")
    assert thief.get("/cases").url.endswith("/signin")


def test_sign_out_from_the_command_line_ends_every_session_of_the_address(site: Site):
    laptop, phone = site.signed_in("jane@acme.test"), site.signed_in("jane@acme.test")
    pat = site.signed_in("pat@initech.test")
    ended = cli(site.daemon.config, "web", "sign-out", "Jane@Acme.test")
    assert ended.returncode == 0, ended.stderr.decode()
    assert "2 sessions of jane@acme.test ended" in ended.stdout.decode()
    assert laptop.get("/cases").url.endswith("/signin")
    assert phone.get("/cases").url.endswith("/signin")
    assert pat.get("/cases").url.endswith("/cases")  # nobody else's
    again = cli(site.daemon.config, "web", "sign-out", "nobody@acme.test")
    assert again.returncode == 0 and "0 sessions" in again.stdout.decode()


def test_an_engineer_removed_from_the_configuration_is_signed_out(site: Site):
    alice, bob = site.signed_in("alice@helpdesk.test"), site.signed_in("bob@helpdesk.test")
    assert alice.get("/queue").status == 200
    config = site.daemon.config
    block = '[[engineers]]\nname = "Alice Engineer"\nemail = "alice@helpdesk.test"\ntier = 1\n'
    assert block in config.read_text()
    config.write_text(config.read_text().replace(block, ""))
    site.daemon.proc.send_signal(signal.SIGHUP)
    wait_for_log(site.daemon, "configuration reloaded")
    assert alice.get("/queue").url.endswith("/signin")
    assert alice.get("/cases").url.endswith("/signin")  # not even as a contact
    assert bob.get("/queue").status == 200
