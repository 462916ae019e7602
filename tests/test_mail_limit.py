"""All mail to one outside address counts against its hourly limit, relays and forwards alike;
our own staff are exempt, so their notifications never stop. On both stores: with several
nodes the counts are the database's."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from helpdeskd import config as configuration
from helpdeskd.adapters.store import open_store
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail
from tests.support import write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def relay(to: str) -> Mail:
    # a person's words, not automatic mail, rendered with a template that needs no case
    return Mail("relay", "admin_recovered", (to,), {"summary": "hello"}, threaded=False)


def test_relays_to_an_outside_address_stop_at_the_hourly_limit(tmp_path, database):
    loaded = configuration.load(write_config(tmp_path))
    config = replace(loaded, policy=replace(loaded.policy, mails_per_hour_per_recipient=3))
    store = open_store(config.helpdesk.database)
    sent = [
        queue_mail(store, config, relay("robot@acme.test"), None, [], None, NOW) for _ in range(5)
    ]
    assert [bool(q) for q in sent] == [True, True, True, False, False]
    staff = [
        queue_mail(store, config, relay("alice@helpdesk.test"), None, [], None, NOW)
        for _ in range(5)
    ]
    assert all(staff)
    later = NOW + timedelta(hours=1, minutes=1)
    assert queue_mail(store, config, relay("robot@acme.test"), None, [], None, later)
