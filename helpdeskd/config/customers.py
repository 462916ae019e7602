"""Who is who: [[customers]] with the machine-managed allow-list file merged in, and
[[engineers]]."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from helpdeskd.config.reader import DOMAIN, Reader


@dataclass(frozen=True)
class Customer:
    name: str
    domains: tuple[str, ...]
    addresses: tuple[str, ...]
    plan: str
    plan_expires: date | None = None
    authorized_only: bool = False
    primary_contact: str | None = None
    stand_in_contacts: tuple[str, ...] = ()
    report_viewers: tuple[str, ...] = ()  # nominated to read its reports and cases (XMPro §7)

    @property
    def contacts(self) -> tuple[str, ...]:
        """Who hears about the service itself: reports, announcements."""
        primary = (self.primary_contact,) if self.primary_contact else ()
        return tuple(dict.fromkeys((*primary, *self.stand_in_contacts)))

    @property
    def report_readers(self) -> tuple[str, ...]:
        """Who gets the monthly report: the contacts and the nominated report viewers."""
        return tuple(dict.fromkeys((*self.contacts, *self.report_viewers)))


@dataclass(frozen=True)
class Engineer:
    name: str
    email: str
    tier: int = 1


def _customers(
    r: Reader, data: dict, plans: dict, allowed: dict[str, dict]
) -> tuple[Customer, ...]:
    customers = tuple(_customer(r, p, t, plans) for p, t in r.tables(data, "customers"))
    names = {c.name for c in customers}
    for name in sorted(set(allowed) - names):
        r.problem(f"allowlist.customers.{name}", "no such customer in [[customers]]")
    customers = tuple(_allowed(c, allowed.get(c.name)) for c in customers)
    _no_overlap(r, customers)
    return customers


ALLOWLIST_KEYS = ("addresses", "removed", "domains")


def _allowlist(r: Reader, path: Path | None) -> dict[str, dict]:
    """The machine-managed allow-list changes (`#allow` commands), per customer's name: a
    file written by helpdeskd beside the admin's, which it never rewrites. No file, no
    changes."""
    if path is None or not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        r.problem("helpdesk.allowlist", f"cannot read {path}: {exc}")
        return {}
    r.unknown(data, "allowlist", {"customers"})
    found = {}
    for name, t in r.table(data, "customers", "allowlist.customers").items():
        p = f"allowlist.customers.{name}"
        if not isinstance(t, dict):
            r.problem(p, "must be a table")
            continue
        r.unknown(t, p, set(ALLOWLIST_KEYS))
        found[name] = {
            "addresses": r.addresses(t, "addresses", p),
            "removed": tuple(v.lower() for v in r.strings(t, "removed", p)),
            "domains": tuple(_domains(r, t, p)),
        }
    return found


def _allowed(customer: Customer, change: dict | None) -> Customer:
    """The customer with its allow-list changes applied: added, then removed."""
    if not change:
        return customer
    removed = set(change["removed"])
    addresses = dict.fromkeys((*customer.addresses, *change["addresses"]))
    domains = dict.fromkeys((*customer.domains, *change["domains"]))
    return replace(
        customer,
        addresses=tuple(a for a in addresses if a not in removed),
        domains=tuple(d for d in domains if d not in removed),
    )


def _domains(r: Reader, t: dict, p: str) -> list[str]:
    domains = r.strings(t, "domains", p)
    for i, d in enumerate(domains):
        if not DOMAIN.match(d):
            r.problem(f"{p}.domains[{i}]", f"not a domain name: {d!r}")
    return [d.lower() for d in domains]


def _customer(r: Reader, p: str, t: dict, plans: dict) -> Customer:
    r.unknown(
        t,
        p,
        {
            "name",
            "domains",
            "addresses",
            "plan",
            "plan_expires",
            "authorized_only",
            "primary_contact",
            "stand_in_contacts",
            "report_viewers",
        },
    )
    domains = _domains(r, t, p)
    plan = r.required(t, "plan", p, str)
    if plan is not None and plan not in plans:
        r.problem(f"{p}.plan", f"unknown plan {plan!r} (known: {', '.join(sorted(plans))})")
    expires = r.get(t, "plan_expires", p, date)
    addresses = r.addresses(t, "addresses", p)
    if not domains and not addresses:
        r.problem(p, "needs domains or addresses to recognise its senders")
    return Customer(
        name=r.required(t, "name", p, str) or p,
        domains=tuple(domains),
        addresses=addresses,
        plan=plan or "",
        plan_expires=expires,
        authorized_only=r.get(t, "authorized_only", p, bool, False),
        primary_contact=r.address(r.get(t, "primary_contact", p, str), f"{p}.primary_contact"),
        stand_in_contacts=r.addresses(t, "stand_in_contacts", p),
        report_viewers=r.addresses(t, "report_viewers", p),
    )


def _no_overlap(r: Reader, customers: tuple[Customer, ...]) -> None:
    """A domain or address naming two customers would make the plan a coin toss."""
    seen: dict[str, str] = {}
    for c in customers:
        for key in (*c.domains, *c.addresses):
            if key in seen and seen[key] != c.name:
                r.problem("customers", f"{key!r} belongs to both {seen[key]!r} and {c.name!r}")
            seen[key] = c.name


def _engineer(r: Reader, p: str, t: dict) -> Engineer:
    r.unknown(t, p, {"name", "email", "tier"})
    return Engineer(
        name=r.required(t, "name", p, str) or "",
        email=r.address(r.required(t, "email", p, str), f"{p}.email") or "",
        tier=r.choice(t, "tier", p, (1, 2, 3), 1),
    )
