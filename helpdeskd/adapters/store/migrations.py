"""The schema, built by registered migrations: each runs once, in order, in its own
transaction, so a database made by an older helpdeskd upgrades in place."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from helpdeskd.adapters.store.dialect import POSTGRESQL, SQLITE, Dialect

migrations = Migrations("helpdeskd")


def _dialect(db) -> Dialect:
    """Whose schema a migration builds: an SQLite file's, or PostgreSQL's (postgres_schema)."""
    return SQLITE if isinstance(db, sqlite_utils.Database) else POSTGRESQL


@migrations()
def m001_spool(db: sqlite_utils.Database) -> None:
    db["spool"].create(
        {
            "id": int,
            "received_at": str,
            "source": str,
            "envelope_from": str,
            "recipients": str,
            "message_id": str,
            "dedup_key": str,
            "raw": bytes,
            "state": str,
            "attempts": int,
            "reason": str,
            "processed_at": str,
        },
        pk="id",
        not_null={"raw", "state", "dedup_key"},
        defaults={"state": "new", "attempts": 0},
    )
    db["spool"].create_index(["dedup_key"], unique=True)
    db["spool"].create_index(["state"])


@migrations()
def m002_cases(db: sqlite_utils.Database) -> None:
    db["sequences"].create({"prefix": str, "year": int, "last": int}, pk=("prefix", "year"))
    db["cases"].create(
        {
            "id": int,
            "reference": str,
            "status": str,
            "priority": str,
            "customer": str,
            "plan": str,
            "subject": str,
            "opener": str,
            "contacts": str,
            "assignee": str,
            "opened_at": str,
            "updated_at": str,
            "first_response_at": str,
            "closed_at": str,
            "escalation_level": int,
            "related": str,
        },
        pk="id",
        not_null={"reference", "status", "priority", "plan"},
        defaults={"escalation_level": 0},
    )
    db["cases"].create_index(["reference"], unique=True)
    db["cases"].create_index(["status"])
    db["messages"].create(
        {
            "id": int,
            "case_id": int,
            "direction": str,
            "kind": str,
            "from_addr": str,
            "to_addrs": str,
            "subject": str,
            "at": str,
            "message_id": str,
            "body": str,
            "elided": str,
            "attachments": str,
            "route_reason": str,
            "spool_id": int,
            "outbox_id": int,
            "status": str,
        },
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["messages"].create_index(["message_id"])
    db["messages"].create_index(["case_id"])
    db["events"].create(
        {"id": int, "case_id": int, "at": str, "kind": str, "detail": str},
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["events"].create_index(["case_id"])


@migrations()
def m003_outbox(db: sqlite_utils.Database) -> None:
    db["outbox"].create(
        {
            "id": int,
            "case_id": int,
            "kind": str,
            "message_id": str,
            "mail_from": str,
            "recipients": str,
            "raw": bytes,
            "state": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
            "automatic": int,
        },
        pk="id",
        not_null={"raw", "state"},
        defaults={"state": "queued", "attempts": 0},
    )
    db["outbox"].create_index(["state", "next_attempt_at"])
    db["outbox"].create_index(["created_at"])
    db["auto_sent"].create({"id": int, "recipient": str, "at": str}, pk="id")
    db["auto_sent"].create_index(["recipient", "at"])


@migrations()
def m004_imap(db: sqlite_utils.Database) -> None:
    db["imap_state"].create({"mailbox": str, "uidvalidity": int, "last_uid": int}, pk="mailbox")
    db["incidents"].create(
        {"key": str, "opened_at": str, "reported_at": str, "detail": str}, pk="key"
    )


@migrations()
def m005_clocks(db: sqlite_utils.Database) -> None:
    """SLA clocks as columns: the scheduler asks "what is due at now?" of one index."""
    cases = db["cases"]
    for column, kind in [
        ("fr_target", str),
        ("fr_deadline", str),
        ("fr_warn_at", str),
        ("fr_met_at", str),
        ("res_target", str),
        ("res_deadline", str),
        ("res_warn_at", str),
        ("res_met_at", str),
        ("clock_calendar", str),
        ("waiting_since", str),
        ("paused_minutes", int),
        ("notices", str),
        ("next_due", str),
    ]:
        cases.add_column(column, kind)
    cases.create_index(["next_due"])


@migrations()
def m006_spool_retry(db: sqlite_utils.Database) -> None:
    """A message that failed waits before its next try instead of burning its tries at once."""
    db["spool"].add_column("next_try_at", str)


@migrations()
def m007_mail_sent(db: sqlite_utils.Database) -> None:
    """Every mail to an outside address, not only automatic mail, counts against its limit."""
    db["mail_sent"].create({"id": int, "recipient": str, "at": str}, pk="id")
    db["mail_sent"].create_index(["recipient", "at"])


@migrations()
def m008_incident_alert(db: sqlite_utils.Database) -> None:
    """Which outbox message reported an incident: its "resolved" notice goes only after it."""
    db["incidents"].add_column("alert_outbox_id", int)


@migrations()
def m009_heartbeats(db: sqlite_utils.Database) -> None:
    """When the daemon last did each periodic job (the sweep, a mailbox poll), for `status`."""
    db["heartbeats"].create({"name": str, "at": str}, pk="name")


@migrations()
def m010_sender_authentication(db: sqlite_utils.Database) -> None:
    """Who connected (for SPF) and what helpdeskd's own check found, kept with the raw mail;
    each inbound message keeps the results `show` prints."""
    for column in ("peer_ip", "helo", "auth_results"):
        db["spool"].add_column(column, str)
    db["messages"].add_column("auth", str)


@migrations()
def m011_customer_service(db: sqlite_utils.Database) -> None:
    """Satisfaction ratings, one per case; and mail that goes once per key (a monthly report,
    the forward of an unauthorised sender's mail), recorded so it never goes twice."""
    db["ratings"].create(
        {"case_id": int, "score": int, "comment": str, "by_addr": str, "at": str},
        pk="case_id",
        foreign_keys=[("case_id", "cases", "id")],
    )
    db["ratings"].create_index(["at"])
    db["sent_once"].create({"key": str, "at": str}, pk="key")


@migrations()
def m012_hot_path_indexes(db: sqlite_utils.Database) -> None:
    """Each delivery marks its message by `outbox_id`, and every new mail counts its sender's
    recent cases: without these both scan tables that grow by the year."""
    db["messages"].create_index(["outbox_id"])
    db["cases"].create_index(["opener", "opened_at"])


@migrations()
def m013_status_page(db: sqlite_utils.Database) -> None:
    """Sign-in links are kept as hashes: a copy of the database signs nobody in."""
    db["web_links"].create(
        {"token_hash": str, "address": str, "created_at": str, "expires_at": str, "used_at": str},
        pk="token_hash",
    )
    db["web_requests"].create({"id": int, "key": str, "at": str}, pk="id")
    db["web_requests"].create_index(["key", "at"])
    db["web_requests"].create_index(["at"])  # forgetting old counts reads no more than those
    db["web_links"].create_index(["expires_at"])
    # the status page lists a customer's cases (a contact's own use opener, opened_at)
    db["cases"].create_index(["customer"])


@migrations()
def m014_web_sessions(db: sqlite_utils.Database) -> None:
    """Status page sessions, kept as hashes of their cookie's nonce: sign-out, `web sign-out`
    and a role taken away end them here, and a copied cookie with them."""
    db["web_sessions"].create(
        {"nonce_hash": str, "address": str, "role": str, "created_at": str, "expires_at": str},
        pk="nonce_hash",
    )
    db["web_sessions"].create_index(["address"])
    db["web_sessions"].create_index(["expires_at"])


@migrations()
def m015_outbox_lease_owner(db: sqlite_utils.Database) -> None:
    """Who holds a message being delivered (node and process): a courier that restarts takes
    back at once what its dead predecessor held, instead of waiting out the lease."""
    db["outbox"].add_column("leased_by", str)


@migrations()
def m016_case_clocks(db: sqlite_utils.Database) -> None:
    """Any number of clocks per case, one row each, in the plan's order; the tier a case is
    with and who follows it. The fr_/res_ columns of older versions stay, read for a case until
    its clocks are first saved here (Cases reads them then), so the upgrade rewrites nothing."""
    db["case_clocks"].create(
        {
            "case_id": int,
            "name": str,
            "ordinal": int,
            "target": str,
            "calendar": str,
            "starts": str,
            "stops": str,
            "started_at": str,
            "deadline": str,
            "warn_at": str,
            "met_at": str,
            "paused_minutes": int,
            "agreed_by": str,
            "agreed_at": str,
        },
        pk=("case_id", "name"),
        foreign_keys=[("case_id", "cases", "id")],
        not_null={"name", "target"},
        defaults={"paused_minutes": 0},
    )
    db["cases"].add_column("tier", int)
    db["cases"].add_column("followers", str)


@migrations()
def m017_participants(db: sqlite_utils.Database) -> None:
    """The people a customer copied on a case, as a JSON list beside `contacts`."""
    db["cases"].add_column("participants", str)


@migrations()
def m018_merges(db: sqlite_utils.Database) -> None:
    """A case folded into another (`#merge`) names it, so its reference threads there for ever;
    each merge keeps what it moved, so `#unmerge` can put it back."""
    db["cases"].add_column("merged_into", str)
    db["merges"].create(
        {
            "id": int,
            "folded_id": int,
            "surviving_id": int,
            "at": str,
            "by_addr": str,
            "moved": str,  # JSON: message and event ids, contacts and participants added
            "undone_at": str,
        },
        pk="id",
    )
    db["merges"].create_index(["surviving_id", "at"])


@migrations()
def m019_nodes_and_leases(db: sqlite_utils.Database) -> None:
    """Several nodes on one database: each node's heartbeat, and the leases that let one node
    at a time run the sweep and each IMAP mailbox (taken over once a holder stops renewing)."""
    db["nodes"].create({"name": str, "pid": int, "started_at": str, "heartbeat": str}, pk="name")
    db["leases"].create(
        {"name": str, "holder": str, "taken_at": str, "heartbeat": str, "expires_at": str},
        pk="name",
        not_null={"holder", "expires_at"},
    )


@migrations()
def m020_integrations(db: sqlite_utils.Database) -> None:
    """Webhook deliveries, queued in the transaction of the change they tell of; and the read
    API's tokens, kept as hashes like the sign-in links."""
    db["webhook_deliveries"].create(
        {
            "id": int,
            "url": str,
            "event": str,
            "reference": str,
            "body": bytes,
            "state": str,
            "attempts": int,
            "next_attempt_at": str,
            "created_at": str,
            "delivered_at": str,
            "last_error": str,
        },
        pk="id",
        not_null={"url", "body", "state"},
        defaults={"state": "queued", "attempts": 0},
    )
    db["webhook_deliveries"].create_index(["state", "next_attempt_at"])
    db["webhook_deliveries"].create_index(["url", "reference", "state"])
    db["webhook_deliveries"].create_index(["state", "delivered_at"])  # forgetting old ones
    db["api_tokens"].create(
        {"name": str, "token_hash": str, "customer": str, "created_at": str, "revoked_at": str},
        pk="name",
        not_null={"token_hash"},
    )
    db["api_tokens"].create_index(["token_hash"], unique=True)


@migrations()
def m021_case_category(db: sqlite_utils.Database) -> None:
    """The category an engineer gives a case (#category), counted by the reports."""
    db["cases"].add_column("category", str)


@migrations()
def m022_reminders_and_time(db: sqlite_utils.Database) -> None:
    """Engineers' reminders, sent once by the sweep (`sent_at` set in the same transaction as
    their mail), and the time they spent on cases, reported by period."""
    db["reminders"].create(
        {
            "id": int,
            "case_id": int,
            "recipient": str,
            "due_at": str,
            "set_by": str,
            "set_at": str,
            "sent_at": str,
        },
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
        not_null={"recipient", "due_at"},
    )
    db["reminders"].create_index(["sent_at", "due_at"])
    db["reminders"].create_index(["case_id"])
    db["time_spent"].create(
        {"id": int, "case_id": int, "engineer": str, "minutes": int, "at": str},
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
        not_null={"engineer", "minutes", "at"},
    )
    db["time_spent"].create_index(["case_id"])
    db["time_spent"].create_index(["at"])


@migrations()
def m023_search(db: sqlite_utils.Database) -> None:
    """The texts `search` reads, one row per message's subject and body and per text-like
    attachment, under each store's trigram index (dialect.search_schema); the messages kept
    so far are indexed here, their attachments from the next mail on."""
    db["search_texts"].create(
        {"id": int, "case_id": int, "message_id": int, "part": str, "body": str},
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
        not_null={"case_id", "part", "body"},
    )
    db["search_texts"].create_index(["case_id"])
    db["cases"].create_index(["opened_at"])  # search --since finds its first case at once
    for statement in _dialect(db).search_schema:
        db.execute(statement)
    db.execute(
        "INSERT INTO search_texts (case_id, message_id, part, body) "
        "SELECT case_id, id, 'message', coalesce(subject, '') || ' ' || coalesce(body, '') "
        "FROM messages WHERE direction = 'in' AND case_id IS NOT NULL "
        "AND kind != 'command_error' ORDER BY id"
    )


@migrations()
def m024_pages(db: sqlite_utils.Database) -> None:
    """On-call pages: whom, when, until when they have to answer; `acked_at` when someone
    did, `settled_at` when the sweep paged the next person or escalated instead."""
    db["pages"].create(
        {
            "id": int,
            "case_id": int,
            "person": str,
            "step": int,
            "paged_at": str,
            "ack_by": str,
            "acked_at": str,
            "settled_at": str,
        },
        pk="id",
        foreign_keys=[("case_id", "cases", "id")],
        not_null={"person", "paged_at", "ack_by"},
    )
    db["pages"].create_index(["settled_at", "acked_at", "ack_by"])
    db["pages"].create_index(["case_id"])


@migrations()
def m025_page_commands(db: sqlite_utils.Database) -> None:
    """`[oncall] page_command` for a page: its arguments (JSON), `command_state` "due" until
    a courier takes it ("running"), then "ran" or "failed" with `command_result`."""
    for column in ("command", "command_state", "command_result"):
        db["pages"].add_column(column, str)
    db["pages"].create_index(["command_state"])


@migrations()
def m026_search_catches_up(db: sqlite_utils.Database) -> None:
    """SQLite's search index takes a mail's texts after the commit that applies it, not inside
    it (dialect.search_lag_schema): it holds every text so far, and records so. PostgreSQL's
    trigram index stays the server's business: nothing changes there."""
    for statement in _dialect(db).search_lag_schema:
        db.execute(statement)
