"""A quarantined message is told to the admins at once: one mail per incident window, with
the reason, the sender and the command that puts it back (SPEC §7 "Admins hear about
trouble"). The rest of the window's quarantined messages wait in `cases --quarantined`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from helpdeskd.adapters.store import Incidents, Store, open_store
from helpdeskd.alerts import AdminAlerts
from helpdeskd.config import Config

log = structlog.get_logger("helpdeskd.quarantine")

WINDOW = timedelta(hours=1)
PREFIX = "quarantine:"


def incident_key(now: datetime) -> str:
    """The window a moment falls in: a burst of bad mail is one incident, not a hundred."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return f"{PREFIX}{start:%Y-%m-%dT%H:%MZ}"


def tell_admins(alerts: AdminAlerts, store: Store, spool_id: int, now: datetime) -> None:
    """Mail the admins about one quarantined message, unless this window was already told.
    Never raises: the message is safe in the quarantine whatever happens to its alert."""
    try:
        entry = store.quarantined_entry(spool_id)
        if entry is None:
            return
        key = incident_key(now)
        with store.transaction():
            Incidents(store).close_older(PREFIX, key)  # past windows are over
    except Exception:
        log.exception("quarantine alert not prepared", spool_id=spool_id)
        return
    summary = f"message {spool_id} quarantined: {entry['reason']}"
    alerts.trouble(key, summary, detail(entry), now)


def tell_admins_once(config: Config, store: Store, spool_id: int, now: datetime) -> None:
    """The same from a one-off command (`ingest`), which has no running AdminAlerts."""
    alerts = AdminAlerts(lambda: open_store(config.helpdesk.database), lambda: config)
    tell_admins(alerts, store, spool_id, now)


def detail(entry: dict) -> str:
    return "\n".join(
        [
            f"Reason:   {entry['reason']}",
            f"From:     {entry['from'] or '(none)'}",
            f"Subject:  {entry['subject'] or '(none)'}",
            f"Size:     {entry['size']} bytes",
            f"Received: {entry['received_at']} (via {entry['source']})",
            "",
            "Once the cause is fixed, put it back with:",
            f"    helpdeskd requeue {entry['id']}",
            "",
            f"Other messages quarantined within {WINDOW.seconds // 3600} hour of this one are not"
            " mailed one by one: `helpdeskd cases --quarantined` lists them all.",
        ]
    )
