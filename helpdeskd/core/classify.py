"""Who sent a message, may they open a case, and how urgent is it (pure)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from helpdeskd.config import Config, Customer
from helpdeskd.core import authres, urgency
from helpdeskd.core.autogen import Own, auto_generated, is_alert
from helpdeskd.model import Inbound


@dataclass(frozen=True)
class Sender:
    address: str
    role: str  # "engineer" | "staff" (escalation contacts, admins) | "customer" | "unknown"
    customer: str | None  # the customer's name when the address or domain is allow-listed
    plan: str
    may_open: bool  # False for a domain sender of an `authorized_only` customer
    reason: str
    proven: bool = True  # False: an engineer's or staff address whose mail is not proven
    proof: str = ""  # what the trusted Authentication-Results said, for `show`
    # the mail proven (True), checkable and not proven (False), or nothing could check it (None)
    authenticated: bool | None = None
    demoted: str = ""  # why a customer's address is served as an unknown sender


@dataclass(frozen=True)
class Facts:
    sender: Sender
    auto: tuple[str, ...]  # names of the auto-generated rules that hit; empty for human mail
    alert: bool  # an Auto-Submitted monitoring alert (may open a case, gets no acknowledgement)
    priority: str
    priority_reason: str


def classify(
    inbound: Inbound,
    config: Config,
    own: Own,
    today: date,
    verdict: authres.Verdict | None = None,
) -> Facts:
    """`verdict`: what the entrance's trusted hop found (helpdeskd's own check at a first
    hop); without it, the topmost Authentication-Results of `policy.trusted_authserv_id`."""
    auto = auto_generated(inbound, own)
    priority, why = priority_of(inbound, config)
    return Facts(
        sender=sender_of(inbound, config, today, verdict),
        auto=auto,
        alert=bool(auto) and is_alert(inbound),
        priority=priority,
        priority_reason=why,
    )


def sender_of(
    inbound: Inbound, config: Config, today: date, verdict: authres.Verdict | None = None
) -> Sender:
    """Who wrote it, and what proves it. `authenticated` is None where nothing could check
    the mail (`ingest` or a mailbox without a trusted hop): proof is then asked of nobody."""
    proof = proof_of(inbound, config, verdict)
    sender = who(inbound.from_addr, config, today, proof)
    return replace(
        sender, proof=proof.summary, authenticated=proof.proven if proof.checked else None
    )


def who(address: str, config: Config, today: date, proof: Proof) -> Sender:
    """Our own people steer cases and speak for the support address: their mail must be
    proven, unless a test set-up trusts them blindly. A customer is known by address or
    domain unless the mail fails its domain's DMARC policy, or require_dmarc_pass asks
    proof of every customer."""
    if address in config.staff:
        role = "engineer" if config.engineer(address) else "staff"
        if proof.proven or config.policy.trust_unauthenticated_engineers:
            return Sender(address, role, None, config.policy.default_plan, True, role)
        why = f"{role} address not proven ({proof.summary})"
        return Sender(address, role, None, config.policy.default_plan, False, why, False)
    customer, how = find_customer(address, config)
    if customer is None:
        return unknown(address, config, "unknown sender")
    demoted = demotion(customer, how, proof, config)
    if demoted:
        return replace(unknown(address, config, demoted), demoted=demoted)
    may_open = how == "address" or not customer.authorized_only
    reason = f"customer {customer.name} by {how}" + ("" if may_open else " (authorized_only)")
    plan = plan_of(customer, config, today)
    return Sender(address, "customer", customer.name, plan, may_open, reason)


def demotion(customer: Customer, how: str, proof: Proof, config: Config) -> str:
    """Why a customer's address is served as an unknown sender; "" when it is not."""
    if proof.refused:
        return f"{how} of {customer.name} demoted: dmarc=fail ({proof.refused})"
    if config.policy.require_dmarc_pass and not proof.proven:
        return f"{how} of {customer.name} demoted: without dmarc=pass"
    return ""


def unknown(address: str, config: Config, reason: str) -> Sender:
    may_open = config.policy.unknown_sender == "standard"
    return Sender(address, "unknown", None, config.policy.default_plan, may_open, reason)


def find_customer(address: str, config: Config) -> tuple[Customer | None, str]:
    """Exact address first, then the domain: an address names its customer even when the
    domain is someone else's (a consultant with a gmail address)."""
    for customer in config.customers:
        if address in customer.addresses:
            return customer, "address"
    domain = address.rpartition("@")[2]
    for customer in config.customers:
        if domain and domain in customer.domains:
            return customer, "domain"
    return None, ""


def plan_of(customer: Customer, config: Config, today: date) -> str:
    return config.policy.default_plan if lapsed(customer, today) else customer.plan


def lapsed(customer: Customer, today: date) -> bool:
    """The customer's plan ran out: the day after `plan_expires`, the default plan serves."""
    return customer.plan_expires is not None and today > customer.plan_expires


def plan_why(customer: Customer | None, config: Config, today: date) -> str:
    """Why a case is served by a plan other than its customer's own: said in `show` and in
    the acknowledgement (IPcelerate, Pro Plus); "" when it is the customer's own."""
    if customer is None or not lapsed(customer, today):
        return ""
    return (
        f"the {customer.plan} plan lapsed on {customer.plan_expires.isoformat()}, so the "
        f"{config.policy.default_plan} plan serves this case"
    )


def priority_of(inbound: Inbound, config: Config) -> tuple[str, str]:
    policy = config.policy
    return urgency.priority_of(
        inbound.subject, inbound.text, policy.priority_keywords, policy.default_priority
    )


# -- DMARC, as the trusted hop saw it (RFC 8601) ------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """What the trusted hop found of a message's From domain."""

    checked: bool  # the entrance checks for itself, or a trusted MTA is named: proof can be had
    proven: bool
    refused: str | None  # the DMARC policy the mail fails (`p=reject`), None when it fails none
    summary: str  # what `show` prints


def proof_of(inbound: Inbound, config: Config, verdict: authres.Verdict | None) -> Proof:
    """A verdict proves, or refuses, only the From domain it checked."""
    from_domain = inbound.from_addr.rpartition("@")[2]
    checked = verdict is not None or bool(config.policy.trusted_authserv_id)
    if verdict is None:
        header = authres.topmost(inbound, config.policy.trusted_authserv_id)
        if header is None:
            return Proof(checked, False, None, "no trusted Authentication-Results")
        verdict = authres.read(header, from_domain)
    if verdict.from_domain != from_domain:
        return Proof(checked, False, None, verdict.summary() or "no results")
    proven = verdict.proven
    refused = None if proven else verdict.refused
    return Proof(checked, proven, refused, verdict.summary() or "no results")


def dmarc_pass(inbound: Inbound, config: Config) -> bool:
    """dmarc=pass, or dkim=pass aligned with the From domain, in the topmost
    Authentication-Results of the trusted authserv-id."""
    return proof_of(inbound, config, None).proven
