"""Announcements (planned outages and other notices) to customers' contacts: one mail per
recipient, through the outbox, from the support address, so a reply opens a case as any mail
does. `helpdeskd announce` is a thin wrapper around `announce()`."""

from __future__ import annotations

from datetime import date, datetime

from helpdeskd.adapters.store import Store
from helpdeskd.config import Config, Customer
from helpdeskd.core.classify import plan_of
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail


class UnknownSelection(ValueError):
    """A customer or plan named on the command line that the configuration does not know."""


def selected(
    config: Config,
    today: date,
    customers: list[str] | None = None,
    plans: list[str] | None = None,
) -> list[Customer]:
    """The customers named (by name or any of their domains) and those on the plans named;
    everyone when neither is given."""
    chosen = list(config.customers) if not customers and not plans else []
    for wanted in customers or ():
        found = next((c for c in config.customers if named(c, wanted)), None)
        if found is None:
            known = ", ".join(c.name for c in config.customers) or "none"
            raise UnknownSelection(f"no customer {wanted!r} (customers: {known})")
        chosen.append(found)
    for plan in plans or ():
        if plan not in config.plans:
            raise UnknownSelection(f"no plan {plan!r} (plans: {', '.join(sorted(config.plans))})")
        chosen += [c for c in config.customers if plan_of(c, config, today) == plan]
    return list({c.name: c for c in chosen}.values())


def named(customer: Customer, wanted: str) -> bool:
    wanted = wanted.strip().lower()
    return customer.name.lower() == wanted or wanted in customer.domains


def recipients(config: Config, customer: Customer) -> tuple[str, ...]:
    """The primary and stand-in contacts; with announce_to = "all", every listed address too."""
    extra = customer.addresses if config.policy.announce_to == "all" else ()
    return tuple(dict.fromkeys((*customer.contacts, *extra)))


def announce(
    store: Store,
    config: Config,
    subject: str,
    body: str,
    now: datetime,
    *,
    customers: list[str] | None = None,
    plans: list[str] | None = None,
    dry_run: bool = False,
) -> list[dict]:
    """Queue one mail per recipient (or, dry, only list them); an address that is a contact of
    two customers gets one mail."""
    planned = {}  # address -> customer, the first customer to name the address
    for customer in selected(config, now.date(), customers, plans):
        for address in recipients(config, customer):
            planned.setdefault(address, customer)
    done = []
    with store.transaction():
        for address, customer in planned.items():
            entry = {"customer": customer.name, "to": address, "subject": subject, "queued": False}
            if not dry_run:
                mail = announcement(config, customer, address, subject, body)
                entry["queued"] = queue_mail(store, config, mail, None, [], None, now) is not None
            done.append(entry)
    return done


def announcement(config: Config, customer: Customer, address: str, subject: str, body: str) -> Mail:
    return Mail(
        "announcement",
        "announcement",
        (address,),
        {"subject": subject, "body": body, "customer": customer.name},
        automatic="auto-generated",
        reply_to=config.helpdesk.address,
        threaded=False,
    )
