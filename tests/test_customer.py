"""The customer's side by email, end to end through `helpdeskd ingest --now`, `sweep --now`,
`announce` and `report` (run in this process through `cli.main`, on a real SQLite file and on a
real PostgreSQL database (the `database` fixture), outgoing mail written to a Maildir).

The test configuration (tests/support.py) plus: Acme (acme.test, gold plan, 24x7) with primary
contact it@acme.test and stand-in ops@acme.test; Globex (globex.test, standard plan, Chicago
business hours, authorized_only) with primary contact boss@globex.test and stand-in
deputy@globex.test; Initech, whose contact must never hear of the others' announcements. Both
plans ask for a rating; escalation levels are named "Team lead" and "Support manager".
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import mailbox
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import Cases, Ratings, Store, open_store
from helpdeskd.core import access, survey
from tests.support import Daemon, Sink, free_port, mail, sample_case, send, write_config
from tests.support import call_in_process as call
from tests.support import run_in_process as run

CUSTOMERS = """
[[customers]]
name = "Initech"
domains = ["initech.test"]
plan = "standard"
primary_contact = "pm@initech.test"
"""

POLICY = """
unauthorized_open_keywords = ["production is down"]
"""


def customer_config(folder: Path, policy: str = POLICY, **options) -> Path:
    path = write_config(folder, extra=policy, **options)
    text = path.read_text()
    for old, new in [
        (
            'timezone = "America/Chicago"\n\n[smtp]',
            'timezone = "America/Chicago"\nallowlist = "allow.toml"\n\n[smtp]',
        ),
        ("warn_at = 0.8\n", "warn_at = 0.8\nsurvey = true\n"),
        (
            'resolution = { P1 = "1d", P2 = "2d", P3 = "5d", P4 = "5d" }\n',
            'resolution = { P1 = "1d", P2 = "2d", P3 = "5d", P4 = "5d" }\nsurvey = true\n',
        ),
        (
            'domains = ["acme.test"]\nplan = "gold"\n',
            'domains = ["acme.test"]\nplan = "gold"\nprimary_contact = "it@acme.test"\n'
            'stand_in_contacts = ["ops@acme.test"]\n',
        ),
        (
            "authorized_only = true\n",
            'authorized_only = true\nprimary_contact = "boss@globex.test"\n'
            'stand_in_contacts = ["deputy@globex.test"]\n' + CUSTOMERS,
        ),
        ('on = "warn" }', 'on = "warn", name = "Team lead" }'),
        ('on = "breach" }', 'on = "breach", name = "Support manager" }'),
    ]:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)
    configuration.load(path)  # the test's own set-up must be valid
    return path


@pytest.fixture
def config(tmp_path, database):
    return customer_config(tmp_path)


def store_of(config: Path) -> Store:
    return open_store(configuration.load(config).helpdesk.database)


def ingest(config: Path, message, now: str) -> str:
    path = config.parent / "in.eml"
    path.write_bytes(bytes(message))
    return run(config, "ingest", "--now", now, str(path))


def sweep(config: Path, now: str) -> list[dict]:
    return json.loads(run(config, "sweep", "--now", now, "--json"))


def show(config: Path, reference: str) -> dict:
    return json.loads(run(config, "show", reference, "--json"))


def sent(config: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(config.parent / "maildir"), create=True)
    found = [email.message_from_bytes(bytes(m), policy=email.policy.default) for m in box]
    return sorted(found, key=lambda m: email.utils.parsedate_to_datetime(m["Date"]))


def to(config: Path, address: str, subject: str = "") -> list:
    return [m for m in sent(config) if address in str(m["To"]) and subject in str(m["Subject"])]


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def open_case(config: Path, sender: str, subject: str, now: str, body: str = "Help.") -> str:
    out = ingest(config, mail(sender, subject, body), now)
    assert out.startswith("new "), out
    return out.split()[1].rstrip(":")


def engineer(config: Path, reference: str, body: str, now: str) -> str:
    # a Message-ID under the helpdesk's own domain would read as our own mail coming back
    message_id = email.utils.make_msgid(domain="laptop.helpdesk.example")
    reply = mail("alice@helpdesk.test", f"Re: [{reference}] x", body, message_id=message_id)
    return ingest(config, reply, now)


def customer(config: Path, reference: str, body: str, now: str, sender="jane@acme.test") -> str:
    return ingest(config, mail(sender, f"Re: [{reference}] x", body), now)


def follow_ups(config: Path) -> list:
    """The customer's replies passed on to the team (not the new-case notification)."""
    return [m for m in to(config, "alice@helpdesk.test") if "New case" not in str(m["Subject"])]


