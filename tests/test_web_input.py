"""What a visitor sends the status page: uploads past the limit, names and parameters no route
expects. Each gets a clear 4xx answer; none a 500, none a mail in the spool."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import sqlite3
import urllib.parse
from pathlib import Path

import pytest

from tests.support import Sink, mail, send
from tests.test_web import Site, running_site
from tests.webclient import Browser, multipart

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

LIMIT = 300_000  # [smtp] max_message_size here: small, so that three times it is quick to send


@pytest.fixture
def site(tmp_path: Path, sink: Sink):
    with running_site(tmp_path, sink, f"max_message_size = {LIMIT}\n") as running:
        yield running


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


def test_a_file_with_a_name_beyond_ascii_downloads(site: Site):
    note = mail("jane@acme.test", "Report attached", "See the report.")
    note.add_attachment(b"figures\n", maintype="text", subtype="plain", filename="отчёт.txt")
    send(site.daemon.port, note)
    ack = site.sink.wait_for(lambda m: "Report attached" in str(m["Subject"]))
    reference = str(ack[0]["Subject"]).split("]")[0].lstrip("[")
    browser = site.signed_in("jane@acme.test")
    link = re.search(rf"/cases/{reference}/files/\d+/0", browser.get(f"/cases/{reference}").text)
    download = browser.get(link.group(0))
    assert download.status == 200 and download.text == "figures\n"
    disposition = download.headers["content-disposition"]
    assert disposition.isascii()
    assert "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.txt" in disposition
    assert 'filename="' in disposition  # a fallback for the few clients without RFC 6266


def test_a_month_out_of_range_is_a_clear_refusal(site: Site):
    browser = site.signed_in("pat@initech.test")
    for month in ("9999-12", "0001-01", "2026-13", "2026-00", "12-2026", "abc", "２０２６-０１"):
        page = browser.get(f"/reports?month={urllib.parse.quote(month)}")
        assert page.status == 400 and "YYYY-MM" in page.text, month
    assert browser.get("/reports?month=2026-01").status == 200
    assert browser.get("/reports?month=").status == 200  # the form left empty: this month


HOSTILE = [
    "%00",
    "%C3%A9",
    "%E2%80%AE",
    "%FF",
    "..%2F..%2Fetc%2Fpasswd",
    "x" * 3000,
    "%27%20OR%201%3D1--",
    "%0D%0ASet-Cookie:%20a=b",
]
HUGE = "9" * 30


def test_no_hostile_parameter_makes_a_server_error(site: Site):
    """Every route, with what a visitor may put in its path, query, form, files and cookie."""
    reference = site.open_case("jane@acme.test", "Something to act on")
    jane, pat = site.signed_in("jane@acme.test"), site.signed_in("pat@initech.test")
    alice = site.signed_in("alice@helpdesk.test")
    csrf = jane.get(f"/cases/{reference}").csrf
    weird = "\x00\r\nBcc: eve@evil.test\r\n" + "é" * 50 + "\u202e"
    answers = []

    def answer(page, what):
        answers.append((page.status, what))

    for who in (Browser(site.base), jane, alice):
        for path in ("/", "/style.css", "/signin", "/cases", "/new", "/reports", "/queue"):
            answer(who.get(f"{path}?month=9999-12&x=%00&x=%FF"), path)
    for bad in HOSTILE:
        answer(Browser(site.base).get(f"/signin/{bad}"), f"GET /signin/{bad}")
        stranger = Browser(site.base)
        token = stranger.get("/signin").csrf
        answer(stranger.post(f"/signin/{bad}", {"csrf": token}), f"POST /signin/{bad}")
        answer(jane.get(f"/cases/{bad}"), f"/cases/{bad}")
        answer(jane.post(f"/cases/{bad}/reply", {"csrf": csrf, "text": "x"}), "reply")
        answer(jane.post(f"/cases/{reference}/{bad}", {"csrf": csrf, "text": "x"}), "action")
        answer(jane.get(f"/cases/{bad}/files/1/0"), "files")
        answer(pat.get(f"/reports?month={bad}"), f"/reports?month={bad}")
    for message, index in ((HUGE, "0"), ("1", HUGE), (HUGE, HUGE), ("0", "0")):
        answer(jane.get(f"/cases/{reference}/files/{message}/{index}"), f"files {message}")
    for cookie in ("é.é", "\x7f.\x7f", "a.b.c", ".", "%FF.%FF", "W10.x", "x" * 5000):
        visitor = Browser(site.base)
        headers = {"Cookie": f"helpdeskd_session={cookie}"}
        answer(visitor.get("/queue", headers=headers), f"cookie {cookie[:20]}")
    stranger = Browser(site.base)
    token = stranger.get("/signin").csrf
    for address in (weird, "x" * 5000 + "@acme.test", "@", "jane@acme.test\r\nBcc: eve@x"):
        answer(stranger.post("/signin", {"csrf": token, "address": address}), "signin")
    answer(stranger.post("/signin", {"csrf": "é" * 40, "address": "jane@acme.test"}), "csrf é")
    answer(jane.post("/signout", {"csrf": "\x00é"}), "signout")
    for score in ("0", "6", "-1", "1e400", HUGE, "9" * 5000, "٣", weird):
        answer(jane.post(f"/cases/{reference}/rate", {"csrf": csrf, "score": score}), "rate")
    for action in ("reply", "escalate"):
        fields = {"csrf": csrf, "text": weird * 20}
        answer(jane.post(f"/cases/{reference}/{action}", fields), action)
    new = {"csrf": csrf, "subject": weird, "description": weird, "urgency": weird}
    answer(jane.post("/new", {**new, "environment": weird}), "new")
    for name in (weird, "../../etc/passwd", "a" * 3000, 'quote".txt'):
        answer(jane.post("/new", new, files=[("files", name, b"data")]), f"upload {name[:9]}")
    typed, kind = multipart(new, [("files", "a.txt", b"x")])
    hostile = "text/plain\u00e9; charset=\u00e9\x00".encode()
    answer(jane.post_raw("/new", typed.replace(b"application/octet-stream", hostile), kind), "type")
    answer(jane.post_raw("/new", b"--x\r\nbroken", "multipart/form-data"), "no boundary")
    answer(jane.post_raw("/new", b"\xff\xfe" * 100, "application/x-www-form-urlencoded"), "raw")
    failures = [(status, what) for status, what in answers if status >= 500]
    assert not failures, failures
    assert "Traceback" not in site.daemon.log.read_text()
