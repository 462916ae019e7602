"""Frozen values shared by the core and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Inbound:
    """One parsed message: everything the core needs, nothing of the wire format."""

    message_id: str | None  # without angle brackets
    from_addr: str  # lower-cased address, "" when there is none
    from_name: str
    to: tuple[str, ...]  # addresses, lower-cased
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    date: str | None  # the Date header as sent
    in_reply_to: tuple[str, ...]  # message ids without angle brackets
    references: tuple[str, ...]
    text: str  # the readable body: text/plain preferred, HTML turned into text
    html: str | None  # the HTML twin of the text part (or the HTML that became the text)
    content_type: str  # of the whole message, e.g. "multipart/report"
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]  # every top-level header, decoded, in order
    envelope_from: str | None = None  # SMTP MAIL FROM / Return-Path when known
    defects: tuple[str, ...] = ()  # what the parser had to repair

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively; None when absent."""
        values = self._by_name.get(name.lower())
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return list(self._by_name.get(name.lower(), ()))

    @cached_property
    def _by_name(self) -> dict[str, tuple[str, ...]]:
        """Lower-cased name -> its values in order, built on the first look-up: the rules of
        the classification ask some thirty times a message, and scanning every header each
        time cost more than the rest of most rules."""
        found: dict[str, list[str]] = {}
        for name, value in self.headers:
            found.setdefault(name.lower(), []).append(value)
        return {name: tuple(values) for name, values in found.items()}


@dataclass(frozen=True)
class Case:
    """A case as the core sees it; the store maps it to and from its row."""

    reference: str
    status: str  # new | open | waiting | pending_close | resolved | closed
    priority: str  # P1..P4
    plan: str
    customer: str | None
    subject: str
    opener: str  # the address that opened it
    opened_at: datetime
    updated_at: datetime
    contacts: tuple[str, ...] = ()  # customer-side addresses on the case
    assignee: str | None = None
    first_response_at: datetime | None = None
    closed_at: datetime | None = None
    escalation_level: int = 0
    related: str | None = None  # the reference this case names (a reopened-too-late or stranger)
    clocks: Clocks | None = None
    waiting_since: datetime | None = None
    paused_minutes: int = 0  # working time spent waiting on the customer, added to the clocks
    notices: frozenset[str] = frozenset()  # scheduler notices already sent, so none goes twice
    tier: int | None = None  # the tier it was handed to (#tier N); None: the plan's notify_tier
    followers: tuple[str, ...] = ()  # whoever an escalation notified, until it is resolved
    participants: tuple[str, ...] = ()  # copied by the customer: in Cc of engineers' replies
    merged_into: str | None = None  # the case it was folded into (#merge): it threads there
    category: str | None = None  # [categories.NAME] an engineer gave it (#category)
    id: int | None = None

    def has_on_it(self, address: str) -> bool:
        """The opener, a contact or a participant: someone the case's mail goes to."""
        return address == self.opener or address in self.contacts or address in self.participants


@dataclass(frozen=True)
class Clock:
    """One SLA clock: it starts at one event and stops at another; its deadline and warning
    instant move when the case pauses. A text target ("next release") has no deadline."""

    name: str  # first_response, resolution, or a plan's named clock
    target: str  # the plan's target as written, e.g. "4h" or "next release"
    calendar: str
    started_at: datetime | None  # None until its start event
    deadline: datetime | None  # None while not started, and for a text target
    warn_at: datetime | None
    met_at: datetime | None = None
    starts: str = "opened"  # opened | escalated | tier N
    stops: str = "resolved"  # reply | resolved | #plan | #workaround
    paused_minutes: int = 0  # working time on its calendar spent waiting on the customer
    agreed_by: str | None = None  # who agreed the deadline with the customer (#due)
    agreed_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.met_at is None


@dataclass(frozen=True)
class Clocks:
    """A case's clocks in the plan's order."""

    items: tuple[Clock, ...] = ()

    def __iter__(self):
        return iter(self.items)

    def get(self, name: str) -> Clock | None:
        return next((c for c in self.items if c.name == name), None)

    def put(self, clock: Clock) -> Clocks:
        """With `clock` in place of the one of its name, or added last."""
        if self.get(clock.name) is None:
            return Clocks((*self.items, clock))
        return Clocks(tuple(clock if c.name == clock.name else c for c in self.items))

    @property
    def first_response(self) -> Clock | None:
        return self.get("first_response")

    @property
    def resolution(self) -> Clock | None:
        return self.get("resolution")


# The kinds of message the customer sees: only these make up the customer's conversation, so
# the Message-IDs of internal mail (notifications, notes, escalations) never reach them.
CUSTOMER_THREAD = frozenset(
    {
        "customer",
        "acknowledgement",
        "relay",
        "closed",
        "escalated",
        "closing_warning",
        "resolved",
        "reopened",
        "escalation_request",
        "allowlist_changed",
        "close_refused",
        "close_not_allowed",
        "not_covered",
        "rating",
        "agreed_deadline",
        "action_plan",
        "merged",
        "unmerged",
    }
)


@dataclass(frozen=True)
class Mail:
    """An outgoing message before rendering: the core says what to send, render.py how."""

    kind: str  # acknowledgement, notification, relay, closing_warning, escalation, ...
    template: str
    to: tuple[str, ...]
    context: dict = field(default_factory=dict, hash=False)
    automatic: str | None = None  # Auto-Submitted value: auto-replied | auto-generated
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()
    threaded: bool = True  # In-Reply-To/References point at the case's conversation
    once: str | None = None  # a key: mail with a key already sent is not sent again
    cc: tuple[str, ...] = ()  # in the Cc header; delivered to as `to` is
