"""helpdeskd as the first hop: it checks DKIM, SPF and DMARC itself against a real DNS server on
127.0.0.1, and an engineer's mail applies only when proven. Each forgery is sent to the real
listener with smtplib and must apply nothing, relay nothing, and tell the engineer once."""

from __future__ import annotations

import email
import email.policy
import json
import smtplib
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.authres import Checker
from helpdeskd.adapters.store import Cases, Store
from helpdeskd.config import Authentication
from helpdeskd.pipeline import process
from tests.dnszone import DnsServer, Zone, dkim_key
from tests.support import (
    Daemon,
    Sink,
    cli,
    free_port,
    mail,
    run_in_process,
    sample_case,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CUSTOMER = "jane@acme.test"
ENGINEER = "alice@helpdesk.test"
KEYS = {domain: dkim_key() for domain in ("helpdesk.test", "acme.test", "evil.test")}
OUTSIDE = "192.0.2.10"  # where the engineers' and Acme's real mail servers send from


def records() -> dict[str, str]:
    return {
        **{f"sel._domainkey.{d}": public for d, (_, public) in KEYS.items()},
        "helpdesk.test": f"v=spf1 ip4:{OUTSIDE} -all",
        "_dmarc.helpdesk.test": "v=DMARC1; p=reject",
        "acme.test": f"v=spf1 ip4:{OUTSIDE} -all",
        "_dmarc.acme.test": "v=DMARC1; p=reject; adkim=s",
        # Globex signs nothing, but its SPF names the client the tests connect from
        "globex.test": "v=spf1 ip4:127.0.0.1 -all",
        "_dmarc.globex.test": "v=DMARC1; p=quarantine",
        "evil.test": "v=spf1 ip4:127.0.0.1 -all",
    }


@pytest.fixture
def zone():
    zone = Zone(records())
    with DnsServer(zone) as server:
        zone.port = server.port
        yield zone


@pytest.fixture
def first_hop(tmp_path: Path, sink: Sink, zone: Zone):
    """The daemon as the MX: its own check, engineers not trusted blindly, customers required
    to pass DMARC (the first hop's default), and an MTA's authserv-id that must not count."""
    port = free_port()
    config = write_config(
        tmp_path,
        smtp_port=port,
        relay_port=sink.port,
        extra=(
            f'\n[authentication]\ndns_servers = ["127.0.0.1"]\ndns_port = {zone.port}\n'
            "dns_timeout = 1.5\n"
        ),
    )
    text = config.read_text()
    text = text.replace("first_hop = false", "first_hop = true")
    text = text.replace(
        "trust_unauthenticated_engineers = true",
        'trust_unauthenticated_engineers = false\ntrusted_authserv_id = "mx.helpdesk.test"',
    )
    config.write_text(text)
    with Daemon(config, port) as running:
        yield running


def signed(message, domain: str, *, selector: bytes = b"sel") -> bytes:
    raw = message.as_bytes(policy=email.policy.SMTP)
    signature = dkim.sign(raw, selector, domain.encode(), KEYS[domain][0])
    return signature + raw


def submit(daemon: Daemon, raw: bytes, mail_from: str) -> None:
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as smtp:
        smtp.ehlo("client.test")
        smtp.sendmail(mail_from, ["support@helpdesk.test"], raw)


def show(daemon: Daemon, reference: str) -> dict:
    return show_at(daemon.config, reference)


def to(address: str, subject_part: str = ""):
    return lambda m: address in str(m["To"]) and subject_part in str(m["Subject"])


def open_case(daemon: Daemon, sink: Sink) -> tuple[str, object]:
    """Jane's mail, signed by Acme: a proven customer."""
    message = mail(f"Jane <{CUSTOMER}>", "Reports are empty", "Every report is empty.")
    submit(daemon, signed(message, "acme.test"), CUSTOMER)
    found = sink.wait_for(to(ENGINEER, "New case"))
    assert found, [str(m["Subject"]) for m in sink.received]
    notification = found[-1]
    return str(notification["Subject"]).split("]")[0].lstrip("["), notification


def reply(notification, body: str, sender: str = ENGINEER):
    return mail(
        f"Alice Engineer <{sender}>",
        f"Re: {notification['Subject']}",
        body,
        in_reply_to=notification["Message-ID"],
    )


COMMANDS = "#priority P1\n#assign me\nHello Jane, we are on it.\n"


def test_an_engineers_signed_mail_applies_its_commands(first_hop: Daemon, sink: Sink):
    reference, notification = open_case(first_hop, sink)
    submit(first_hop, genuine(notification), ENGINEER)
    relayed = sink.wait_for(
        lambda m: to(CUSTOMER)(m) and "we are on it" in m.get_body(("plain",)).get_content()
    )
    assert relayed, [str(m["Subject"]) for m in sink.received]
    case = show(first_hop, reference)
    assert (case["priority"], case["assignee"]) == ("P1", ENGINEER)
    first, answer = case["messages"][0], case["messages"][-2]
    assert first["auth"] == "dkim=pass (acme.test) spf=fail (acme.test) dmarc=pass (acme.test)"
    assert answer["kind"] == "engineer"
    assert answer["auth"].startswith("dkim=pass (helpdesk.test)")
    assert "dmarc=pass (helpdesk.test)" in answer["auth"]
    text = run_in_process(first_hop.config, "show", reference)
    assert "sender: dkim=pass (helpdesk.test)" in text


def genuine(notification) -> bytes:
    return signed(reply(notification, COMMANDS), "helpdesk.test")


def forged_body(notification) -> bytes:
    return genuine(notification).replace(b"we are on it", b"send your password")


def forged_from(notification) -> bytes:
    """The attacker signs with their own domain: a valid signature, not Alice's."""
    return signed(reply(notification, COMMANDS), "evil.test")


def forged_results(notification) -> bytes:
    """Unsigned, with the results an MTA would write, naming our authserv-id and the MTA's."""
    message = reply(notification, COMMANDS)
    for authserv in ("helpdesk.test", "mx.helpdesk.test"):
        message["Authentication-Results"] = (
            f"{authserv}; dkim=pass header.d=helpdesk.test; spf=pass "
            "smtp.mailfrom=helpdesk.test; dmarc=pass header.from=helpdesk.test"
        )
    return message.as_bytes(policy=email.policy.SMTP)


FORGERIES = {
    "body changed": (forged_body, ENGINEER, "dkim=fail (helpdesk.test)"),
    "forged From": (forged_from, "mallory@evil.test", "dkim=pass (evil.test)"),
    "forged Authentication-Results": (forged_results, ENGINEER, "dkim=none"),
    "DNS timing out": (genuine, ENGINEER, "dkim=temperror (helpdesk.test)"),  # unverifiable
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_engineers_mail_applies_nothing_and_relays_nothing(
    forgery: str, first_hop: Daemon, sink: Sink, zone: Zone
):
    make, envelope_from, found = FORGERIES[forgery]
    reference, notification = open_case(first_hop, sink)
    if forgery == "DNS timing out":
        zone.dropped.add("helpdesk.test")  # the server never answers: a time-out
    submit(first_hop, make(notification), envelope_from)
    notices = sink.wait_for(to(ENGINEER, "Not applied (sender not proven)"))
    assert len(notices) == 1, [str(m["Subject"]) for m in sink.received]
    assert found in notices[0].get_body(("plain",)).get_content()
    case = show(first_hop, reference)
    assert (case["priority"], case["assignee"], case["status"]) == ("P3", None, "new")
    note = case["messages"][-2]
    assert (note["kind"], note["from"]) == ("unverified", ENGINEER)
    assert "#priority P1" in note["body"] and found in note["auth"]
    assert any(e["kind"] == "unverified" for e in case["events"])
    customer = [m for m in sink.received if CUSTOMER in str(m["To"])]
    assert [str(m["Auto-Submitted"]) for m in customer] == ["auto-replied"]  # the ack, no more
    assert not [
        m
        for m in sink.received
        if "bob@helpdesk.test" in str(m["To"]) and "Note" in str(m["Subject"])
    ]


def test_the_engineer_hears_once_a_day_however_many_forgeries(first_hop: Daemon, sink: Sink):
    reference, notification = open_case(first_hop, sink)
    submit(first_hop, forged_from(notification), "mallory@evil.test")
    assert sink.wait_for(to(ENGINEER, "Not applied"))
    submit(first_hop, forged_results(notification), ENGINEER)
    # the second forgery is on the case once it is processed; only then count the notices
    for _ in range(100):
        if len(show(first_hop, reference)["messages"]) >= 6:
            break
    kinds = [m["kind"] for m in show(first_hop, reference)["messages"] if m["direction"] == "in"]
    assert kinds == ["customer", "unverified", "unverified"]
    assert len(sink.to(ENGINEER, "Not applied")) == 1


def test_a_customer_domain_with_p_reject_and_a_failing_mail_is_an_unknown_sender(
    first_hop: Daemon, sink: Sink
):
    """Acme asks for forgeries to be refused: an unsigned mail from elsewhere in its name is
    served as an unknown sender, and show, the engineers and `status` are told."""
    message = mail(f"Jane <{CUSTOMER}>", "Pay this invoice", "Unsigned, from elsewhere.")
    submit(first_hop, message.as_bytes(policy=email.policy.SMTP), CUSTOMER)
    ack = sink.wait_for(to(CUSTOMER, "Pay this invoice"))
    assert ack
    reference = str(ack[0]["Subject"]).split("]")[0].lstrip("[")
    case = show(first_hop, reference)
    assert (case["customer"], case["plan"]) == (None, "standard")
    opened = case["messages"][0]
    assert "domain of Acme demoted: dmarc=fail (p=reject)" in opened["route_reason"]
    assert "dmarc=fail (acme.test)" in opened["auth"]
    text = run_in_process(first_hop.config, "show", reference)
    assert "demoted: dmarc=fail (p=reject)" in text
    (notification,) = sink.wait_for(lambda m: f"[{reference}] New case" in str(m["Subject"]))
    lines = notification.get_body(("plain",)).get_content().splitlines()
    demoted = [line for line in lines if "demoted" in line.lower()]
    assert len(demoted) == 1 and "Acme" in demoted[0] and "p=reject" in demoted[0], lines
    status = json.loads(run_in_process(first_hop.config, "status", "--json"))
    assert status["demoted"]["count"] == 1
    assert any("demoted" in w for w in status["warnings"]), status["warnings"]


SMALLCO = '\n[[customers]]\nname = "Smallco"\ndomains = ["small.test"]\nplan = "gold"\n'


def spec_config(tmp_path: Path, zone: Zone, port: int, relay_port: int) -> Path:
    """A configuration as SPEC writes it: the listener enabled and the first hop (the default),
    no require_dmarc_pass key, engineers not trusted blindly. Smallco publishes no DMARC."""
    config = write_config(
        tmp_path,
        smtp_port=port,
        relay_port=relay_port,
        extra=SMALLCO
        + f'\n[authentication]\ndns_servers = ["127.0.0.1"]\ndns_port = {zone.port}\n',
    )
    text = config.read_text().replace("first_hop = false\n", "")
    config.write_text(text.replace("trust_unauthenticated_engineers = true", ""))
    return config


def test_a_customer_without_dmarc_is_served_on_its_plan_at_every_entrance(
    tmp_path: Path, sink: Sink, zone: Zone
):
    port = free_port()
    config = spec_config(tmp_path, zone, port, sink.port)
    ann = "ann@small.test"

    def raw(sender: str, subject: str) -> bytes:
        return mail(sender, subject, "Help.").as_bytes(policy=email.policy.SMTP)

    # `ingest` and a mailbox are not the first hop: nothing checks them, nothing demotes
    assert cli(config, "ingest", stdin=raw(ann, "Through ingest")).returncode == 0
    assert cli(config, "ingest", stdin=raw(CUSTOMER, "Acme through ingest")).returncode == 0
    loaded = configuration.load(config)
    store = Store.open(loaded.helpdesk.database)
    spool_id, _ = store.spool(raw(ann, "Through a mailbox"), source="imap:inbox", now=NOW)
    process(store, loaded, store.spool_item(spool_id), NOW)
    # the listener is the first hop: its own check finds no DMARC record, so nothing refused
    with Daemon(config, port) as daemon:
        submit(daemon, raw(ann, "Through the listener"), ann)
        assert sink.wait_for(to(ann, "Through the listener"))
    served = {
        c["subject"]: (c["customer"], c["plan"])
        for c in json.loads(run_in_process(config, "cases", "--json"))
    }
    assert served == {
        "Through ingest": ("Smallco", "gold"),
        "Acme through ingest": ("Acme", "gold"),
        "Through a mailbox": ("Smallco", "gold"),
        "Through the listener": ("Smallco", "gold"),
    }
    acme = next(
        c for c in json.loads(run_in_process(config, "cases", "--json")) if c["customer"] == "Acme"
    )
    opened = show_at(config, acme["reference"])["messages"][0]
    assert opened["route_reason"] == "new: customer Acme by domain"


def test_require_dmarc_pass_asks_proof_of_every_customer_through_ingest(tmp_path: Path):
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace(
            "trust_unauthenticated_engineers = true",
            'require_dmarc_pass = true\ntrusted_authserv_id = "mx.helpdesk.test"',
        )
    )
    unsigned = mail(CUSTOMER, "Unsigned", "Help.")
    assert cli(config, "ingest", stdin=unsigned.as_bytes()).returncode == 0
    signed = mail(CUSTOMER, "Signed", "Help.")
    signed["Authentication-Results"] = "mx.helpdesk.test; dkim=pass header.d=acme.test"
    assert cli(config, "ingest", stdin=signed.as_bytes()).returncode == 0
    cases = {c["subject"]: c for c in json.loads(run_in_process(config, "cases", "--json"))}
    assert (cases["Signed"]["customer"], cases["Signed"]["plan"]) == ("Acme", "gold")
    assert (cases["Unsigned"]["customer"], cases["Unsigned"]["plan"]) == (None, "standard")
    opened = show_at(config, cases["Unsigned"]["reference"])["messages"][0]
    assert "domain of Acme demoted: without dmarc=pass" in opened["route_reason"]


def test_spf_aligned_dmarc_pass_without_dkim_for_a_p_quarantine_domain(
    first_hop: Daemon, sink: Sink
):
    boss = "boss@globex.test"
    message = mail(f"The Boss <{boss}>", "VPN is slow", "Since Monday.")
    submit(first_hop, message.as_bytes(policy=email.policy.SMTP), boss)
    ack = sink.wait_for(to(boss, "VPN is slow"))
    assert ack
    case = show(first_hop, str(ack[0]["Subject"]).split("]")[0].lstrip("["))
    assert case["customer"] == "Globex"
    assert case["messages"][0]["auth"] == (
        "dkim=none spf=pass (globex.test) dmarc=pass (globex.test)"
    )


def test_results_are_cached_for_their_ttl(first_hop: Daemon, sink: Sink, zone: Zone):
    open_case(first_hop, sink)
    asked = zone.count()
    assert asked >= 3  # the key, SPF and DMARC of acme.test
    again = mail(f"Jane <{CUSTOMER}>", "Another thing", "Exports too.")
    submit(first_hop, signed(again, "acme.test"), CUSTOMER)
    assert sink.wait_for(to(CUSTOMER, "Another thing"))
    assert zone.count() == asked, zone.queries


def test_the_stored_message_carries_our_authentication_results(
    first_hop: Daemon, sink: Sink, tmp_path: Path
):
    open_case(first_hop, sink)
    from helpdeskd.adapters.store import Store

    store = Store(tmp_path / "helpdesk.db")
    row = store.row("SELECT raw, peer_ip, helo, auth_results FROM spool ORDER BY id LIMIT 1")
    stored = email.message_from_bytes(row["raw"], policy=email.policy.default)
    assert (row["peer_ip"], row["helo"]) == ("127.0.0.1", "client.test")
    top = str(stored.get_all("Authentication-Results")[0])
    assert top.startswith("helpdesk.test;") and "dmarc=pass" in top
    assert row["auth_results"].startswith("helpdesk.test;")


def test_ingest_as_the_first_hop_checks_for_itself(tmp_path: Path, zone: Zone):
    """Mail piped in by an MTA that checked nothing: a forged header naming the MTA's
    authserv-id counts for nothing, a real signature does."""
    config = write_config(
        tmp_path,
        extra=(
            f'\n[authentication]\ndns_servers = ["127.0.0.1"]\ndns_port = {zone.port}\n'
            "ingest_first_hop = true\n"
        ),
    )
    config.write_text(
        config.read_text().replace(
            "trust_unauthenticated_engineers = true", 'trusted_authserv_id = "mx.helpdesk.test"'
        )
    )
    opened = mail(f"Jane <{CUSTOMER}>", "Printer", "It jams.")
    assert cli(config, "ingest", stdin=signed(opened, "acme.test")).returncode == 0
    reference = json.loads(run_in_process(config, "cases", "--json"))[0]["reference"]
    answer = mail(ENGINEER, f"Re: [{reference}] Printer", "#priority P2\nTry tray 2.\n")
    answer["Authentication-Results"] = "mx.helpdesk.test; dmarc=pass header.from=helpdesk.test"
    forged = answer.as_bytes(policy=email.policy.SMTP)
    dry = json.loads(run_in_process(config, "ingest", "--dry-run", stdin=forged))
    assert dry["authentication"] == "dkim=none dmarc=fail (helpdesk.test)"
    assert cli(config, "ingest", stdin=forged).returncode == 0
    assert show_at(config, reference)["priority"] == "P3"
    del answer["Authentication-Results"]
    del answer["Message-ID"]
    answer["Message-ID"] = "<second@helpdesk.test>"
    assert cli(config, "ingest", stdin=signed(answer, "helpdesk.test")).returncode == 0
    case = show_at(config, reference)
    assert case["priority"] == "P2"
    assert [m["kind"] for m in case["messages"] if m["direction"] == "in"] == [
        "customer",
        "unverified",
        "engineer",
    ]


def show_at(config: Path, reference: str) -> dict:
    return json.loads(run_in_process(config, "show", reference, "--json"))


# -- the check itself, in-process against the same DNS server ---------------------------------


def checker(zone: Zone, timeout: float = 1.5) -> Checker:
    return Checker(Authentication("helpdesk.test", ("127.0.0.1",), zone.port, timeout))


def test_broken_signatures_and_records_are_permanent_errors_not_crashes(zone: Zone):
    zone.records["sel._domainkey.broken.test"] = "v=DKIM1; k=rsa; p=not-base64!"
    zone.records["broken.test"] = "v=spf1 ip4:not-an-address -all"
    zone.records["_dmarc.broken.test"] = "v=DMARC1; p=reject"
    raw = mail("x@broken.test", "Hi", "text").as_bytes(policy=email.policy.SMTP)
    garbage = b"DKIM-Signature: v=1; a=rsa-sha256; d=broken.test; s=sel; b=AAAA; bh=AAAA\r\n"
    verdict = checker(zone).check(garbage + raw, "broken.test", "127.0.0.1", "h", "x@broken.test")
    # a signature without its h= tag is refused by dkimpy as invalid: fail, not a crash
    assert [r.result for r in verdict.results] == ["fail", "permerror", "fail"]
    assert not verdict.proven


def test_a_subdomain_falls_back_to_its_organisations_record(zone: Zone):
    raw = mail("ops@eu.acme.test", "Hi", "text").as_bytes(policy=email.policy.SMTP)
    verdict = checker(zone).check(signed_raw(raw, "acme.test"), "eu.acme.test", None)
    # adkim=s: Acme's own signature does not prove its subdomain
    assert verdict.summary() == "dkim=pass (acme.test) dmarc=fail (eu.acme.test)"
    assert verdict.of("dmarc")[0].detail == "p=reject"
    assert ("_dmarc.eu.acme.test", "TXT") in zone.queries


def signed_raw(raw: bytes, domain: str) -> bytes:
    return dkim.sign(raw, b"sel", domain.encode(), KEYS[domain][0]) + raw


def test_a_dead_resolver_costs_one_time_out_per_message(zone: Zone):
    zone.dropped.add("test")
    raw = mail(ENGINEER, "Hi", "text").as_bytes(policy=email.policy.SMTP)
    started = time.monotonic()
    verdict = checker(zone, timeout=0.5).check(
        signed_raw(raw, "helpdesk.test"), "helpdesk.test", "127.0.0.1", "h", ENGINEER
    )
    assert time.monotonic() - started < 3  # generous: one 0.5 s budget for every lookup
    assert {r.result for r in verdict.results} == {"temperror"}
    assert not verdict.proven


def test_a_name_that_timed_out_is_not_asked_again_for_a_while(zone: Zone):
    zone.dropped.add("test")
    raw = signed_raw(
        mail(ENGINEER, "Hi", "text").as_bytes(policy=email.policy.SMTP), "helpdesk.test"
    )
    check = checker(zone, timeout=0.5)
    for _ in range(4):  # each message spends its time-out on a name not yet known to fail
        check.check(raw, "helpdesk.test", "127.0.0.1", "h", ENGINEER)
    asked = zone.count()
    started = time.monotonic()
    verdicts = [check.check(raw, "helpdesk.test", "127.0.0.1", "h", ENGINEER) for _ in range(5)]
    assert time.monotonic() - started < 0.5  # not one time-out among them
    assert zone.count() == asked, zone.queries
    assert all({r.result for r in v.results} == {"temperror"} for v in verdicts)
    zone.dropped.clear()
    check.troubles.until = {k: 0.0 for k in check.troubles.until}  # TROUBLE_KEPT later
    assert check.check(raw, "helpdesk.test", None).summary().startswith("dkim=pass")


@pytest.mark.parametrize("folded", [b"DKIM-Signature:", b"dkim-signature:"])
def test_unsigned_mail_is_dkim_none_and_signed_mail_is_found_however_written(
    zone: Zone, folded: bytes
):
    raw = mail(ENGINEER, "Hi", "DKIM-Signature: in the body is no signature").as_bytes(
        policy=email.policy.SMTP
    )
    assert checker(zone).check(raw, "helpdesk.test", None).of("dkim")[0].result == "none"
    signed = signed_raw(raw, "helpdesk.test").replace(b"DKIM-Signature:", folded, 1)
    assert checker(zone).check(signed, "helpdesk.test", None).of("dkim")[0].result == "pass"


@pytest.mark.parametrize("bare", [True, False])
def test_a_mailbox_marked_first_hop_believes_no_header_it_brings(tmp_path: Path, bare: bool):
    """The same forged header through an IMAP mailbox: read when the provider is the trusted
    hop, ignored when helpdeskd is the first hop (and its own check finds nothing)."""
    (tmp_path / "secret").write_text("x")
    box = '\n[[imap]]\nname = "inbox"\nhost = "127.0.0.1"\nusername = "u"\n'
    box += 'password_file = "secret"\n'
    path = write_config(tmp_path, extra=box + f"first_hop = {str(bare).lower()}\n")
    path.write_text(
        path.read_text().replace(
            "trust_unauthenticated_engineers = true", 'trusted_authserv_id = "mx.provider.test"'
        )
    )
    config = configuration.load(path)
    store = Store.open(config.helpdesk.database)
    case = Cases(store).save(sample_case(id=None, reference="HD-2026-00007"), None)
    message = mail(ENGINEER, f"Re: [{case.reference}] Help", "#priority P1\nOn it.\n")
    message["Authentication-Results"] = "mx.provider.test; dmarc=pass header.from=helpdesk.test"
    raw = message.as_bytes(policy=email.policy.SMTP)
    spool_id, _ = store.spool(raw, source="imap:inbox", now=NOW)
    if bare:  # no DNS server here: the check must find nothing, quickly
        config = replace_authentication(config, dns_port=free_port(), dns_timeout=0.3)
    process(store, config, store.spool_item(spool_id), NOW)
    priority = Cases(store).get(case.reference).priority
    assert priority == ("P3" if bare else "P1")


NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def replace_authentication(config, **changes):
    settings = replace(config.authentication, dns_servers=("127.0.0.1",), **changes)
    return replace(config, authentication=settings)
