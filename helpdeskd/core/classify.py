"""Who sent a message, may they open a case, and how urgent is it (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from helpdeskd.config import Config, Customer
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


@dataclass(frozen=True)
class Facts:
    sender: Sender
    auto: tuple[str, ...]  # names of the auto-generated rules that hit; empty for human mail
    alert: bool  # an Auto-Submitted monitoring alert (may open a case, gets no acknowledgement)
    priority: str
    priority_reason: str


def classify(inbound: Inbound, config: Config, own: Own, today: date) -> Facts:
    auto = auto_generated(inbound, own)
    priority, why = priority_of(inbound, config)
    return Facts(
        sender=sender_of(inbound, config, today),
        auto=auto,
        alert=bool(auto) and is_alert(inbound),
        priority=priority,
        priority_reason=why,
    )


def sender_of(inbound: Inbound, config: Config, today: date) -> Sender:
    """With require_dmarc_pass, a From address proves nothing without the trusted MTA's
    dmarc=pass: not a customer's, and still less an engineer's, who can steer cases."""
    address = inbound.from_addr
    verified = not config.policy.require_dmarc_pass or dmarc_pass(inbound, config)
    if address in config.staff:
        role = "engineer" if config.engineer(address) else "staff"
        if verified:
            return Sender(address, role, None, config.policy.default_plan, True, role)
        return unknown(address, config, f"{role} address without dmarc=pass")
    customer, how = find_customer(address, config)
    if customer and not verified:
        return unknown(address, config, f"{how} of {customer.name} without dmarc=pass")
    if customer is None:
        return unknown(address, config, "unknown sender")
    may_open = how == "address" or not customer.authorized_only
    reason = f"customer {customer.name} by {how}" + ("" if may_open else " (authorized_only)")
    return Sender(
        address, "customer", customer.name, plan_of(customer, config, today), may_open, reason
    )


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


# -- DMARC, as the trusted MTA saw it (RFC 8601) ------------------------------------------------

RESULT = re.compile(r"\b(dmarc|dkim)\s*=\s*(\w+)([^;]*)", re.I)
DKIM_DOMAIN = re.compile(r"header\.[di]\s*=\s*@?([\w.-]+)", re.I)


def dmarc_pass(inbound: Inbound, config: Config) -> bool:
    """dmarc=pass, or dkim=pass aligned with the From domain, in the topmost
    Authentication-Results of the trusted authserv-id (the MTA strips forged ones)."""
    trusted = (config.policy.trusted_authserv_id or "").lower()
    header = next(
        (
            h
            for h in inbound.header_all("Authentication-Results")
            if h.split(";", 1)[0].strip().lower().split()[0:1] == [trusted]
        ),
        None,
    )
    if header is None:
        return False
    from_domain = inbound.from_addr.rpartition("@")[2]
    for method, result, props in RESULT.findall(header):
        if result.lower() != "pass":
            continue
        if method.lower() == "dmarc":
            return True
        signer = DKIM_DOMAIN.search(props)
        if signer and aligned(signer.group(1).lower(), from_domain):
            return True
    return False


def aligned(signer: str, from_domain: str) -> bool:
    """Relaxed alignment: the same organisational domain, approximated by suffix match."""
    return bool(from_domain) and (
        signer == from_domain
        or from_domain.endswith("." + signer)
        or signer.endswith("." + from_domain)
    )
