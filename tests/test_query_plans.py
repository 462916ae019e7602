"""Every statement the daemon runs on its hot paths finds its rows through an index.

The statements are not listed by hand: a real flow (mail spooled and processed into cases,
replies by tag and by In-Reply-To, a bounce, a sweep, delivery, a quarantine and a requeue) runs
against a real SQLite file with a trace on the connection, and `EXPLAIN QUERY PLAN` is asked of
each statement it ran. A SCAN of a table that grows with the years fails the test: at a year's
volume such a scan costs a hundred milliseconds, under the write lock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd import sweep
from helpdeskd.adapters import outbox, webhooks
from helpdeskd.adapters.store import Cases, Store, Tokens
from helpdeskd.pipeline import process
from tests.support import mail, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
GROWING = {
    "cases",
    "case_clocks",
    "messages",
    "outbox",
    "spool",
    "events",
    "auto_sent",
    "mail_sent",
    "ratings",
    "sent_once",
    "web_links",
    "web_requests",
    "webhook_deliveries",
    "api_tokens",
}
SCAN = re.compile(r"\bSCAN (\w+)")


def traced_flow(tmp_path: Path) -> list[str]:
    # a hook nobody answers: its deliveries are queued, tried and retried
    hook = '[[webhooks]]\nurl = "http://127.0.0.1:9/hook"\n'
    config = configuration.load(write_config(tmp_path, auto_limit=1000, extra=hook))
    store = Store.open(config.helpdesk.database)
    look = Store(config.helpdesk.database)  # the test's own questions stay out of the trace
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)

    def arrive(message, now=NOW) -> None:
        spool_id, _ = store.spool(message.as_bytes(), source="smtp", now=now)
        process(store, config, store.spool_item(spool_id), now)

    arrive(mail("jane@acme.test", "Portal down", "It is down."))
    reference = Cases(look).list()[0].reference
    arrive(mail("jane@acme.test", f"Re: [{reference}] Portal down", "Still down."))
    ack = look.row("SELECT message_id FROM messages WHERE direction = 'out'")["message_id"]
    reply = mail("jane@acme.test", "Re: no tag", "By threading.")
    reply["In-Reply-To"] = f"<{ack}>"
    arrive(reply)
    bounce = mail("mailer-daemon@acme.test", "Undelivered Mail Returned to Sender", "gone")
    bounce["Auto-Submitted"] = "auto-replied"
    bounce["In-Reply-To"] = f"<{ack}>"
    arrive(bounce)
    store.pending(NOW)
    outbox.flush(store, config.outbound, NOW)
    webhooks.flush(store, config, NOW)
    Tokens(store).find("0" * 64)
    sweep.run(store, config, NOW + timedelta(days=10))
    spool_id, _ = store.spool(b"not a mail", source="smtp", now=NOW)
    store.quarantine(spool_id, "test", NOW)
    store.quarantined()
    store.requeue([spool_id])
    Cases(store).due(NOW)
    store.close()
    look.close()
    return statements


def scans(store: Store, statement: str) -> list[str]:
    plan = store.rows(f"EXPLAIN QUERY PLAN {statement}")
    return [
        row["detail"]
        for row in plan
        if (found := SCAN.search(row["detail"])) and found.group(1) in GROWING
    ]


def test_no_hot_statement_scans_a_growing_table(tmp_path: Path):
    statements = traced_flow(tmp_path)
    kinds = {s.split(None, 1)[0].upper() for s in statements}
    assert {"SELECT", "INSERT", "UPDATE"} <= kinds  # the trace saw the flow
    store = Store(tmp_path / "helpdesk.db")
    checked = sorted({s for s in statements if re.match(r"\s*(SELECT|UPDATE|DELETE)", s, re.I)})
    found = {s: plan for s in checked if (plan := scans(store, s))}
    assert not found, "\n".join(f"{plan}: {s}" for s, plan in found.items())
    assert len(checked) > 15
