"""The status page over real HTTP against the daemon: sign-in by mailed link, who sees what,
and every action entering the pipeline as its mail twin does; on SQLite and on PostgreSQL (the
`database` fixture behind `site` and `store`)."""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd.adapters import signin
from helpdeskd.adapters.store import SignIns, Store
from helpdeskd.config import load
from helpdeskd.core import classify, submission
from helpdeskd.core.parse import parse
from helpdeskd.pipeline import authenticate
from tests.support import (
    Daemon,
    Sink,
    free_port,
    mail,
    run_in_process,
    send,
    wait_for_port,
    write_config,
)
from tests.webclient import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WEB = """
[plans.gold.priorities]
P1 = "Business is not operational"
P2 = "Business is operational, with a severe loss of function"

[[customers]]
name = "Initech"
domains = ["initech.test"]
plan = "gold"
primary_contact = "pat@initech.test"

[web]
enabled = true
port = {port}
base_url = "http://127.0.0.1:{port}"
"""
LINK = re.compile(r"http://127\.0\.0\.1:\d+/signin/[\w-]+")


@pytest.fixture
def site(tmp_path: Path, sink: Sink, database):
    with running_site(tmp_path, sink) as running:
        yield running


@contextlib.contextmanager
def running_site(tmp_path: Path, sink: Sink, smtp_settings: str = "") -> Iterator[Site]:
    """The daemon with its status page; `smtp_settings`: lines added to its [smtp]."""
    smtp, web = free_port(), free_port()
    config = write_config(
        tmp_path, smtp_port=smtp, relay_port=sink.port, extra=WEB.format(port=web)
    )
    gold = '[plans.gold]\ncalendar = "always"\n'
    text = config.read_text().replace(gold, gold + "survey = true\n")
    config.write_text(text.replace("[smtp]\n", "[smtp]\n" + smtp_settings, 1))
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
        yield Site(daemon, sink, f"http://127.0.0.1:{web}")


class Site:
    def __init__(self, daemon: Daemon, sink: Sink, base: str):
        self.daemon, self.sink, self.base = daemon, sink, base

    def signed_in(self, address: str) -> Browser:
        browser = Browser(self.base)
        link = self.ask_link(browser, address)
        assert link, f"no sign-in link mailed to {address}"
        confirm = browser.get(link)
        landed = browser.post(link, {"csrf": confirm.csrf})
        assert landed.status == 200, landed.text
        return browser

    def ask_link(self, browser: Browser, address: str) -> str | None:
        earlier = {id(m) for m in self.sink.received}
        form = browser.get("/signin")
        answer = browser.post("/signin", {"csrf": form.csrf, "address": address})
        assert answer.status == 200, answer.text
        fresh = self.sink.wait_for(
            lambda m: (
                address in str(m["To"]) and "sign-in" in str(m["Subject"]) and id(m) not in earlier
            ),
            timeout=5,
        )
        return LINK.search(fresh[-1].get_body(("plain",)).get_content()).group(0) if fresh else None

    def open_case(self, sender: str, subject: str, body: str = "It broke.") -> str:
        send(self.daemon.port, mail(sender, subject, body))
        ack = self.sink.wait_for(lambda m: sender in str(m["To"]) and subject in str(m["Subject"]))
        assert ack, f"no acknowledgement for {subject}"
        return str(ack[0]["Subject"]).split("]")[0].lstrip("[")

    def show(self, reference: str) -> dict:
        return json.loads(run_in_process(self.daemon.config, "show", reference, "--json"))

    def wait_messages(self, reference: str, count: int) -> list[dict]:
        def enough():
            messages = self.show(reference)["messages"]
            return messages if len(messages) >= count else None

        found = wait_for(enough)
        assert found, f"{reference} has fewer than {count} messages"
        return found


def test_the_status_page_is_off_unless_configured(tmp_path: Path, sink: Sink):
    smtp, web = free_port(), free_port()
    extra = f"\n[web]\nport = {web}\n"
    config = write_config(tmp_path, smtp_port=smtp, relay_port=sink.port, extra=extra)
    with Daemon(config, smtp), pytest.raises(OSError):
        Browser(f"http://127.0.0.1:{web}").opener.open(f"http://127.0.0.1:{web}/", timeout=2)


