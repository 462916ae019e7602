"""The outbox's delivery and the admins' alerts about it: what the courier does on each turn,
in the courier's process (roles.py) or in-process (a command, a test)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from helpdeskd.adapters import outbox
from helpdeskd.adapters.outbox import FlushResult
from helpdeskd.adapters.store import ADMIN_KINDS, Store
from helpdeskd.alerts import AdminAlerts
from helpdeskd.config import Config, Outbound

# The alerts themselves going out prove nothing about the mail that was given up on.
ADMIN_MAIL = frozenset(ADMIN_KINDS)


class Delivery:
    def __init__(
        self,
        config: Callable[[], Config],
        open_store: Callable[[], Store],
        clock: Callable[[], datetime],
        alerts: AdminAlerts,
    ):
        self.config, self.clock, self.alerts = config, clock, alerts
        self.store = open_store()
        self.kept: outbox.Lanes | None = None  # relay sessions kept from pass to pass

    def lanes(self, outbound: Outbound) -> outbox.Lanes:
        """The kept sessions, made anew when a reload changed `[outbound]`."""
        if self.kept is not None and self.kept.outbound != outbound:
            self.close()
        if self.kept is None:
            self.kept = outbox.Lanes(outbound)
        return self.kept

    def close(self) -> None:
        kept, self.kept = self.kept, None
        if kept is not None:
            kept.close()

    def take_back(self) -> int:
        """At start: whatever a killed courier of this node held is due now, not when its
        lease ends."""
        return outbox.take_back(self.store, self.config().helpdesk.node, self.clock())

    def deliver(self) -> FlushResult:
        """One incident while mail is being given up on, not one alert per message: a relay
        that is down for a day would otherwise bury the admins."""
        config = self.config()
        result = outbox.flush(
            self.store,
            config.outbound,
            self.clock(),
            node=config.helpdesk.node,
            lanes=self.lanes(config.outbound),
        )
        self.alerts.undelivered(result, self.clock())
        if result.failed:
            lines = [
                f"outbox {i.id} ({i.kind}) to {', '.join(i.recipients)}" for i in result.failed
            ]
            self.alerts.trouble(
                "outbox",
                "outgoing mail given up on",
                "Given up after every retry:\n"
                + "\n".join(lines)
                + "\n\n`helpdeskd outbox` lists what failed and why.",
                self.clock(),
            )
        elif any(item.kind not in ADMIN_MAIL for item in result.sent):
            self.alerts.recovered("outbox", "outgoing mail given up on", self.clock())
        return result


def tally(result: FlushResult) -> dict[str, int]:
    """A pass's counts, as the metrics take them (and the courier's process sends them)."""
    return {"sent": len(result.sent), "retried": len(result.retried), "failed": len(result.failed)}
