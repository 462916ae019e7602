"""Signing in and out of the status page: what the answer to a sign-in request may depend on,
and sessions that end when they are ended."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpdeskd.config import PACKAGED_TEMPLATES
from tests.support import Daemon, Sink, free_port, wait_for_port, write_config
from tests.test_cli import wait_for_log
from tests.test_web import WEB
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