def test_sign_in_by_a_mailed_link_and_the_same_answer_for_strangers(site: Site):
    browser = Browser(site.base)
    form = browser.get("/signin")
    assert "default-src 'none'" in form.headers["content-security-policy"]
    known = browser.post("/signin", {"csrf": form.csrf, "address": "jane@acme.test"})
    stranger = browser.post("/signin", {"csrf": form.csrf, "address": "eve@nowhere.test"})
    assert known.status == stranger.status == 200
    assert known.text.replace("jane@acme.test", "X") == stranger.text.replace(
        "eve@nowhere.test", "X"
    )
    assert site.sink.wait_for(lambda m: "jane@acme.test" in str(m["To"]))
    time.sleep(0.5)  # give a wrongly queued mail to the stranger the chance to show up
    assert not [m for m in site.sink.received if "eve@nowhere.test" in str(m["To"])]


def test_the_acknowledgement_links_to_the_case_page(site: Site):
    reference = site.open_case("jane@acme.test", "Where is my invoice")
    ack = site.sink.wait_for(lambda m: reference in str(m["Subject"]) and "jane" in str(m["To"]))
    text = ack[0].get_body(("plain",)).get_content()
    assert f"Follow this case online: {site.base}/cases/{reference}\r\n" in text


def test_a_link_works_once(site: Site):
    browser = Browser(site.base)
    link = site.ask_link(browser, "jane@acme.test")
    confirm = browser.get(link)
    assert "jane" not in confirm.text  # a scanner opening the link signs nobody in
    assert browser.post(link, {"csrf": confirm.csrf}).status == 200
    again = Browser(site.base)
    assert again.post(link, {"csrf": again.get(link).csrf}).status == 400


def test_the_secret_is_private_and_a_client_is_rate_limited_too(tmp_path: Path):
    config = load(write_config(tmp_path, extra="\n[web]\nenabled = true\n"))
    store = Store.open(config.helpdesk.database)
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    signin.load_secret(config)
    assert (tmp_path / "web-secret").stat().st_mode & 0o777 == 0o600
    answers = [
        signin.request_link(store, config, f"user{i}@acme.test", "10.0.0.9", now)
        for i in range(signin.REQUESTS_PER_CLIENT + 1)
    ]
    assert answers[-1] == "limited" and set(answers[:-1]) == {"sent"}


def test_the_session_cookie_is_signed_and_expires():
    secret, now = b"k" * 32, datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    session = signin.new_session("jane@acme.test", 3600, now)
    cookie = signin.seal(secret, session)
    assert signin.unseal(secret, cookie, now) == session
    assert signin.unseal(secret, cookie, now + timedelta(hours=2)) is None
    assert signin.unseal(b"x" * 32, cookie, now) is None
    other = signin.seal(secret, signin.new_session("eve@acme.test", 3600, now))
    forged = other.split(".")[0] + "." + cookie.split(".")[1]  # Eve's body, Jane's signature
    assert signin.unseal(secret, forged, now) is None


def test_an_expired_link_is_refused(store: Store):
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    SignIns(store).issue(signin.token_hash("t"), "jane@acme.test", now, now + timedelta(minutes=15))
    assert signin.redeem(store, "t", now + timedelta(minutes=16)) is None
    SignIns(store).issue(signin.token_hash("u"), "jane@acme.test", now, now + timedelta(minutes=15))
    assert signin.redeem(store, "u", now + timedelta(minutes=14)) == "jane@acme.test"
    assert signin.redeem(store, "u", now + timedelta(minutes=14)) is None


def test_sign_in_requests_are_rate_limited(site: Site):
    browser = Browser(site.base)
    form = browser.get("/signin")
    answers = [
        browser.post("/signin", {"csrf": form.csrf, "address": "jane@acme.test"}).status
        for _ in range(signin.LINKS_PER_ADDRESS + 1)
    ]
    assert answers[-1] == 429 and set(answers[:-1]) == {200}


def test_a_form_without_its_csrf_token_is_refused(site: Site):
    reference = site.open_case("jane@acme.test", "Printer on fire")
    browser = site.signed_in("jane@acme.test")
    refused = browser.post(f"/cases/{reference}/reply", {"text": "hello", "csrf": "forged"})
    assert refused.status == 403
    assert browser.post("/signin", {"address": "jane@acme.test"}).status == 403