def kinds(config: Path, reference: str) -> list[str]:
    return [m["kind"] for m in show(config, reference)["messages"] if m["direction"] == "out"]


# -- 1. escalation on the customer's request ------------------------------------------------

MON = "2026-04-20T10:00:00+00:00"


def test_customer_escalation_raises_the_level_once_and_notifies_that_level(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    customer(config, ref, "#escalate nobody has answered\n\nWe lose money.", "2026-04-20T10:10Z")

    assert show(config, ref)["escalation_level"] == 1
    (lead,) = to(config, "lead@helpdesk.test", "Escalated (level 1)")
    assert "nobody has answered" in text(lead) and "We lose money." in text(lead)
    (told,) = to(config, "jane@acme.test", "Escalated")
    assert "As you asked" in text(told) and "Team lead" in text(told)
    assert "lead@helpdesk.test" not in text(told)  # a role, not private addresses
    # the customer's words still reach the team as a reply
    assert follow_ups(config)
    events = [e for e in Cases(store_of(config)).events(1)]
    assert any(e["kind"] == "escalate" and "request of the customer" in e["detail"] for e in events)

    # a second request the same working day: a polite answer, no new level, nobody new told
    customer(config, ref, "#escalate", "2026-04-20T15:00Z")
    assert show(config, ref)["escalation_level"] == 1
    assert to(config, "manager@helpdesk.test") == []
    (answer,) = to(config, "jane@acme.test", "Escalation request")
    assert "ask again from" in text(answer)

    # a day later (24x7 plan) it may rise again, to the top level and no further
    customer(config, ref, "#escalate still broken", "2026-04-21T10:15Z")
    assert show(config, ref)["escalation_level"] == 2
    (manager,) = to(config, "manager@helpdesk.test", "Escalated (level 2)")
    assert "still broken" in text(manager)
    customer(config, ref, "#escalate", "2026-04-22T11:00Z")
    assert show(config, ref)["escalation_level"] == 2
    assert "highest level" in text(to(config, "jane@acme.test", "Escalation request")[-1])


def test_a_stranger_cannot_escalate_anothers_case(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    ingest(config, mail("eve@evil.test", f"Re: [{ref}] x", "#escalate"), "2026-04-20T10:10Z")
    assert show(config, ref)["escalation_level"] == 0
    assert to(config, "lead@helpdesk.test") == []


# -- 2. the survey ---------------------------------------------------------------------------


def test_a_rating_reply_is_recorded_without_reopening(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    engineer(
        config, ref, "#assign me\n#resolve\n\nFixed: the cache was stale.", "2026-04-20T11:00Z"
    )
    (resolved,) = to(config, "jane@acme.test", "Resolved")
    assert "single number from 1" in text(resolved)

    out = customer(config, ref, "4\nQuick, but I had to ask twice.", "2026-04-20T12:00Z")
    assert out.startswith("follow_up"), out
    case = show(config, ref)
    assert case["status"] == "resolved"
    assert case["messages"][-1]["kind"] == "rating"
    assert follow_ups(config) == []  # not a follow-up
    store = store_of(config)
    rating = store.row("SELECT * FROM ratings")
    assert (rating["score"], rating["comment"]) == (4, "Quick, but I had to ask twice.")
    history = [e["detail"] for e in Cases(store).events(rating["case_id"]) if e["kind"] == "rating"]
    assert history == ["4 of 5 by jane@acme.test with a comment"]

    tally = json.loads(run(config, "report", "--format", "json", "--part", "satisfaction"))
    assert {"by": "engineer", "name": "alice@helpdesk.test", "asked": 1, "rated": 1,
            "average": 4, "response_rate": 100.0} in tally  # fmt: skip

    # closing it later asks nothing more: one survey per case
    engineer(config, ref, "#close", "2026-04-21T12:00Z")
    assert "single number" not in text(to(config, "jane@acme.test", "Closed")[-1])


def test_a_reply_that_is_not_a_rating_reopens(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    engineer(config, ref, "#resolve\n\nFixed.", "2026-04-20T11:00Z")
    out = customer(config, ref, "5 reports are still empty.", "2026-04-20T12:00Z")
    assert show(config, ref)["status"] == "open", out
    assert follow_ups(config)
    (reopened,) = to(config, "jane@acme.test", "Reopened")
    assert "has been reopened" in text(reopened)
    store = store_of(config)
    assert store.row("SELECT * FROM ratings") is None


def test_no_survey_after_the_closing_rule_unless_configured(tmp_path):
    for policy, asked in ((POLICY, False), (POLICY + "survey_after_auto_close = true\n", True)):
        folder = tmp_path / str(asked)
        folder.mkdir()
        config = customer_config(folder, policy)
        ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
        engineer(config, ref, "#waiting\n\nWhich browser?", "2026-04-20T11:00Z")
        sweep(config, "2026-04-23T11:00Z")  # closing warning after 3 days
        done = sweep(config, "2026-04-25T11:00Z")  # closed 2 days later
        assert [a["action"] for a in done if a["reference"] == ref] == ["close"]
        (closed,) = to(config, "jane@acme.test", "Closed")
        assert "did not hear back" in text(closed)
        assert ("single number" in text(closed)) is asked


# -- 3. milestones ---------------------------------------------------------------------------


def test_one_milestone_mail_per_milestone(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    engineer(config, ref, "#escalate\n\nLooking into it.", "2026-04-20T10:30Z")
    engineer(config, ref, "#resolve", "2026-04-20T11:00Z")
    customer(config, ref, "It is broken again.", "2026-04-20T12:00Z")
    engineer(config, ref, "#close\n\nFixed for good.", "2026-04-20T13:00Z")
    sweep(config, "2026-04-25T13:00Z")  # the escalation levels are behind it: nothing more

    milestones = [k for k in kinds(config, ref) if k != "engineer"]  # the relayed replies
    # the lead, whom the escalation notified, follows the case: one short mail a milestone
    assert milestones == [
        "acknowledgement",
        "notification",
        "escalation",
        "escalated",
        "resolved",
        "follower",
        "follow_up",
        "reopened",
        "follower",
        "closed",
        "follower",
    ]
    for subject, words in [
        ("Escalated", "more senior people"),
        ("Resolved", "If it does not"),
        ("Reopened", "has been reopened"),
        ("Closed", "closed by our engineer"),
    ]:
        (found,) = to(config, "jane@acme.test", f"{subject}: Reports are empty")
        body = text(found)
        assert ref in body and "Status:" in body and "What happens next" in body, body
        assert words in body


def test_closed_at_the_customers_request_says_so(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    customer(config, ref, "All good now.\n#close", "2026-04-20T11:00Z")
    (closed,) = to(config, "jane@acme.test", "Closed")
    assert "as you asked" in text(closed)


# behind an MTA whose Authentication-Results helpdeskd trusts: proof can be checked
TRUSTED = POLICY + 'trusted_authserv_id = "mx.helpdesk.test"\n'


def proven(sender: str, subject: str, body: str):
    domain = sender.rpartition("@")[2]
    results = {"Authentication-Results": f"mx.helpdesk.test; dkim=pass header.d={domain}"}
    return mail(sender, subject, body, headers=results)


def test_a_close_from_an_unproven_customer_is_refused_where_proof_is_checkable(tmp_path):
    config = customer_config(tmp_path, TRUSTED)
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    assert show(config, ref)["plan"] == "gold"  # known by its domain all the same
    customer(config, ref, "All good now.\n#close", "2026-04-20T11:00Z")
    case = show(config, ref)
    assert case["status"] != "closed"
    assert [e["kind"] for e in case["events"]].count("close_refused") == 1
    (refused,) = to(config, "jane@acme.test", "Not closed")
    assert "#close" in text(refused) and "no trusted Authentication-Results" in text(refused)
    assert to(config, "jane@acme.test", "Closed") == []
    assert "All good now." in text(follow_ups(config)[-1])  # the team still has the words
    # proven, the same request closes the case
    ingest(config, proven("jane@acme.test", f"Re: [{ref}] x", "#close"), "2026-04-20T11:10Z")
    assert show(config, ref)["status"] == "closed"
    assert len(to(config, "jane@acme.test", "Closed")) == 1


def test_allow_on_a_case_its_primary_contact_did_not_prove_is_refused(tmp_path):
    config = customer_config(tmp_path, TRUSTED)
    ref = open_case(config, "boss@globex.test", "New contact", MON, "Please add jane@globex.test.")
    engineer(config, ref, "#allow add jane@globex.test\n\nDone.", "2026-04-20T16:00Z")
    (refused,) = to(config, "alice@helpdesk.test", "Not applied")
    assert "not proven" in text(refused) and "boss@globex.test" in text(refused)
    assert not (config.parent / "allow.toml").exists()
    assert to(config, "boss@globex.test", "Contacts updated") == []
    # the primary contact's proven word, on a case of its own: applied
    signed = proven("boss@globex.test", "Contacts", "Please add jane@globex.test.")
    out = ingest(config, signed, "2026-04-20T16:10Z")
    other = out.split()[1].rstrip(":")
    engineer(config, other, "#allow add jane@globex.test\n\nDone.", "2026-04-20T16:20Z")
    assert "jane@globex.test" in configuration.load(config).customers[1].addresses


# -- 4. announcements ------------------------------------------------------------------------


def test_an_announcement_reaches_two_customers_contacts_and_nobody_else(config):
    body = config.parent / "outage.txt"
    body.write_text("The service is down for maintenance on Sunday, 02:00-04:00 UTC.\n")
    args = ["announce", "--subject", "Planned maintenance", "--body", str(body)]
    dry = run(config, *args, "--customers", "Acme", "globex.test", "--dry-run")
    assert "boss@globex.test" in dry and sent(config) == []

    run(config, *args, "--customers", "Acme", "globex.test")
    got = sorted(str(m["To"]) for m in sent(config))
    assert got == ["boss@globex.test", "deputy@globex.test", "it@acme.test", "ops@acme.test"]
    for message in sent(config):
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["List-Unsubscribe"] is None
        assert message["Reply-To"] == "support@helpdesk.test"
        assert "Sunday, 02:00-04:00" in text(message)

    # a reply opens a case like any other mail
    notice = to(config, "it@acme.test")[0]
    reply = mail("it@acme.test", "Re: Planned maintenance", "Can it move to Saturday?",
                 in_reply_to=notice["Message-ID"])  # fmt: skip
    assert ingest(config, reply, "2026-04-20T10:00Z").startswith("new ")

    run(config, *args, "--plans", "standard")
    assert to(config, "pm@initech.test", "Planned maintenance")


# -- 6. unauthorised contacts -----------------------------------------------------------------


def test_an_unauthorised_sender_gets_one_notice_and_the_primary_contact_one_forward(config):
    for minute in ("10", "20", "30"):
        out = ingest(
            config,
            mail("jane@globex.test", "Printer broken", "Please fix the printer."),
            f"2026-04-20T10:{minute}:00-05:00",
        )
        assert out.startswith("unauthorized"), out
    assert json.loads(run(config, "cases", "--json")) == []
    (notice,) = to(config, "jane@globex.test")
    assert "primary support contact" in text(notice) and "boss@globex.test" in text(notice)
    (forward,) = to(config, "boss@globex.test")
    assert "Please fix the printer." in text(forward) and "jane@globex.test" in text(forward)
    # the next day: again, once each
    ingest(config, mail("jane@globex.test", "Printer", "Still."), "2026-04-21T10:00:00-05:00")
    assert len(to(config, "jane@globex.test")) == 2 and len(to(config, "boss@globex.test")) == 2

    # production is down: the keyword rule opens the case all the same
    urgent = mail("jane@globex.test", "Help", "Our production is down since 9am!")
    assert ingest(config, urgent, "2026-04-21T11:00:00-05:00").startswith("new ")


def test_an_unauthorised_colleague_joins_no_case_by_its_reference(config):
    """authorized_only applies to threading as to opening: a colleague who guesses the
    reference of the primary contact's case gets the notice, the primary contact the
    forward, and the case neither their mail nor a place on the status page."""
    ref = open_case(config, "boss@globex.test", "Salaries", MON, "The salary run failed.")
    for minute in ("10", "20"):
        reply = mail("jane@globex.test", f"Re: [{ref}] Salaries", "Let me see this case.")
        out = ingest(config, reply, f"2026-04-20T10:{minute}:00-05:00")
        assert out.startswith("unauthorized"), out
    case = show(config, ref)
    assert [m["from"] for m in case["messages"] if m["direction"] == "in"] == ["boss@globex.test"]
    assert len(to(config, "jane@globex.test", "not registered")) == 1
    (forward,) = to(config, "boss@globex.test", "jane@globex.test")
    assert "Let me see this case." in text(forward)
    loaded = configuration.load(config)
    stored = Cases(open_store(loaded.helpdesk.database)).get(ref)
    assert not access.may_see(access.viewer_for("jane@globex.test", loaded), stored)
    assert access.may_see(access.viewer_for("boss@globex.test", loaded), stored)


def test_the_unauthorized_policy_notice_and_open(tmp_path):
    for policy, expect in (("notice", "unauthorized"), ("open", "new")):
        folder = tmp_path / policy
        folder.mkdir()
        config = customer_config(folder, f'unauthorized = "{policy}"\n')
        out = ingest(config, mail("jane@globex.test", "Printer", "Fix it."), MON)
        assert out.startswith(expect), out
        assert to(config, "boss@globex.test") == []


# -- 5. the allow-list by mail ------------------------------------------------------------------


def wait_one(sink: Sink, address: str, subject: str):
    found = sink.wait_for(lambda m: address in str(m["To"]) and subject in str(m["Subject"]))
    assert found, (
        f"nothing to {address} about {subject!r}: {[str(m['Subject']) for m in sink.received]}"
    )
    return found[-1]


def answer(daemon: Daemon, notification, body: str) -> None:
    reply = mail("alice@helpdesk.test", f"Re: {notification['Subject']}", body,
                 in_reply_to=notification["Message-ID"])  # fmt: skip
    send(daemon.port, reply)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_allow_add_on_the_primary_contacts_case_lets_a_new_contact_open_cases(tmp_path, sink):
    port = free_port()
    config = customer_config(tmp_path, smtp_port=port, relay_port=sink.port)
    admins_file = config.read_text()
    with Daemon(config, port) as daemon:
        send(daemon.port, mail("jane@globex.test", "Printer", "The printer is broken."))
        wait_one(sink, "jane@globex.test", "not registered")

        send(daemon.port, mail("boss@globex.test", "New contact", "Please add jane@globex.test."))
        asked = wait_one(sink, "alice@helpdesk.test", "New contact")
        answer(daemon, asked, "#allow add jane@globex.test\n\nDone: Jane may open cases now.")
        confirmed = wait_one(sink, "boss@globex.test", "Contacts updated")
        assert "added jane@globex.test" in text(confirmed)

        send(daemon.port, mail("jane@globex.test", "Printer again", "Still broken."))
        opened = wait_one(sink, "alice@helpdesk.test", "New case: Printer again")
        assert "jane@globex.test" in text(opened)

        # on a case not opened by the customer's primary contact: refused, nothing written
        send(daemon.port, mail("jane@acme.test", "Access", "Add my colleague please."))
        other = wait_one(sink, "alice@helpdesk.test", "New case: Access")
        answer(daemon, other, "#allow add joe@acme.test\n\nDone.")
        refused = wait_one(sink, "alice@helpdesk.test", "Not applied")
        assert "primary contact" in text(refused)
    allowed = (tmp_path / "allow.toml").read_text()
    assert "jane@globex.test" in allowed and "joe@acme.test" not in allowed
    assert config.read_text() == admins_file  # the admin's file is never rewritten
    assert "jane@globex.test" in configuration.load(config).customers[1].addresses


def test_allow_changes_that_break_the_config_are_refused_with_the_error(config):
    ref = open_case(config, "boss@globex.test", "Contacts", MON)
    # acme.test is Acme's domain: giving it to Globex too would make the plan a coin toss
    engineer(config, ref, "#allow domain acme.test\n\nDone.", "2026-04-20T16:00Z")
    (refused,) = to(config, "alice@helpdesk.test", "Not applied")
    assert "belongs to both" in text(refused)
    assert not (config.parent / "allow.toml").exists()
    assert to(config, "boss@globex.test", "Contacts updated") == []

    engineer(
        config, ref, "#allow domain globex.de\n#allow remove boss@globex.test", "2026-04-20T16:05Z"
    )
    loaded = configuration.load(config).customers[1]
    assert "globex.de" in loaded.domains and "boss@globex.test" not in loaded.addresses


# -- 7. fair use ----------------------------------------------------------------------------


def test_fair_use_flags_a_customer_far_above_the_median(config):
    config.write_text(
        config.read_text().replace("survey = true\n", "survey = true\nfair_use_cap = 2\n", 1)
    )
    plan = {"acme.test": 24, "globex.test": 3, "initech.test": 2}
    for domain, count in plan.items():
        for n in range(count):
            sender = "boss@globex.test" if domain == "globex.test" else f"user{n}@{domain}"
            open_case(config, sender, f"Question {n}", f"2026-04-{1 + n:02d}T15:00:00Z")
    flags = json.loads(
        run(
            config,
            "report",
            "--since",
            "2026-04-01",
            "--until",
            "2026-05-01",
            "--format",
            "json",
            "--part",
            "fair-use",
        )
    )
    assert [(f["customer"], f["cases"], f["median"], f["why"]) for f in flags] == [
        ("Acme", 24, 3, "8.0x the median"),
        ("Globex", 3, 3, "over the standard plan's cap of 2"),
    ]
    table = run(config, "report", "--since", "2026-04-01", "--until", "2026-05-01")
    assert "Fair use" in table and "8.0x the median" in table


# -- 8. the monthly service report ------------------------------------------------------------

APRIL = {
    "opened": 3,
    "closed": 1,
    "clocks": ["first_response", "resolution"],
    # C1 answered after 1h, C2 after 6h; C1 resolved after 10 working hours
    "first_response": {
        "met": 1,
        "judged": 3,
        "percent": 33.3,
        "median_minutes": 210.0,
        "mean_minutes": 210.0,
    },
    "resolution": {
        "met": 1,
        "judged": 2,
        "percent": 50.0,
        "median_minutes": 600,
        "mean_minutes": 600.0,
    },
    "escalated": 2,
    "ratings": 1,
    "satisfaction": 5,
    "time_minutes": 90,
}


def test_the_monthly_report_carries_the_customers_figures(config):
    """Globex's April 2026, on the standard plan (Chicago, Mon-Fri 08-17; P3: first response
    1d = 9 working hours, resolution 20d; P2: 4h and 5d), worked out by hand:

    C1  Mon 6th 09:00, P3: answered 10:00 (met), resolved Tue 7th (met), rated 5, closed Wed 8th
    C2  Mon 13th 09:00, P2: due 13:00, answered 15:00 (missed); escalated by the customer;
        resolution due Mon 20th 09:00, not resolved (missed)
    C3  Mon 20th 09:00, P3: due Tue 21st 09:00, no answer (missed); resolution due 18 May
        (running, so not judged); escalated by the scheduler when it breached

    Opened 3, closed 1, first response met 1 of 3, resolution met 1 of 2, escalated 2 (C2, C3),
    one rating of 5. The report is due Friday 1 May at 08:00 Chicago time.
    """
    boss = "boss@globex.test"
    c1 = open_case(config, boss, "Printer jam", "2026-04-06T09:00:00-05:00")
    engineer(config, c1, "#time 1h30m\n\nOpen the tray.", "2026-04-06T10:00:00-05:00")
    engineer(config, c1, "#resolve", "2026-04-07T10:00:00-05:00")
    customer(config, c1, "5\nThanks!", "2026-04-07T11:00:00-05:00", sender=boss)
    engineer(config, c1, "#close", "2026-04-08T10:00:00-05:00")
    c2 = open_case(config, boss, "urgent: invoices wrong", "2026-04-13T09:00:00-05:00")
    engineer(config, c2, "Looking.", "2026-04-13T15:00:00-05:00")
    customer(config, c2, "#escalate this is taking too long", "2026-04-14T09:00:00-05:00", boss)
    open_case(config, boss, "Question", "2026-04-20T09:00:00-05:00")

    assert [
        a for a in sweep(config, "2026-05-01T07:59:00-05:00") if a["action"] == "monthly_report"
    ] == []
    reports = {
        a["customer"]: a
        for a in sweep(config, "2026-05-01T08:00:00-05:00")
        if a["action"] == "monthly_report"
    }
    assert set(reports) == {"Acme", "Globex", "Initech"}
    globex = reports["Globex"]
    assert (globex["month"], globex["figures"]) == ("2026-04", APRIL)
    assert globex["to"] == ["boss@globex.test", "deputy@globex.test"]

    (mailed,) = to(config, "deputy@globex.test", "Monthly service report")
    plain = text(mailed)
    for line in [
        "Cases opened:        3",
        "Cases closed:        1",
        "Escalated cases:     2",
        "First response met:  33.3% (1 of 3); median 3h 30m, mean 3h 30m",
        "Resolution met:      50.0% (1 of 2); median 10h, mean 10h",
        "Satisfaction:        5 of 5 (1 rating)",
        "Time spent:          1h30m",
    ]:
        assert line in plain, plain
    html = mailed.get_body(("html",)).get_content()
    assert "width: 33%" in html and "width: 50%" in html and "<img" not in html
    # once a month, however often the sweep runs
    assert [
        a for a in sweep(config, "2026-05-01T09:00:00-05:00") if a["action"] == "monthly_report"
    ] == []
    assert len(to(config, "deputy@globex.test", "Monthly service report")) == 1


# -- the survey's pure parts, and a rating recorded as the status page will --------------------


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("5", (5, "")),
        (" 4 \n\nQuick and kind.\n", (4, "Quick and kind.")),
        ("3/5\nOK", (3, "OK")),
        ("1.", (1, "")),
        ("6", None),
        ("0", None),
        ("5 reports are empty", None),
        ("Thanks!\n5", None),
        ("", None),
    ],
)
def test_what_counts_as_a_rating(body, found):
    assert survey.rating_of(body) == found


def test_a_rating_needs_a_survey_and_a_score_from_1_to_5():
    case = sample_case(status="resolved")
    now = datetime(2026, 4, 20, tzinfo=UTC)
    with pytest.raises(ValueError, match="has not been sent a survey"):
        survey.rate(case, 5, "", "jane@acme.test", now)
    asked = survey.asked(case)
    with pytest.raises(ValueError, match="from 1 to 5"):
        survey.rate(asked, 6, "", "jane@acme.test", now)
    assert survey.rate(asked, 2, " slow ", "jane@acme.test", now).comment == "slow"


def test_a_rating_from_the_status_page_is_one_call_to_the_core_and_one_to_the_store(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    engineer(config, ref, "#resolve\n\nFixed.", "2026-04-20T11:00Z")
    store = store_of(config)
    case = Cases(store).get(ref)
    Ratings(store).record(survey.rate(case, 3, "Fine.", "jane@acme.test", datetime.now(UTC)))
    assert store.row("SELECT score, comment FROM ratings") == {"score": 3, "comment": "Fine."}
    (event,) = [e for e in Cases(store).events(case.id) if e["kind"] == "rating"]
    assert event["detail"] == "3 of 5 by jane@acme.test with a comment"
    assert show(config, ref)["status"] == "resolved"


def test_a_late_rating_of_a_closed_case_opens_no_new_case(config):
    ref = open_case(config, "jane@acme.test", "Reports are empty", MON)
    engineer(config, ref, "#close\n\nDone.", "2026-04-20T11:00Z")
    out = customer(config, ref, "5", "2026-05-20T11:00Z")  # long after the 5-day reopen window
    assert "a rating of the closed case" in out
    assert [c["reference"] for c in json.loads(run(config, "cases", "--json"))] == [ref]
    assert show(config, ref)["status"] == "closed"


def test_announce_names_what_it_does_not_know(config):
    body = config.parent / "body.txt"
    body.write_text("Hello.\n")
    common = ["announce", "--subject", "S"]
    code, _, err = call(config, *common, "--body", str(body), "--customers", "Umbrella")
    assert (code, err) == (
        64,
        "helpdeskd: no customer 'Umbrella' (customers: Acme, Globex, Initech)\n",
    )
    code, _, err = call(config, *common, "--body", str(body), "--plans", "platinum")
    assert code == 64 and "no plan 'platinum'" in err
    code, _, err = call(config, *common, "--body", str(config.parent / "nope.txt"))
    assert code == 66 and "cannot read the body" in err
    assert sent(config) == []


def test_no_monthly_report_for_a_month_before_the_first_case(config):
    """A helpdesk started on 1 May has nothing to report for April: no mail, now or later."""
    assert [a for a in sweep(config, "2026-05-01T08:00:00-05:00")] == []
    open_case(config, "boss@globex.test", "First", "2026-05-04T09:00:00-05:00")
    assert [
        a for a in sweep(config, "2026-05-04T10:00:00-05:00") if a["action"] == "monthly_report"
    ] == []
    assert not [m for m in sent(config) if "Monthly service report" in str(m["Subject"])]
