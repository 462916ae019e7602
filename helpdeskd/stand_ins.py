"""Stand-in contacts (XMPro: "Primary Contact, and Stand-In Contact if the Primary Contact is not
reachable"): forwards of unauthorised senders' mail and allow-list confirmations go to a
customer's stand-in contacts while its primary contact is unreachable, and the case's history
(or, without a case, the message's route reason) says who was told and why.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from helpdeskd.adapters.store import Cases, Store
from helpdeskd.config import Config, Customer
from helpdeskd.core.outcome import Outcome, customer_named
from helpdeskd.model import Mail

# the mail that is the primary contact's to act on: someone must read it
KINDS = frozenset({"unauthorized_forward", "allowlist_changed"})
AWAY_FOR = timedelta(days=7)  # an out-of-office this recent says the primary contact is away


def unreachable(store: Store, address: str, now: datetime) -> str:
    """Why `address` cannot be reached now; "" when nothing says so."""
    cases = Cases(store)
    if cases.last_mail_to_failed(address):
        return "the last mail to them bounced"
    if cases.auto_reply_from_since(address, now - AWAY_FOR):
        return "an out-of-office came back from them within 7 days"
    return ""


def redirect(store: Store, config: Config, result: Outcome, now: datetime) -> Outcome:
    """The outcome with the primary contact's mail sent to the stand-ins where it must be."""
    mails, told = [], []
    for mail in result.mails:
        customer = customer_named(config, mail.context.get("customer"))
        why = _why(store, customer, mail, now)
        if why:
            mail = replace(mail, to=customer.stand_in_contacts)
            told.append(f"{mail.kind} to {', '.join(mail.to)}: {why}")
        mails.append(mail)
    if not told:
        return result
    if result.case is None:
        reason = "; ".join([result.record.route_reason, *told])
        return replace(
            result, mails=tuple(mails), record=replace(result.record, route_reason=reason)
        )
    events = (*result.events, *(("stand_in", t) for t in told))
    return replace(result, mails=tuple(mails), events=events)


def _why(store: Store, customer: Customer | None, mail: Mail, now: datetime) -> str:
    if mail.kind not in KINDS or customer is None or not customer.stand_in_contacts:
        return ""
    primary = customer.primary_contact
    if primary is None or primary not in mail.to:
        return ""
    why = unreachable(store, primary, now)
    return f"the primary contact {primary} is unreachable ({why})" if why else ""