def test_a_contact_sees_nothing_of_another_customer_nor_internal_notes(site: Site):
    theirs = site.open_case("boss@globex.test", "Globex secret")
    ours = site.open_case("jane@acme.test", "Acme question")
    note = mail("Alice Engineer <alice@helpdesk.test>", f"Re: [{ours}] x", "#note\nsecret plan")
    note.add_attachment(b"internal", maintype="text", subtype="plain", filename="plan.txt")
    send(site.daemon.port, note)
    messages = site.wait_messages(ours, 4)  # in, ack, notification, note
    note_row = next(i for i, m in enumerate(messages) if m["kind"] == "note")
    browser = site.signed_in("jane@acme.test")
    assert browser.get(f"/cases/{theirs}").status == 404
    page = browser.get(f"/cases/{ours}")
    assert page.status == 200 and "secret plan" not in page.text
    ids = [int(x) for x in re.findall(rf"/cases/{ours}/files/(\d+)/", page.text)]
    assert not ids
    for message_id in range(1, 20):  # whatever the note's row id, its file stays hidden
        if browser.get(f"/cases/{ours}/files/{message_id}/0").status == 200:
            pytest.fail(f"message {message_id} ({note_row}) gave away an attachment")
    assert "Acme question" in browser.get("/cases").text
    assert "Globex secret" not in browser.get("/cases").text


def test_the_primary_contact_sees_every_case_of_the_customer(site: Site):
    first = site.open_case("ann@initech.test", "Ann's problem")
    browser = site.signed_in("pat@initech.test")
    assert first in browser.get("/cases").text
    assert browser.get(f"/cases/{first}").status == 200
    other = site.signed_in("bob@initech.test")
    assert other.get(f"/cases/{first}").status == 404
    assert other.get("/reports").status == 404
    report = browser.get("/reports")
    assert report.status == 200 and "<svg" in report.text


def test_participants_see_the_cases_they_are_copied_on_and_nothing_else(site: Site):
    """A colleague of the customer's and an outsider, both in Cc of Ann's mail: each signs in
    (the outsider too: they are on a case) and sees that case, not Ann's other one."""
    copied = "jim@initech.test, consultant@partner.test"
    send(site.daemon.port, mail("ann@initech.test", "Printer jam", "x", headers={"Cc": copied}))
    ack = site.sink.wait_for(lambda m: "Printer jam" in str(m["Subject"]))
    assert ack, "no acknowledgement"
    theirs = str(ack[0]["Subject"]).split("]")[0].lstrip("[")
    other = site.open_case("ann@initech.test", "Another Initech matter")
    for address in ("jim@initech.test", "consultant@partner.test"):
        browser = site.signed_in(address)
        assert browser.get(f"/cases/{theirs}").status == 200, address
        listing = browser.get("/cases").text
        assert theirs in listing and other not in listing, address
        assert browser.get(f"/cases/{other}").status == 404, address


def test_a_web_reply_lands_as_its_mail_twin(site: Site):
    by_web = site.open_case("jane@acme.test", "Web twin")
    by_mail = site.open_case("jane@acme.test", "Mail twin")
    browser = site.signed_in("jane@acme.test")
    page = browser.get(f"/cases/{by_web}")
    answer = browser.post(
        f"/cases/{by_web}/reply",
        {"csrf": page.csrf, "text": "Here are the logs."},
        files=[("files", "app.log", b"ERROR 42\n")],
    )
    assert answer.status == 200, answer.text
    reply = mail("jane@acme.test", f"Re: [{by_mail}] Mail twin", "Here are the logs.")
    reply.add_attachment(
        b"ERROR 42\n", maintype="application", subtype="octet-stream", filename="app.log"
    )
    send(site.daemon.port, reply)
    web, mailed = site.wait_messages(by_web, 4), site.wait_messages(by_mail, 4)
    assert shape(web) == shape(mailed)
    assert web[-2]["body"] == mailed[-2]["body"] == "Here are the logs."
    page = browser.get(f"/cases/{by_web}")
    assert "Here are the logs." in page.text
    link = re.search(rf"/cases/{by_web}/files/\d+/0", page.text).group(0)
    download = browser.get(link)
    assert download.status == 200 and download.text == "ERROR 42\n"


def test_a_new_case_from_the_form_lands_as_a_mail_does(site: Site):
    browser = site.signed_in("jane@acme.test")
    form = browser.get("/new")
    # the plan's definitions are offered instead of a bare urgency
    assert "P1: Business is not operational" in form.text
    answer = browser.post(
        "/new",
        {
            "csrf": form.csrf,
            "subject": "Portal down",
            "description": "Nobody can log in.",
            "priority": "P2",
            "environment": "Firefox 128",
        },
    )
    assert answer.status == 200
    ack = site.sink.wait_for(lambda m: "Portal down" in str(m["Subject"]))
    reference = str(ack[0]["Subject"]).split("]")[0].lstrip("[")
    detail = site.show(reference)
    # the priority chosen on the form is the case's, whatever words ("down") it holds
    assert detail["customer"] == "Acme" and detail["priority"] == "P2"
    first = detail["messages"][0]
    assert first["kind"] == "customer" and "Environment: Firefox 128" in first["body"]
    assert first["entrance"] == "web"


