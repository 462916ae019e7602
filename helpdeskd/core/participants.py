"""A case's participants: the people a customer copied on their mail (pure).

They get the engineers' replies in `Cc`, and their own replies thread onto the case. Our own
people never become participants: a customer's `Cc` must not carry the case to an engineer's
private mailbox, and the support addresses are where the mail already went.
"""

from __future__ import annotations

from dataclasses import replace

from helpdeskd.config import Config
from helpdeskd.model import Case, Inbound


def copied(inbound: Inbound, config: Config, case: Case) -> tuple[str, ...]:
    """The addresses of a customer's To/Cc who are new to the case."""
    ours = {*config.helpdesk.addresses, *config.staff}
    known = {case.opener, *case.contacts, *case.participants, inbound.from_addr}
    found = (a for a in (*inbound.to, *inbound.cc) if a and "@" in a)
    return tuple(dict.fromkeys(a for a in found if a not in ours and a not in known))


def joined(case: Case, inbound: Inbound, config: Config) -> Case:
    """The case with the customer's newly copied addresses among its participants."""
    return replace(case, participants=(*case.participants, *copied(inbound, config, case)))


def external(case: Case, config: Config) -> tuple[str, ...]:
    """Participants outside the domains of the case's customer: the engineer is told, since
    what they write will reach them too."""
    customer = next((c for c in config.customers if c.name == case.customer), None)
    domains = {d.lower() for d in customer.domains} if customer else set()
    inside = set(customer.addresses) if customer else set()
    return tuple(
        a for a in case.participants if a.rpartition("@")[2] not in domains and a not in inside
    )


def changed(case: Case, value: str) -> Case:
    """`#cc add ADDRESS` / `#cc remove ADDRESS`, as "add ADDRESS" or "remove ADDRESS"."""
    action, _, address = value.partition(" ")
    kept = tuple(a for a in case.participants if a != address)
    return replace(case, participants=(*kept, address) if action == "add" else kept)
