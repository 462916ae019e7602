"""The verdict rules, pure: DMARC records, alignment, policy, and the header that records it.
No DNS: the organisational domain is the adapter's public-suffix lookup, which reads no network."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.authres import organisational_domain
from helpdeskd.core.authres import (
    DmarcRecord,
    Result,
    Verdict,
    aligned,
    dmarc_records,
    dmarc_result,
    header_value,
    parse_dmarc,
    read,
    topmost,
)
from helpdeskd.core.classify import sender_of
from helpdeskd.core.parse import parse
from tests.support import mail, write_config

ORG = organisational_domain
REJECT = DmarcRecord("reject", None, strict_dkim=False, strict_spf=False)


def test_a_dmarc_record_is_read_with_its_policies_and_alignment_modes():
    record = parse_dmarc("v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; rua=mailto:x@y")
    assert record == DmarcRecord("quarantine", "reject", strict_dkim=True, strict_spf=False)
    assert parse_dmarc("v=DMARC1;p=none") == DmarcRecord("none", None, False, False)


@pytest.mark.parametrize(
    "text",
    ["p=reject; v=DMARC1", "v=DMARC1", "v=DMARC1; p=bogus", "v=spf1 -all", "", "v=DMARC2; p=none"],
)
def test_what_is_not_a_usable_dmarc_record(text: str):
    assert parse_dmarc(text) is None


def test_two_dmarc_records_are_as_good_as_none():
    assert dmarc_records(["v=DMARC1; p=reject", "v=DMARC1; p=none"]) == (None, True)
    assert dmarc_records(["v=spf1 -all", "v=DMARC1; p=reject"]) == (REJECT, False)


def test_organisational_domains_follow_the_public_suffix_list():
    assert ORG("mail.example.com") == "example.com"
    assert ORG("a.b.victim.co.uk") == "victim.co.uk"
    # relaxed alignment never joins two registrants of one public suffix
    assert not aligned("attacker.co.uk", "victim.co.uk", False, ORG)
    assert aligned("mail.acme.test", "acme.test", False, ORG)
    assert not aligned("mail.acme.test", "acme.test", True, ORG)


def dkim(result: str, domain: str) -> Result:
    return Result("dkim", result, domain, "sel")


def spf(result: str, domain: str) -> Result:
    return Result("spf", result, domain)


def test_an_aligned_signature_passes_dmarc():
    found = dmarc_result(
        "acme.test",
        REJECT,
        "acme.test",
        (dkim("pass", "acme.test"),),
        spf("fail", "acme.test"),
        ORG,
    )
    assert (found.result, found.detail) == ("pass", "p=reject")


def test_spf_alone_passes_when_aligned():
    quarantine = replace(REJECT, policy="quarantine")
    found = dmarc_result(
        "globex.test", quarantine, "globex.test", (), spf("pass", "globex.test"), ORG
    )
    assert found.result == "pass"


def test_valid_but_unaligned_results_fail_with_the_domains_policy():
    found = dmarc_result(
        "helpdesk.test",
        REJECT,
        "helpdesk.test",
        (dkim("pass", "evil.test"),),
        spf("pass", "evil.test"),
        ORG,
    )
    assert (found.result, found.detail) == ("fail", "p=reject")


def test_a_subdomain_gets_the_organisations_subdomain_policy():
    record = DmarcRecord("reject", "none", False, False)
    found = dmarc_result("sub.acme.test", record, "acme.test", (), spf("none", ""), ORG)
    assert (found.result, found.detail) == ("fail", "p=none")


def test_dns_trouble_is_temporary_never_a_pass_nor_a_fail():
    found = dmarc_result(
        "acme.test", REJECT, "acme.test", (dkim("temperror", "acme.test"),), spf("fail", "x"), ORG
    )
    assert found.result == "temperror"
    assert not Verdict((dkim("temperror", "acme.test"), found), "acme.test").proven


def test_no_record_is_dmarc_none():
    assert dmarc_result(
        "acme.test", None, "acme.test", (), spf("pass", "acme.test"), ORG
    ).result == ("none")


def test_what_proves_a_sender():
    assert Verdict((Result("dmarc", "pass", "acme.test"),), "acme.test").proven
    assert Verdict((dkim("pass", "mail.acme.test"),), "acme.test").proven
    assert not Verdict((dkim("pass", "evil.test"), spf("pass", "acme.test")), "acme.test").proven
    # a pass for some other From domain proves nothing about this one
    assert not Verdict((Result("dmarc", "pass", "evil.test"),), "acme.test").proven


def test_the_header_we_write_reads_back_as_the_same_verdict():
    verdict = Verdict(
        (
            dkim("pass", "acme.test"),
            spf("softfail", "acme.test"),
            Result("dmarc", "pass", "acme.test", "p=reject"),
        ),
        "acme.test",
    )
    value = header_value("helpdesk.test", verdict)
    assert value.startswith("helpdesk.test;\r\n\tdkim=pass header.d=acme.test header.s=sel;")
    assert "dmarc=pass (p=reject) header.from=acme.test" in value
    back = read(value, "acme.test")
    assert [(r.method, r.result, r.domain) for r in back.results] == [
        (r.method, r.result, r.domain) for r in verdict.results
    ]
    assert back.summary() == "dkim=pass (acme.test) spf=softfail (acme.test) dmarc=pass (acme.test)"


def forged(*values: str):
    message = mail("jane@acme.test", "Help", "text")
    for value in values:
        message["Authentication-Results"] = value
    return parse(message.as_bytes())


def test_only_the_topmost_header_of_the_trusted_id_is_read():
    inbound = forged(
        "mx.other.test; dmarc=pass header.from=acme.test",
        "MX.Helpdesk.test; dmarc=fail header.from=acme.test",
        "mx.helpdesk.test; dmarc=pass header.from=acme.test",  # further down: the forger's
    )
    assert "dmarc=fail" in topmost(inbound, "mx.helpdesk.test")
    assert topmost(inbound, None) is None
    assert topmost(inbound, "nobody.test") is None


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    loaded = configuration.load(write_config(tmp_path_factory.mktemp("authres")))
    policy = replace(loaded.policy, trust_unauthenticated_engineers=False)
    return replace(loaded, policy=policy)


def test_our_own_verdict_wins_over_any_header_the_mail_brings(config):
    inbound = forged("helpdesk.test; dmarc=pass header.from=helpdesk.test")
    inbound = replace(inbound, from_addr="alice@helpdesk.test")
    failed = Verdict((Result("dmarc", "fail", "helpdesk.test", "p=reject"),), "helpdesk.test")
    sender = sender_of(inbound, config, date(2026, 11, 18), failed)
    assert (sender.role, sender.proven) == ("engineer", False)
    assert sender.proof == "dmarc=fail (helpdesk.test)"


def test_a_verdict_for_another_from_domain_proves_nothing(config):
    inbound = replace(forged(), from_addr="alice@helpdesk.test")
    other = Verdict((Result("dmarc", "pass", "evil.test"),), "evil.test")
    assert not sender_of(inbound, config, date(2026, 11, 18), other).proven


@pytest.mark.parametrize(
    ("value", "policy"),
    [
        ("mx.test; dmarc=fail (p=reject dis=reject) header.from=acme.test", "p=reject"),
        ("mx.test; dmarc=fail (p=QUARANTINE sp=none) header.from=acme.test", "p=quarantine"),
        ("mx.test; dmarc=fail policy.dmarc=reject header.from=acme.test", "p=reject"),
        ("mx.test; dmarc=fail header.from=acme.test (policy=quarantine)", "p=quarantine"),
        ("mx.test; dmarc=fail (p=none dis=none) header.from=acme.test", "p=none"),
        ("mx.test; dmarc=fail (sp=reject) header.from=acme.test", ""),
        ("mx.test; dmarc=fail header.from=acme.test", ""),
    ],
)
def test_a_trusted_header_names_the_policy_a_failing_mail_was_held_to(value: str, policy: str):
    (found,) = read(value, "acme.test").of("dmarc")
    assert (found.result, found.domain, found.detail) == ("fail", "acme.test", policy)


def test_a_mail_fails_an_enforcing_policy_only_on_dmarc_fail_of_its_own_domain():
    def verdict(*results: Result) -> Verdict:
        return Verdict(results, "acme.test")

    assert verdict(Result("dmarc", "fail", "acme.test", "p=reject")).refused == "p=reject"
    assert verdict(Result("dmarc", "fail", "acme.test", "p=quarantine")).refused == "p=quarantine"
    # behind an MTA that does not say the policy, its dmarc=fail is enough
    assert verdict(Result("dmarc", "fail", "acme.test")).refused == "policy not given"
    assert verdict(Result("dmarc", "fail", "acme.test", "p=none")).refused is None
    assert verdict(Result("dmarc", "none", "acme.test")).refused is None
    assert verdict(Result("dmarc", "temperror", "acme.test", "p=reject")).refused is None
    assert verdict(Result("dmarc", "fail", "other.test", "p=reject")).refused is None
