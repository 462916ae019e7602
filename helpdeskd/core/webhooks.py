"""What a change to a case means to the systems that listen (`[[webhooks]]`): which events it
raises, which hooks want them, and the signature that proves a body came from helpdeskd."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from helpdeskd.core.sla import SETTLED
from helpdeskd.model import Case

# The version of the JSON document every event is; a field removed or changed in meaning is a
# new version, a field added is not.
SCHEMA_VERSION = 1


# the case history's event kinds that are events of their own
_BY_KIND = {
    "escalate": "case.escalated",
    "sla_breach": "case.breached",
    "rating": "rating.received",
}
# the inbound messages that reply on a case (a note or a command alone does not)
REPLIES = ("customer", "engineer")


def happened(
    before: Case | None, after: Case, kinds: Iterable[str], replied: bool = False
) -> list[str]:
    """The events of one change, in the order they happened: `before` is None for a new case,
    `kinds` are the history's event kinds the change recorded."""
    kinds = set(kinds)
    found = ["case.opened"] if before is None else (["case.replied"] if replied else [])
    if before is not None and after.escalation_level > before.escalation_level:
        kinds.add("escalate")
    found += [event for kind, event in _BY_KIND.items() if kind in kinds and kind != "rating"]
    found += _status_event(before.status if before else None, after.status)
    return found + (["rating.received"] if "rating" in kinds else [])


def _status_event(was: str | None, now: str) -> list[str]:
    if was is None or was == now:
        return []
    if now in SETTLED:
        return [f"case.{now}"]
    return ["case.reopened"] if was in SETTLED else []


def signature(secret: bytes, body: bytes) -> str:
    """The X-Helpdeskd-Signature header's value: HMAC-SHA256 of the body, in hex."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def one_line(document: dict) -> str:
    """The readable line a chat room shows (`format = "slack"` or `"matrix"`)."""
    what = document["event"].split(".", 1)[1]
    line = (
        f"{document['reference']} {what}: {document['subject']} "
        f"({document['priority']}, {document['customer'] or 'no customer'}, {document['status']})"
    )
    return f"{line} {document['link']}" if document.get("link") else line