def test_an_engineer_opens_a_case_on_a_customers_behalf(site: Site):
    browser = site.signed_in("alice@helpdesk.test")
    form = browser.get("/new")
    assert 'name="for"' in form.text
    fields = {"csrf": form.csrf, "subject": "Scanner lost settings", "description": "Called in."}
    assert browser.post("/new", {**fields, "for": "jane@acme.test"}).status == 200
    ack = site.sink.wait_for(
        lambda m: "jane@acme.test" in str(m["To"]) and "Scanner lost" in str(m["Subject"])
    )
    assert ack, "no acknowledgement to the customer"
    reference = str(ack[0]["Subject"]).split("]")[0].lstrip("[")
    detail = site.show(reference)
    assert (detail["customer"], detail["opener"]) == ("Acme", "jane@acme.test")
    first = detail["messages"][0]
    assert (first["from"], first["kind"], first["body"].strip()) == (
        "jane@acme.test", "customer", "Called in."
    )  # fmt: skip
    assert "alice@helpdesk.test" not in ack[0].as_string()


def test_only_engineers_open_a_case_for_someone_else(site: Site):
    browser = site.signed_in("jane@acme.test")
    form = browser.get("/new")
    assert 'name="for"' not in form.text
    fields = {"csrf": form.csrf, "subject": "For Pete", "description": "Hello."}
    assert browser.post("/new", {**fields, "for": "pete@acme.test"}).status == 403


def test_engineers_see_the_queue_by_nearest_deadline(site: Site):
    late = site.open_case("jane@acme.test", "Urgent outage", "outage everywhere")
    calm = site.open_case("ann@initech.test", "A question")
    browser = site.signed_in("alice@helpdesk.test")
    queue = browser.get("/queue")
    assert queue.status == 200
    assert queue.text.index(late) < queue.text.index(calm)
    assert browser.get(f"/cases/{calm}").status == 200
    refused = browser.post(f"/cases/{calm}/reply", {"csrf": queue.csrf, "text": "hi"})
    assert refused.status == 403


def test_engineers_search_the_cases_and_customers_cannot(site: Site):
    found = site.open_case("jane@acme.test", "Invalid session", "ログインできません after login")
    site.open_case("ann@initech.test", "A question")
    browser = site.signed_in("alice@helpdesk.test")
    page = browser.get("/search?" + urllib.parse.urlencode({"q": "ログイン"}))
    assert page.status == 200 and found in page.text and "[ログイン]" in page.text
    assert "A question" not in page.text
    assert "No case holds" in browser.get("/search?q=nowhere").text
    customer = site.signed_in("jane@acme.test")
    assert customer.get("/search?q=session").status == 404


def shape(messages: list[dict]) -> list[tuple]:
    return [(m["direction"], m["kind"], len(m.get("attachments", []))) for m in messages]


def test_a_closed_case_reopens_from_the_page_as_by_mail(site: Site):
    recent = site.open_case("jane@acme.test", "Closed lately")
    send(site.daemon.port, mail("alice@helpdesk.test", f"Re: [{recent}] x", "#close\nDone."))
    site.wait_messages(recent, 4)
    old = ingest_case(site, "2026-01-05T10:00:00+00:00", "Closed long ago")
    browser = site.signed_in("jane@acme.test")
    for reference in (recent, old):
        page = browser.get(f"/cases/{reference}")
        assert "Reopen with this message" in page.text
        answer = browser.post(
            f"/cases/{reference}/reply", {"csrf": page.csrf, "text": "It is back."}
        )
        assert answer.status == 200
    assert wait_for(lambda: site.show(recent)["status"] == "open")
    # beyond the reopen window a new case names the old one, as a mail reply would
    newer = wait_for(lambda: [c for c in cases(site) if c["related"] == old])
    assert newer and site.show(old)["status"] == "closed"


def ingest_case(site: Site, at: str, subject: str) -> str:
    opened = mail("jane@acme.test", subject, "x")
    run_in_process(site.daemon.config, "ingest", "--now", at, stdin=bytes(opened))
    reference = next(c["reference"] for c in cases(site) if c["subject"] == subject)
    close = mail("alice@helpdesk.test", f"Re: [{reference}] {subject}", "#close\nDone.")
    run_in_process(site.daemon.config, "ingest", "--now", at, stdin=bytes(close))
    return reference


def cases(site: Site) -> list[dict]:
    return json.loads(run_in_process(site.daemon.config, "cases", "--json"))


