"""Who may see what on the status page (pure).

The rules are the mail rules seen from the other side: a contact sees the cases they opened or
are on (a contact of the case, or a participant copied on it, from any domain), a customer's
primary and stand-in contacts and its nominated report viewers see all of
that customer's cases and its reports, engineers see the team's queue. Nobody sees another
customer's case, and no customer sees internal mail (notes, engineer notifications, escalations
to staff).
"""

from __future__ import annotations

from dataclasses import dataclass

from helpdeskd.config import Config, Customer
from helpdeskd.core.classify import find_customer
from helpdeskd.model import Case

OPEN_STATUSES = ("new", "open", "waiting", "pending_close")


@dataclass(frozen=True)
class Viewer:
    address: str
    role: str  # "engineer" (our staff) | "contact" (a customer's, or a case participant)
    customer: str | None  # the customer the address belongs to, if any
    representative: bool = False  # a primary or stand-in contact: sees all the customer's cases

    @property
    def engineer(self) -> bool:
        return self.role == "engineer"


def viewer_for(address: str, config: Config) -> Viewer:
    address = address.strip().lower()
    if address in config.staff:
        return Viewer(address, "engineer", None)
    customer, _ = find_customer(address, config)
    customer = customer or nominated(address, config)
    if customer is None:
        return Viewer(address, "contact", None)
    representatives = {customer.primary_contact, *customer.stand_in_contacts}
    representatives |= set(customer.report_viewers)
    return Viewer(address, "contact", customer.name, address in representatives)


def nominated(address: str, config: Config) -> Customer | None:
    """The customer that nominated `address` a report viewer (XMPro §7), whatever its domain."""
    return next((c for c in config.customers if address in c.report_viewers), None)


def known(viewer: Viewer, their_cases: int) -> bool:
    """Whether a sign-in link is worth mailing: staff, a customer's address, or someone who
    already is on a case (an unknown sender whose case was opened anyway, a participant from
    outside the customer's domains)."""
    return viewer.engineer or viewer.customer is not None or their_cases > 0


def may_see(viewer: Viewer, case: Case) -> bool:
    if viewer.engineer:
        return True
    if viewer.representative and case.customer == viewer.customer:
        return True
    return case.has_on_it(viewer.address)


def may_act(viewer: Viewer, case: Case) -> bool:
    """Reply, reopen, escalate and rate are the customer's side of a case: engineers still
    work by mail, where their commands and proof of sender apply."""
    return not viewer.engineer and may_see(viewer, case)


def customer_visible(message: dict, case: Case, to: list[str]) -> bool:
    """What the customer's side saw of the conversation: their own messages, and what we
    mailed to them. Everything else on the case is internal."""
    if message["direction"] == "in":
        return message["kind"] == "customer"
    side = {case.opener, *case.contacts}
    return any(address in side for address in to)
