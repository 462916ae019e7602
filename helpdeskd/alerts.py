"""Operational trouble mailed to `[helpdesk] admins`: once per incident, not once per retry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from helpdeskd.adapters.store import Incidents, Store
from helpdeskd.config import Config
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail

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
        self._mail(
            key,
            "admin_alert",
            {"summary": summary, "detail": detail, "since": now},
            now,
            opening=True,
        )

    def recovered(self, key: str, summary: str, now: datetime) -> None:
        self._mail(key, "admin_recovered", {"summary": summary}, now, opening=False)

    def _mail(self, key: str, template: str, context: dict, now: datetime, opening: bool) -> None:
        """Never raises: an alert that cannot be written is logged, and what it reports on goes
        on (the log line above is the alert of last resort)."""
        try:
            self._queue(key, template, context, now, opening)
        except Exception:
            log.exception("admin alert not queued", key=key)

    def _queue(self, key: str, template: str, context: dict, now: datetime, opening: bool) -> None:
        config = self.config()
        store = self.open_store()
        try:
            with store.transaction():
                incidents = Incidents(store)
                changed = (
                    incidents.open(key, context.get("detail", ""), now)
                    if opening
                    else incidents.close(key)
                )
                if changed and not opening:
                    log.info("incident resolved", key=key)
                if changed and config.helpdesk.admins:
                    mail = Mail(
                        template,
                        template,
                        config.helpdesk.admins,
                        context,
                        automatic="auto-generated",
                        threaded=False,
                    )
                    queue_mail(store, config, mail, None, [], None, now)
        finally:
            store.close()
        self.wake_delivery()
