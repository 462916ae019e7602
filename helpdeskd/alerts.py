"""Operational trouble mailed to `[helpdesk] admins`: once per incident, not once per retry.

An alert must not be lost with the relay it reports on: when the relay does not take it, it goes
by the configured alternative routes (`[alerts]`), and when none takes it either it is logged at
CRITICAL, once, and listed by `helpdeskd outbox`. Alerts leave the outbox before any other mail.
A "resolved" notice is queued only once its alert was sent: when the incident ends while the
alert still waits, neither is sent, and the alert is marked cancelled.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import datetime

import structlog

from helpdeskd.adapters.alert_routes import deliver_elsewhere
from helpdeskd.adapters.outbox import FlushResult
from helpdeskd.adapters.store import ADMIN_KINDS, Incidents, OutboxQueue, Queued, Store
from helpdeskd.config import Config
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail
from helpdeskd.views import shown_rows, table

log = structlog.get_logger("helpdeskd.alerts")


class AdminAlerts:
    def __init__(
        self,
        open_store: Callable[[], Store],
        config: Callable[[], Config],
        wake_delivery: Callable[[], None] = lambda: None,
    ):
        self.open_store = open_store
        self.config = config
        self.wake_delivery = wake_delivery

    def trouble(self, key: str, summary: str, detail: str, now: datetime) -> None:
        log.error("incident", key=key, summary=summary, detail=detail)
        context = {"summary": summary, "detail": detail, "since": now}

        def open_incident(store: Store, config: Config) -> None:
            if Incidents(store).open(key, detail, now):
                self._report(store, config, key, context, now)

        self._write(key, open_incident)

    def recovered(self, key: str, summary: str, now: datetime) -> None:
        def close_incident(store: Store, config: Config) -> None:
            if self._resolve(store, key):
                _queue_admin_mail(store, config, "admin_recovered", {"summary": summary}, now)

        self._write(key, close_incident)

    def notice(self, key: str, summary: str, detail: str, now: datetime) -> None:
        """Something that happened once (a message set aside), not a state that will end: mailed
        like an alert, with no incident to resolve. The caller makes sure it is said once."""
        log.warning("notice", key=key, summary=summary, detail=detail)
        context = {"summary": summary, "detail": detail, "since": now, "once": True}

        def queue_notice(store: Store, config: Config) -> None:
            if not _queue_admin_mail(store, config, "admin_alert", context, now):
                log.critical("admin alert not delivered", key=key, error="no [helpdesk] admins")

        self._write(key, queue_notice)

    def _write(self, key: str, change: Callable[[Store, Config], None]) -> None:
        """One transaction; never raises: an alert that cannot be written is logged, and what
        it reports on goes on (the log line is the alert of last resort)."""
        try:
            store = self.open_store()
            try:
                with store.transaction():
                    change(store, self.config())
            finally:
                store.close()
        except Exception:
            log.critical("admin alert not queued", key=key, exc_info=True)
        self.wake_delivery()

    def _report(self, store: Store, config: Config, key: str, context: dict, now: datetime) -> None:
        if not config.helpdesk.admins:
            log.critical("admin alert not delivered", key=key, error="no [helpdesk] admins")
            return
        if _queue_admin_mail(store, config, "admin_alert", context, now):
            Incidents(store).reported_by(key, OutboxQueue(store).newest("admin_alert"))

    def _resolve(self, store: Store, key: str) -> bool:
        """Close the incident; True when its "resolved" notice is to be sent: only after
        its alert, which may still wait in the outbox (then neither is sent)."""
        incidents, queue = Incidents(store), OutboxQueue(store)
        alert = incidents.alert_of(key)
        if not incidents.close(key):
            return False
        log.info("incident resolved", key=key)
        if alert is None or queue.state(alert) == "sent":  # None: opened by an older version
            return True
        if queue.cancel(alert, "resolved before it could be sent"):
            log.warning("incident resolved before its alert was sent: neither is sent", key=key)
        return False

    def pages_failed(self, result: FlushResult, now: datetime) -> None:
        """Each page_command that failed or hung, once: the page's mail went all the same."""
        for failed in result.pages_failed:
            detail = (
                f"The page's mail was sent; the program [oncall] page_command names was not "
                f"run well for it: {failed.why}.\nThe daemon's log has the details."
            )
            self.notice(f"page_command:{failed.page_id}", failed.summary, detail, now)

    def undelivered(self, result: FlushResult, now: datetime) -> None:
        """Admin alerts the relay did not take in this delivery pass: tried by the other
        routes at their first failure and when given up; CRITICAL when nothing took them.
        Page_commands that failed in it are told too."""
        self.pages_failed(result, now)
        rerouted = [
            (item, given_up)
            for items, given_up in ((result.retried, False), (result.failed, True))
            for item in items
            if item.kind in ADMIN_KINDS and (given_up or item.attempts == 0)
        ]
        if not rerouted:
            return  # the usual pass: no store opened for nothing
        config = self.config()
        store = self.open_store()
        try:
            for item, given_up in rerouted:
                self._reroute(store, config, item, given_up, now)
        finally:
            store.close()

    def _reroute(
        self, store: Store, config: Config, item: Queued, given_up: bool, now: datetime
    ) -> None:
        queue = OutboxQueue(store)
        error = queue.last_error(item.id)
        route = deliver_elsewhere(item, config.alerts) if config.alerts else None
        if route:
            queue.sent_by(item.id, route, now)
            log.error("admin alert sent by another route", outbox_id=item.id, route=route)
            return
        log.critical(
            "admin alert not delivered",
            outbox_id=item.id,
            subject=subject_of(item),
            error=error,
            given_up=given_up,
            see="helpdeskd outbox",
        )


def _queue_admin_mail(
    store: Store, config: Config, template: str, context: dict, now: datetime
) -> bool:
    if not config.helpdesk.admins:
        return False
    mail = Mail(
        template,
        template,
        config.helpdesk.admins,
        context,
        automatic="auto-generated",
        threaded=False,
    )
    return queue_mail(store, config, mail, None, [], None, now) is not None


def subject_of(item: Queued) -> str:
    head = item.raw.split(b"\r\n\r\n", 1)[0]
    return str(email.message_from_bytes(head, policy=email.policy.default)["Subject"] or "")


def incident_report(store: Store, timezone: str) -> str:
    """Open incidents and admin alerts that were not delivered, for `helpdeskd outbox`; empty
    when there are none. Times in the helpdesk's zone, as every command shows them."""
    incidents = [
        {**i, "detail": (i["detail"] or "").split("\n")[0][:80]} for i in Incidents(store).listing()
    ]
    lost = OutboxQueue(store).undelivered_alerts()
    parts = []
    if incidents:
        rows = shown_rows(incidents, ("opened_at",), timezone)
        parts.append("open incidents:\n" + table(rows, ["key", "opened_at", "alert", "detail"]))
    if lost:
        columns = ["id", "kind", "state", "attempts", "created_at", "last_error"]
        rows = shown_rows(lost, ("created_at",), timezone)
        parts.append("admin alerts not delivered:\n" + table(rows, columns))
    return "\n\n".join(parts)
