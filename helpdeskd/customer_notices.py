"""Notices to a customer's primary contact about its service, not about a case: its plan lapsed
(IPcelerate, Pro Plus), or it is flagged for fair use this month (IPRO §4: "the customer will be
clearly notified").

They run with every sweep, like the monthly report; each goes once (`sent_once`, claimed in the
transaction that queues it), however often the sweep runs.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from helpdeskd import report
from helpdeskd.adapters.store import SentOnce, Store
from helpdeskd.config import Config, Customer
from helpdeskd.core.classify import lapsed
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail

log = structlog.get_logger("helpdeskd.customer_notices")


def run(store: Store, config: Config, now: datetime, *, dry_run: bool = False) -> list[dict]:
    """Queue the notices due at `now` (or, dry, list them); one entry each, as the sweep
    lists its actions."""
    mails = [*lapse_notices(config, now), *fair_use_notices(store, config, now)]
    sent = SentOnce(store).sent([m.once for m in mails]) if mails else set()
    return [send(store, config, m, now, dry_run) for m in mails if m.once not in sent]


def send(store: Store, config: Config, mail: Mail, now: datetime, dry_run: bool) -> dict:
    entry = {"reference": None, "action": mail.kind, "customer": mail.context["customer"]}
    entry["to"] = list(mail.to)
    if not dry_run:
        with store.transaction():
            queued = queue_mail(store, config, mail, None, [], None, now)
        entry["to"] = queued["to"] if queued else []
        log.info("customer notice", kind=mail.kind, customer=entry["customer"], to=entry["to"])
    return entry


def notice(kind: str, customer: Customer, context: dict, once: str) -> Mail:
    return Mail(
        kind,
        kind,
        (customer.primary_contact,),
        {"customer": customer.name, **context},
        automatic="auto-generated",
        threaded=False,
        once=once,
    )


# -- a lapsed plan ---------------------------------------------------------------------------


def lapse_notices(config: Config, now: datetime) -> list[Mail]:
    """One mail per lapse: which plan applies now, and the lapsed plan's renewal note."""
    today = now.date()
    return [
        notice(
            "plan_lapsed",
            c,
            {
                "plan": c.plan,
                "expired": c.plan_expires,
                "now_plan": config.policy.default_plan,
                "renewal_note": config.plans[c.plan].renewal_note if c.plan in config.plans else "",
            },
            f"plan_lapsed:{c.name}:{c.plan_expires.isoformat()}",
        )
        for c in config.customers
        if c.primary_contact and lapsed(c, today)
    ]


# -- fair use --------------------------------------------------------------------------------


def fair_use_notices(store: Store, config: Config, now: datetime) -> list[Mail]:
    """One notice per customer flagged this month (the report's rule), to its primary contact."""
    month = report.fair_use_period(config, now)
    found = report.flagged_this_month(store, config, now)
    return [
        notice(
            "fair_use_notice",
            c,
            {"why": found[c.name], "month": month},
            f"fair_use_notice:{c.name}:{month}",
        )
        for c in config.customers
        if c.primary_contact and c.name in found
    ]
