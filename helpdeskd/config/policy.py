"""[policy]: unknown senders, priorities, the closing rule, bounds and the customer's side."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from helpdeskd.config.agreements import _priority_keys
from helpdeskd.config.reader import Reader
from helpdeskd.core.calendar import Duration
from helpdeskd.names import PRIORITIES


@dataclass(frozen=True)
class Policy:
    unknown_sender: str = "standard"
    default_plan: str = "standard"
    default_priority: str = "P3"
    priority_keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)
    close_warning_after: Duration = Duration(5, "d")
    close_after_warning: Duration = Duration(2, "d")
    reopen_window: Duration = Duration(10, "d")
    require_dmarc_pass: bool = False
    trusted_authserv_id: str | None = None
    new_cases_per_hour: int = 20  # per sender
    auto_replies_per_hour: int = 10  # per recipient, the last guard against mail loops
    max_attempts: int = 5  # processing tries before a message is quarantined
    forward_attachments_max: int = 10 * 1024 * 1024  # bytes attached to engineers' copies
    processing_budget: float = 5.0  # seconds one message may hold the worker
    mails_per_hour_per_recipient: int = 30  # all mail to one outside address, relays included
    loop_messages: int = 10  # inbound mails from one outside address on one case per window...
    loop_repeats: int = 3  # ...or this many with the same text: forwarding pauses
    loop_window: Duration = Duration(1, "h")
    trust_unauthenticated_engineers: bool = False  # test set-ups only: see check-config

    unauthorized: str = "forward"  # notice | forward | open: an authorized_only domain's others
    unauthorized_open_keywords: tuple[str, ...] = ()  # words that open the case all the same
    escalation_request_interval: Duration = Duration(1, "d")  # per case, for customers
    survey_after_auto_close: bool = False
    fair_use_multiple: float = 3.0  # of the median of new cases per customer
    announce_to: str = "contacts"  # contacts (primary and stand-in) | all (every listed address)
    monthly_report: bool = True  # each customer's figures to its contacts, monthly


def _policy(r: Reader, t: dict, plans: dict, first_hop: bool) -> Policy:
    """`first_hop`: the listener faces the world and checks for itself, so require_dmarc_pass
    needs no trusted authserv-id there. Customers are known by address unless the site asks
    proof of all: a default derived from one entrance would demote the others' customers."""
    p = "policy"
    r.unknown(
        t,
        p,
        {
            "unknown_sender",
            "default_plan",
            "default_priority",
            "priority_keywords",
            "close_warning_after",
            "close_after_warning",
            "reopen_window",
            "require_dmarc_pass",
            "trusted_authserv_id",
            "new_cases_per_hour",
            "auto_replies_per_hour",
            "max_attempts",
            "forward_attachments_max",
            *LOOP_KEYS,
            "trust_unauthenticated_engineers",
            *CUSTOMER_SERVICE_KEYS,
        },
    )
    default_plan = r.get(t, "default_plan", p, str, next(iter(plans), "standard"))
    if plans and default_plan not in plans:
        r.problem(f"{p}.default_plan", f"unknown plan {default_plan!r}")
    dmarc = r.get(t, "require_dmarc_pass", p, bool, False)
    authserv = r.get(t, "trusted_authserv_id", p, str)
    if dmarc and not authserv and not first_hop:
        r.problem(
            f"{p}.trusted_authserv_id",
            "is required with require_dmarc_pass: the "
            "authserv-id your MTA writes in Authentication-Results",
        )
    return Policy(
        unknown_sender=r.choice(
            t, "unknown_sender", p, ("standard", "reject", "ignore"), "standard"
        ),
        default_plan=default_plan,
        default_priority=r.choice(t, "default_priority", p, PRIORITIES, "P3"),
        priority_keywords=_keywords(r, t, p),
        close_warning_after=r.duration(t, "close_warning_after", p, Duration(5, "d")),
        close_after_warning=r.duration(t, "close_after_warning", p, Duration(2, "d")),
        reopen_window=r.duration(t, "reopen_window", p, Duration(10, "d")),
        require_dmarc_pass=dmarc,
        trusted_authserv_id=authserv,
        new_cases_per_hour=r.positive(t, "new_cases_per_hour", p, 20),
        auto_replies_per_hour=r.positive(t, "auto_replies_per_hour", p, 10),
        max_attempts=r.positive(t, "max_attempts", p, 5),
        forward_attachments_max=r.positive(t, "forward_attachments_max", p, 10 * 1024 * 1024),
        **_bounds(r, t, p),
        trust_unauthenticated_engineers=r.get(t, "trust_unauthenticated_engineers", p, bool, False),
        **_customer_service(r, t, p),
    )


