"""Other systems' ways in: `webhooks` (deliveries and their states) and `token` (the read
API's bearer tokens)."""

from __future__ import annotations

import json
import secrets
from argparse import Namespace
from datetime import UTC, datetime

from helpdeskd import arguments, exits, views
from helpdeskd.adapters import webhooks
from helpdeskd.adapters.store import Deliveries, Tokens
from helpdeskd.commands.context import open_store, read_store
from helpdeskd.config import Config
from helpdeskd.exits import Failure

DELIVERY_COLUMNS = ["id", "event", "reference", "url", "state", "attempts", "next_try", "answer"]


def cmd_webhooks(config: Config, args: Namespace) -> int:
    changes = args.retry or args.drop
    store = open_store(config) if changes else read_store(config)
    if store is None:
        print("[]" if args.json else "no webhook deliveries")
        return 0
    deliveries, now = Deliveries(store), datetime.now(UTC)
    if args.drop:
        print(f"dropped {deliveries.drop(args.drop)}")
    if args.retry:
        print(f"{deliveries.revive(args.retry, now)} delivery(ies) due now")
        print(f"delivered {webhooks.flush(store, config, now)}")
    rows = deliveries.listed()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    tz = config.helpdesk.timezone
    shown = [
        {**r, "next_try": waiting(r), "answer": r["last_error"] or ""}
        for r in views.shown_rows(rows, ("next_attempt_at",), tz)
    ]
    print(views.table(shown, DELIVERY_COLUMNS) if rows else "no webhook deliveries")
    return 0


def waiting(row: dict) -> str:
    return row["next_attempt_at"] if row["state"] == "queued" else ""


def cmd_token(config: Config, args: Namespace) -> int:
    if args.action == "list":
        store = read_store(config)
        rows = Tokens(store).listed() if store else []
        columns = ["name", "customer", "created_at", "revoked_at"]
        print(views.table(rows, columns) if rows else "no tokens")
        return 0
    if not args.name:
        raise Failure(f"token {args.action}: name the token", exits.USAGE)
    if args.action == "revoke":
        if args.customer:
            raise Failure("token revoke takes no --customer", exits.USAGE)
        if not Tokens(open_store(config)).revoke(args.name, datetime.now(UTC)):
            why = f"no live token named {args.name!r}: `helpdeskd token list`"
            raise Failure(why, exits.NOINPUT)
        print(f"token {args.name} revoked")
        return 0
    return create_token(config, args.name, args.customer)


def create_token(config: Config, name: str, customer_text: str | None) -> int:
    from helpdeskd.adapters.api import token_hash  # one hash, the API's own

    customer = arguments.customer(config, customer_text) if customer_text else None
    store = open_store(config)
    token = "hdk_" + secrets.token_urlsafe(32)
    if not Tokens(store).create(name, token_hash(token), customer, datetime.now(UTC)):
        raise Failure(f"a token named {name!r} exists already: choose another name", exits.USAGE)
    print(f"token {name} for {customer or 'every customer'}; shown this once, keep it safe:")
    print(token)
    return 0
