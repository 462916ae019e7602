"""A case opened by an engineer on a customer's behalf (`helpdeskd open --for`, the status
page): a telephoned notification, or mail the customer sent to someone directly, goes through
the same pipeline as the customer's own mail would, at the moment it was received."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from helpdeskd.adapters.store import Cases, Store
from helpdeskd.config import Config
from helpdeskd.pipeline import Prepared, Processed, prepare, settle


@dataclass(frozen=True)
class Request:
    customer: str  # the address the case is opened for
    subject: str
    body: str = ""
    priority: str | None = None  # None: as the customer's own mail would get
    channel: str = "phone"
    by: str = "helpdeskd open"  # who opened it, for the history


def message(config: Config, request: Request, at: datetime) -> bytes:
    """The customer's mail as if they had written it at `at`."""
    msg = EmailMessage()
    msg["From"] = request.customer
    msg["To"] = config.helpdesk.address
    msg["Subject"] = request.subject
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain=config.helpdesk.domain)
    msg.set_content(request.body or f"(received by {request.channel})")
    return msg.as_bytes()


def open_for(store: Store, config: Config, request: Request, at: datetime) -> Processed:
    """Spool, classify and route the customer's mail at `at`, with the priority given."""
    spool_id, _ = store.spool(
        message(config, request, at), source=f"open:{request.channel}", now=at
    )
    prepared = prepare(store, config, store.spool_item(spool_id), at)
    if not isinstance(prepared, Prepared):
        return prepared
    if request.priority:
        facts = replace(
            prepared.facts, priority=request.priority, priority_reason=f"given by {request.by}"
        )
        prepared = replace(prepared, facts=facts)
    done = settle(store, config, prepared, at)
    if done.reference and done.decision and done.decision.action == "new":
        cases = Cases(store)
        case = cases.get(done.reference)
        detail = f"opened for the customer by {request.by} ({request.channel})"
        cases.add_event(case.id, at, "on_behalf", detail)
    return done
