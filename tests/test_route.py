"""Classification and routing, pure: no database, a fixed `now`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from helpdeskd import config as configuration
from helpdeskd.core.classify import classify, dmarc_pass, sender_of
from helpdeskd.core.parse import parse
from helpdeskd.core.route import Candidates, route, tags
from helpdeskd.pipeline import own
from tests.support import mail, sample_case, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return configuration.load(write_config(tmp_path_factory.mktemp("route")))


def inbound(sender: str, subject: str = "Help", body: str = "text", headers=None):
    return parse(mail(sender, subject, body, headers=headers).as_bytes())


@pytest.mark.parametrize(
    "subject",
    [
        "[HD-2026-00042] Help",
        "Re: [HD-2026-00042] Help",
        "RE: AW: [HD-2026-00042] Help",
        "Fwd: SV: TR: Antw: [HD-2026-00042] Help",
        "Re:[HD-2026-00042]Help",
        "Help (HD-2026-00042)",
        "WG: Re: HD-2026-00042 Help",
    ],
)
def test_the_tag_is_found_through_any_prefix(subject: str):
    assert tags(subject, "HD") == ["HD-2026-00042"]


@pytest.mark.parametrize("subject", ["XHD-2026-00042", "HD-2026-0004", "HD-26-00042", "hello"])
def test_what_is_not_a_tag(subject: str):
    assert tags(subject, "HD") == []


def test_address_before_domain_and_authorized_only(config):
    today = NOW.date()
    boss = sender_of(inbound("boss@globex.test"), config, today)
    clerk = sender_of(inbound("clerk@globex.test"), config, today)
    assert (boss.customer, boss.may_open) == ("Globex", True)
    assert (clerk.customer, clerk.may_open) == ("Globex", False)
    assert sender_of(inbound("alice@helpdesk.test"), config, today).role == "engineer"
    assert sender_of(inbound("who@nowhere.test"), config, today).role == "unknown"


def test_an_expired_plan_falls_back_to_the_default_plan(config):
    acme = replace(config.customers[0], plan_expires=date(2026, 1, 31))
    expired = replace(config, customers=(acme, *config.customers[1:]))
    assert sender_of(inbound("jane@acme.test"), expired, date(2026, 1, 31)).plan == "gold"
    assert sender_of(inbound("jane@acme.test"), expired, date(2026, 2, 1)).plan == "standard"


def test_priority_from_keywords(config):
    facts = classify(inbound("jane@acme.test", "Site is down"), config, own(config), NOW.date())
    assert (facts.priority, facts.priority_reason) == ("P1", "keyword 'down'")
    plain = classify(inbound("jane@acme.test", "downtown office"), config, own(config), NOW.date())
    assert plain.priority == "P3"


def decide(config, message, found: Candidates):
    facts = classify(message, config, own(config), NOW.date())
    return route(message, facts, found, config, NOW)


def test_a_tag_from_the_customer_is_a_follow_up(config):
    d = decide(
        config,
        inbound("joe@acme.test", "Re: [HD-2026-00042] Help"),
        Candidates(sample_case(), None),
    )
    assert (d.action, d.reason) == ("follow_up", "tag HD-2026-00042")


def test_a_tag_from_a_stranger_opens_a_new_case_naming_it(config):
    d = decide(
        config,
        inbound("eve@evil.test", "Re: [HD-2026-00042] Help"),
        Candidates(sample_case(), None),
    )
    assert d.action == "new" and d.related == "HD-2026-00042"
    assert "not on the case" in d.reason


def test_in_reply_to_joins_the_case(config):
    d = decide(config, inbound("joe@acme.test"), Candidates(None, sample_case(), "x@y"))
    assert (d.action, d.reason) == ("follow_up", "in-reply-to <x@y>")


def test_the_same_subject_without_tag_is_a_new_case(config):
    assert decide(config, inbound("jane@acme.test", "Help"), Candidates(None, None)).action == "new"


def test_reopen_within_the_window_and_new_case_after(config):
    closed = sample_case(status="closed", closed_at=NOW - timedelta(days=2))
    d = decide(config, inbound("jane@acme.test", "Re: [HD-2026-00042]"), Candidates(closed, None))
    assert d.action == "reopen"
    old = sample_case(status="closed", closed_at=NOW - timedelta(days=30))
    d = decide(config, inbound("jane@acme.test", "Re: [HD-2026-00042]"), Candidates(old, None))
    assert (d.action, d.related) == ("new", "HD-2026-00042")


def test_unknown_sender_policies(config):
    message = inbound("who@nowhere.test")
    for policy, action in [("standard", "new"), ("reject", "reject"), ("ignore", "ignore")]:
        changed = replace(config, policy=replace(config.policy, unknown_sender=policy))
        assert decide(changed, message, Candidates(None, None)).action == action


def test_auto_generated_mail_that_threads_nowhere_is_kept(config):
    message = inbound("jane@acme.test", "Out of Office", headers={"Auto-Submitted": "auto-replied"})
    d = decide(config, message, Candidates(None, None))
    assert d.action == "keep" and "auto-generated" in d.reason


def test_an_alert_from_a_customer_opens_sample_case(config):
    message = inbound("monitor@acme.test", "CPU high", headers={"Auto-Submitted": "auto-generated"})
    assert decide(config, message, Candidates(None, None)).action == "new"


def test_the_new_case_rate_limit(config):
    d = decide(config, inbound("jane@acme.test"), Candidates(None, None, None, 20))
    assert d.action == "keep" and "rate limit" in d.reason


def test_dmarc_is_read_from_the_trusted_authserv_id_only(config):
    strict = replace(
        config,
        policy=replace(
            config.policy, require_dmarc_pass=True, trusted_authserv_id="mx.helpdesk.test"
        ),
    )
    forged = inbound(
        "jane@acme.test",
        headers={"Authentication-Results": "mx.attacker.test; dmarc=pass header.from=acme.test"},
    )
    passed = inbound(
        "jane@acme.test",
        headers={
            "Authentication-Results": "mx.helpdesk.test; spf=fail; dmarc=pass header.from=acme.test"
        },
    )
    dkim = inbound(
        "jane@acme.test",
        headers={"Authentication-Results": "mx.helpdesk.test; dkim=pass header.d=acme.test"},
    )
    assert not dmarc_pass(forged, strict)
    assert dmarc_pass(passed, strict) and dmarc_pass(dkim, strict)
    assert sender_of(forged, strict, NOW.date()).role == "unknown"
    assert sender_of(passed, strict, NOW.date()).customer == "Acme"


def test_in_reply_to_from_a_stranger_opens_a_new_case_naming_it(config):
    d = decide(config, inbound("eve@evil.test"), Candidates(None, sample_case(), "x@y"))
    assert (d.action, d.related) == ("new", "HD-2026-00042")
    assert d.reason.startswith("new: in-reply-to <x@y> from a sender not on the case")


def test_an_auto_reply_from_anyone_may_follow_a_thread(config):
    ooo = inbound("eve@other.test", "Out of office", headers={"Auto-Submitted": "auto-replied"})
    assert decide(config, ooo, Candidates(None, sample_case(), "x@y")).action == "follow_up"


def test_an_engineer_answers_on_a_case_closed_long_ago(config):
    old = sample_case(status="closed", closed_at=NOW - timedelta(days=60))
    d = decide(config, inbound("alice@helpdesk.test", "Re: [HD-2026-00042]"), Candidates(old, None))
    assert d.action == "follow_up"


@pytest.mark.parametrize("require_dmarc_pass", [True, False])
def test_an_unproven_engineer_is_an_engineer_whose_mail_applies_nothing(config, require_dmarc_pass):
    """Engineers must be proven whatever require_dmarc_pass says for customers."""
    strict = replace(
        config,
        policy=replace(
            config.policy,
            require_dmarc_pass=require_dmarc_pass,
            trusted_authserv_id="mx.helpdesk.test",
            trust_unauthenticated_engineers=False,
        ),
    )
    forged = inbound("alice@helpdesk.test")
    signed = inbound(
        "alice@helpdesk.test",
        headers={
            "Authentication-Results": "MX.Helpdesk.Test; dmarc=pass header.from=helpdesk.test"
        },
    )
    unproven = sender_of(forged, strict, NOW.date())
    assert (unproven.role, unproven.proven, unproven.may_open) == ("engineer", False, False)
    assert "not proven" in unproven.reason
    proven = sender_of(signed, strict, NOW.date())  # authserv-id in any case
    assert (proven.role, proven.proven) == ("engineer", True)
    assert proven.proof == "dmarc=pass (helpdesk.test)"


def test_the_test_set_up_may_trust_engineers_without_proof(config):
    assert config.policy.trust_unauthenticated_engineers
    assert sender_of(inbound("alice@helpdesk.test"), config, NOW.date()).proven


def behind_an_mta(config, **policy):
    changed = replace(config.policy, trusted_authserv_id="mx.helpdesk.test", **policy)
    return replace(config, policy=changed)


def results(value: str) -> dict:
    return {"Authentication-Results": f"mx.helpdesk.test; {value}"}


@pytest.mark.parametrize(
    ("value", "customer"),
    [
        (None, "Acme"),  # the MTA wrote nothing: nothing says the mail is forged
        ("dmarc=none header.from=acme.test", "Acme"),  # no DMARC record
        ("dmarc=fail (p=none dis=none) header.from=acme.test", "Acme"),  # the owner refuses none
        ("dmarc=pass header.from=acme.test", "Acme"),
        ("dmarc=fail (p=reject dis=reject) header.from=acme.test", None),
        ("dmarc=fail policy.dmarc=quarantine header.from=acme.test", None),
        ("dmarc=fail header.from=acme.test", None),  # the policy not given: fail is enough
    ],
)
def test_a_customer_is_recognised_unless_its_domain_refuses_the_mail(config, value, customer):
    mta = behind_an_mta(config)
    sender = sender_of(inbound("jane@acme.test", headers=value and results(value)), mta, NOW.date())
    assert sender.customer == customer
    assert sender.plan == ("gold" if customer else "standard")
    assert bool(sender.demoted) == (customer is None)
    if customer is None:
        assert sender.role == "unknown" and "demoted" in sender.reason


def test_require_dmarc_pass_asks_proof_of_every_customer(config):
    strict = behind_an_mta(config, require_dmarc_pass=True)
    unproven = sender_of(inbound("jane@acme.test"), strict, NOW.date())
    assert (unproven.role, unproven.customer) == ("unknown", None)
    assert unproven.demoted == "domain of Acme demoted: without dmarc=pass"
    signed = inbound("jane@acme.test", headers=results("dkim=pass header.d=acme.test"))
    assert sender_of(signed, strict, NOW.date()).customer == "Acme"


def test_a_customer_is_unproven_only_where_proof_is_checkable(config):
    assert sender_of(inbound("jane@acme.test"), config, NOW.date()).authenticated is None
    mta = behind_an_mta(config)
    assert sender_of(inbound("jane@acme.test"), mta, NOW.date()).authenticated is False
    signed = inbound("jane@acme.test", headers=results("dmarc=pass header.from=acme.test"))
    assert sender_of(signed, mta, NOW.date()).authenticated is True


def test_a_colleague_who_may_not_open_cases_joins_none(config):
    """authorized_only: an unlisted address of Globex naming, or replying to, a case of its
    customer is unauthorised as for a new case, never a follow-up."""
    case = sample_case(customer="Globex", opener="boss@globex.test", contacts=("boss@globex.test",))
    clerk = inbound("clerk@globex.test", "Re: [HD-2026-00042] Help")
    for found in (Candidates(case, None), Candidates(None, case, "x@y")):
        d = decide(config, clerk, found)
        assert (d.action, d.related) == ("unauthorized", "HD-2026-00042"), d.reason
    boss = decide(
        config, inbound("boss@globex.test", "Re: [HD-2026-00042]"), Candidates(case, None)
    )
    assert boss.action == "follow_up"
    # a listed address of the customer not yet on the case still joins it
    listed = replace(case, opener="deputy@globex.test", contacts=("deputy@globex.test",))
    assert (
        decide(config, inbound("boss@globex.test"), Candidates(listed, None)).action == "follow_up"
    )