LOOP_KEYS = (
    "processing_budget",
    "mails_per_hour_per_recipient",
    "loop_messages",
    "loop_repeats",
    "loop_window",
)


BUDGET = re.compile(r"(\d+)(s|m)")


def _bounds(r: Reader, t: dict, p: str) -> dict:
    """The limits on work and mail per message, per recipient and per conversation."""
    return dict(
        processing_budget=_budget(r, t.get("processing_budget"), f"{p}.processing_budget"),
        mails_per_hour_per_recipient=r.positive(t, "mails_per_hour_per_recipient", p, 30),
        loop_messages=r.positive(t, "loop_messages", p, 10),
        loop_repeats=r.positive(t, "loop_repeats", p, 3),
        loop_window=r.duration(t, "loop_window", p, Duration(1, "h")) or Duration(1, "h"),
    )


def _budget(r: Reader, value: Any, path: str) -> float:
    """ "5s" or "1m": whole seconds or minutes, at least one second and at most ten minutes."""
    if value is None:
        return Policy.processing_budget
    found = BUDGET.fullmatch(value) if isinstance(value, str) else None
    seconds = int(found[1]) * (60 if found[2] == "m" else 1) if found else 0
    if not 1 <= seconds <= 600:
        r.problem(path, f'must be a time from "1s" to "10m", like "5s", not {value!r}')
        return Policy.processing_budget
    return float(seconds)


CUSTOMER_SERVICE_KEYS = (
    "unauthorized",
    "unauthorized_open_keywords",
    "escalation_request_interval",
    "survey_after_auto_close",
    "fair_use_multiple",
    "announce_to",
    "monthly_report",
)


def _customer_service(r: Reader, t: dict, p: str) -> dict:
    """The [policy] keys of the customer's side: unauthorised contacts, escalation on request,
    surveys, fair use, announcements and monthly reports."""
    multiple = r.get(t, "fair_use_multiple", p, (int, float), 3.0)
    if multiple <= 1:
        r.problem(f"{p}.fair_use_multiple", "must be a number above 1, e.g. 3")
        multiple = 3.0
    interval = r.duration(t, "escalation_request_interval", p, Duration(1, "d"))
    return {
        "unauthorized": r.choice(t, "unauthorized", p, ("notice", "forward", "open"), "forward"),
        "unauthorized_open_keywords": tuple(
            w.lower() for w in r.strings(t, "unauthorized_open_keywords", p)
        ),
        "escalation_request_interval": interval or Duration(1, "d"),
        "survey_after_auto_close": r.get(t, "survey_after_auto_close", p, bool, False),
        "fair_use_multiple": float(multiple),
        "announce_to": r.choice(t, "announce_to", p, ("contacts", "all"), "contacts"),
        "monthly_report": r.get(t, "monthly_report", p, bool, True),
    }


def _keywords(r: Reader, t: dict, p: str) -> dict[str, tuple[str, ...]]:
    table = r.table(t, "priority_keywords", f"{p}.priority_keywords")
    _priority_keys(r, table, f"{p}.priority_keywords")
    return {
        pr: tuple(w.lower() for w in r.strings(table, pr, f"{p}.priority_keywords"))
        for pr in PRIORITIES
        if pr in table
    }
