"""What a visitor sends the status page: uploads past the limit, names and parameters no route
expects. Each gets a clear 4xx answer; none a 500, none a mail in the spool."""

from __future__ import annotations

import contextlib
import http.client
import os
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

from tests.support import Daemon, Sink, free_port, wait_for_port, write_config
from tests.test_web import WEB, Site
from tests.webclient import Browser, multipart

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

LIMIT = 300_000  # [smtp] max_message_size here: small, so that three times it is quick to send


@pytest.fixture
def site(tmp_path: Path, sink: Sink):
    smtp, web = free_port(), free_port()
    config = write_config(
        tmp_path, smtp_port=smtp, relay_port=sink.port, extra=WEB.format(port=web)
    )
    text = config.read_text().replace("[smtp]\n", f"[smtp]\nmax_message_size = {LIMIT}\n", 1)
    config.write_text(text)
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
        yield Site(daemon, sink, f"http://127.0.0.1:{web}")


def spooled_from_the_web(site: Site) -> int:
    with sqlite3.connect(site.daemon.config.parent / "helpdesk.db") as db:
        return db.execute("SELECT count(*) FROM spool WHERE source = 'web'").fetchone()[0]


def cookie_of(browser: Browser) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def post_chunked(site: Site, browser: Browser, path: str, body: bytes, kind: str) -> int:
    """A POST without Content-Length, its body in chunks: the server learns the size only by
    reading. The answer may come before the whole body is sent."""
    host, port = urllib.parse.urlsplit(site.base).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    headers = {"Content-Type": kind, "Cookie": cookie_of(browser)}
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused midway
        conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
    try:
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_chunked_upload_past_the_limit_is_refused_as_it_streams(site: Site):
    browser = site.signed_in("jane@acme.test")
    form = browser.get("/new")
    fields = {"csrf": form.csrf, "subject": "Huge", "description": "See the file."}
    body, kind = multipart(fields, [("files", "big.bin", os.urandom(3 * LIMIT))])
    assert post_chunked(site, browser, "/new", body, kind) == 413
    # under the limit as sent, over it as a mail (base64 adds a third): one limit, as for mail
    body, kind = multipart(fields, [("files", "big.bin", os.urandom(LIMIT * 9 // 10))])
    assert post_chunked(site, browser, "/new", body, kind) == 413
    fine, kind = multipart(fields, [("files", "small.bin", os.urandom(LIMIT // 2))])
    assert post_chunked(site, browser, "/new", fine, kind) == 200
    assert spooled_from_the_web(site) == 1