def wait_for(check, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    return check()


def test_an_escalation_request_from_the_page_lands_as_its_mail_twin(site: Site):
    by_web = site.open_case("jane@acme.test", "Escalate by web")
    by_mail = site.open_case("jane@acme.test", "Escalate by mail")
    browser = site.signed_in("jane@acme.test")
    page = browser.get(f"/cases/{by_web}")
    answer = browser.post(
        f"/cases/{by_web}/escalate", {"csrf": page.csrf, "text": "We are losing orders."}
    )
    assert answer.status == 200
    send(
        site.daemon.port,
        mail("jane@acme.test", f"Re: [{by_mail}] x", "#escalate We are losing orders."),
    )
    web = wait_for(lambda: site.show(by_web)["escalation_level"] == 1 and site.show(by_web))
    mailed = wait_for(lambda: site.show(by_mail)["escalation_level"] == 1 and site.show(by_mail))
    assert web and mailed
    site.wait_messages(by_web, len(mailed["messages"]))
    web = site.show(by_web)
    assert shape(web["messages"]) == shape(mailed["messages"])
    assert kinds(web["events"]) == kinds(mailed["events"])


def test_a_rating_from_the_page_lands_as_its_mail_twin(site: Site):
    by_web, by_mail = (site.open_case("jane@acme.test", f"Rate by {x}") for x in ("web", "mail"))
    for reference in (by_web, by_mail):
        fixed = mail("alice@helpdesk.test", f"Re: [{reference}] x", "#resolve\nFixed.")
        send(site.daemon.port, fixed)
        assert wait_for(lambda r=reference: site.show(r)["status"] == "resolved")
    resolved = site.sink.wait_for(lambda m: str(m["Subject"]).startswith(f"[{by_web}] Resolved"))
    assert f"Online: {site.base}/cases/{by_web}" in resolved[0].get_body(("plain",)).get_content()
    browser = site.signed_in("jane@acme.test")
    page = browser.get(f"/cases/{by_web}")
    assert "Rate our work" in page.text and "Ask for escalation" not in page.text
    answer = browser.post(
        f"/cases/{by_web}/rate", {"csrf": page.csrf, "score": "4", "text": "Quick, thanks."}
    )
    assert answer.status == 200
    send(site.daemon.port, mail("jane@acme.test", f"Re: [{by_mail}] x", "4\nQuick, thanks."))
    rated = lambda r: [e for e in site.show(r)["events"] if e["kind"] == "rating"]  # noqa: E731
    assert wait_for(lambda: rated(by_web)) and wait_for(lambda: rated(by_mail))
    web, mailed = site.show(by_web), site.show(by_mail)
    assert web["status"] == mailed["status"] == "resolved"  # a rating reopens nothing
    assert shape(web["messages"]) == shape(mailed["messages"])
    assert rated(by_web)[0]["detail"] == rated(by_mail)[0]["detail"]


def kinds(events: list[dict]) -> list[str]:
    return [e["kind"] for e in events]


def test_what_the_page_sends_is_proven_as_its_signed_in_sender(tmp_path: Path):
    """With require_dmarc_pass, mail needs proof; the page's proof is the mailed sign-in link."""
    config = load(write_config(tmp_path))
    config = replace(config, policy=replace(config.policy, require_dmarc_pass=True))
    raw = submission.as_mail(
        submission.new_case("jane@acme.test", "Hello", "It broke.", "normal", ""),
        "support@helpdesk.test",
        "web.1@helpdesk.test",
        datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
    )
    inbound = parse(raw)
    today = date(2026, 11, 30)
    by_page = classify.sender_of(inbound, config, today, authenticate(config, "web", raw, inbound))
    assert (by_page.role, by_page.customer) == ("customer", "Acme")
    by_mail = classify.sender_of(inbound, config, today, authenticate(config, "smtp", raw, inbound))
    assert by_mail.role == "unknown"


def test_old_links_and_counts_are_forgotten(tmp_path: Path):
    config = load(write_config(tmp_path, extra="\n[web]\nenabled = true\n"))
    store = Store.open(config.helpdesk.database)
    day = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert signin.request_link(store, config, "jane@acme.test", "10.0.0.9", day) == "sent"
    later = day + timedelta(days=2)
    assert signin.request_link(store, config, "eve@nowhere.test", "10.0.0.9", later) == "unknown"
    assert store.count("web_links", "1") == 0  # the first link expired a day and more ago
    assert store.count("web_requests", "at < ?", [later.isoformat()]) == 0
