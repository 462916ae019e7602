"""Who sent a message, may they open a case, and how urgent is it (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from helpdeskd.config import Config, Customer
from helpdeskd.core import authres
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
    """With require_dmarc_pass, a From address proves nothing without the trusted hop's
    dmarc=pass. Our own people steer cases and speak for the support address: their mail
    must be proven whatever that setting says, unless a test set-up trusts them blindly."""
    address = inbound.from_addr
    proven, proof = proof_of(inbound, config, verdict)
    verified = not config.policy.require_dmarc_pass or proven
    if address in config.staff:
        role = "engineer" if config.engineer(address) else "staff"
        if proven or config.policy.trust_unauthenticated_engineers:
            return Sender(address, role, None, config.policy.default_plan, True, role, proof=proof)
        why = f"{role} address not proven ({proof})"
        return Sender(address, role, None, config.policy.default_plan, False, why, False, proof)
    customer, how = find_customer(address, config)
    if customer and not verified:
        return unknown(address, config, f"{how} of {customer.name} without dmarc=pass", proof)
    if customer is None:
        return unknown(address, config, "unknown sender", proof)
    may_open = how == "address" or not customer.authorized_only
    reason = f"customer {customer.name} by {how}" + ("" if may_open else " (authorized_only)")
    plan = plan_of(customer, config, today)
    return Sender(address, "customer", customer.name, plan, may_open, reason, proof=proof)


def unknown(address: str, config: Config, reason: str, proof: str = "") -> Sender:
    may_open = config.policy.unknown_sender == "standard"
    return Sender(
        address, "unknown", None, config.policy.default_plan, may_open, reason, proof=proof
    )


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
    expired = customer.plan_expires is not None and today > customer.plan_expires
    return config.policy.default_plan if expired else customer.plan


def same_customer(address: str, customer: str | None, config: Config) -> bool:
    found, _ = find_customer(address, config)
    return customer is not None and found is not None and found.name == customer


def priority_of(inbound: Inbound, config: Config) -> tuple[str, str]:
    text = f"{inbound.subject}\n{inbound.text[:4000]}".lower()
    for priority, words in sorted(config.policy.priority_keywords.items()):
        for word in words:
            if re.search(rf"\b{re.escape(word)}\b", text):
                return priority, f"keyword {word!r}"
    return config.policy.default_priority, "default"


# -- DMARC, as the trusted hop saw it (RFC 8601) ------------------------------------------------


def proof_of(inbound: Inbound, config: Config, verdict: authres.Verdict | None) -> tuple[bool, str]:
    """Proven or not, and what was found. A verdict proves only the From domain it checked."""
    from_domain = inbound.from_addr.rpartition("@")[2]
    if verdict is None:
        header = authres.topmost(inbound, config.policy.trusted_authserv_id)
        if header is None:
            return False, "no trusted Authentication-Results"
        verdict = authres.read(header, from_domain)
    proven = verdict.proven and verdict.from_domain == from_domain
    return proven, verdict.summary() or "no results"


def dmarc_pass(inbound: Inbound, config: Config) -> bool:
    """dmarc=pass, or dkim=pass aligned with the From domain, in the topmost
    Authentication-Results of the trusted authserv-id."""
    return proof_of(inbound, config, None)[0]
