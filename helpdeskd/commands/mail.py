"""Mail in and out: `ingest`, `open`, `sweep`, `outbox`, `requeue`, `announce`."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path

from helpdeskd import announce, exits, quarantine, sweep, views
from helpdeskd.adapters import outbox
from helpdeskd.adapters import store as stores
from helpdeskd.adapters.store import OutboxQueue, Store, StoreUnavailable
from helpdeskd.alerts import AdminAlerts, incident_report
from helpdeskd.commands.context import open_store, read_store
from helpdeskd.config import Config
from helpdeskd.core.autogen import explain
from helpdeskd.core.parse import ParseError, parse
from helpdeskd.exits import Failure
from helpdeskd.pipeline import Processed, authenticate, handle, process


def cmd_ingest(config: Config, args: Namespace) -> int:
    raw = read_message(args.file, config.smtp.max_message_size)
    now = args.now or datetime.now(UTC)
    try:
        store = open_store(config)
    except Failure as exc:  # nothing stored: the MTA retries
        raise Failure(f"not stored: {exc}", exits.TEMPFAIL) from exc
    if args.dry_run:
        return _dry_ingest(store, config, raw, now)
    try:
        spool_id, new = store.spool(raw, source="ingest", now=now)
    except StoreUnavailable as exc:
        raise Failure(f"not stored: {exc}", exits.TEMPFAIL) from exc
    if not new:
        print(f"duplicate: already spooled as {spool_id}")
        return 0
    try:
        result = process(store, config, store.spool_item(spool_id), now)
    except Exception as exc:  # stored: the daemon retries it; exit 0 all the same
        store.failed_attempt(
            spool_id, f"{type(exc).__name__}: {exc}", now, config.policy.max_attempts
        )
        print(f"stored as {spool_id}; processing failed, will be retried: {exc}", file=sys.stderr)
        return 0
    if result.quarantined:
        quarantine.tell_admins_once(config, store, spool_id, now)
    deliver(store, config, now)
    print(_describe(result))
    return 0


def deliver(store: Store, config: Config, now: datetime) -> outbox.FlushResult:
    """The outbox flushed as the daemon's courier does; a page_command that failed in it is
    told to the admins at once, their alert flushed too."""
    result = outbox.flush(store, config.outbound, now, node=config.helpdesk.node)
    if result.pages_failed:
        alerts = AdminAlerts(lambda: stores.open_store(config.helpdesk.database), lambda: config)
        alerts.pages_failed(result, now)
        outbox.flush(store, config.outbound, now, node=config.helpdesk.node)
    return result


def read_message(name: str, limit: int) -> bytes:
    """At most `limit` + 1 bytes are read: a message over the limit is refused (65, which an
    MTA bounces: retrying cannot help) without ever being held whole in memory."""
    if name == "-":
        raw = sys.stdin.buffer.read(limit + 1)
        if len(raw) > limit:
            _drain(sys.stdin.buffer)
    else:
        path = Path(name)
        try:
            with path.open("rb") as file:
                raw = file.read(limit + 1)
        except OSError as exc:
            raise exits.unreadable(path, exc) from exc
    if len(raw) > limit:
        raise Failure(
            f"message refused: larger than [smtp] max_message_size ({limit:,} bytes); "
            "nothing was stored",
            exits.DATAERR,
        )
    return raw


def _drain(stream) -> None:
    """Read the rest and let it go, so an MTA writing to our stdin sees our exit code rather
    than a broken pipe."""
    while stream.read(1 << 16):
        pass


class _Rollback(Exception):
    pass


def _dry_ingest(store: Store, config: Config, raw: bytes, now: datetime) -> int:
    try:
        inbound = parse(raw)
    except ParseError as exc:
        print(json.dumps({"quarantine": str(exc)}, indent=2))
        return 0
    verdict = authenticate(config, "ingest", raw, inbound)  # DNS, outside the write lock
    try:
        with store.transaction():
            result = handle(store, config, inbound, None, now, verdict, dry_run=True)
            raise _Rollback
    except _Rollback:
        pass
    print(
        json.dumps(
            {
                "from": inbound.from_addr,
                "role": result.facts.sender.role,
                "customer": result.facts.sender.customer,
                "plan": result.facts.sender.plan,
                "authentication": result.facts.sender.proof,
                "auto_generated": list(result.facts.auto),
                "auto_rules": explain(result.facts.auto),
                "priority": result.facts.priority,
                "action": result.decision.action,
                "reason": result.decision.reason,
                "reference": result.reference,
                "would_send": list(result.queued),
            },
            indent=2,
        )
    )
    return 0


def _describe(result: Processed) -> str:
    if result.quarantined:
        return f"quarantined: {result.quarantined}"
    if result.skipped:
        return "stored; the daemon processed it"
    ref = f" {result.reference}" if result.reference else ""
    return f"{result.decision.action}{ref}: {result.decision.reason}"


def cmd_sweep(config: Config, args: Namespace) -> int:
    store = open_store(config)
    now = args.now or datetime.now(UTC)
    actions = sweep.run(store, config, now, dry_run=args.dry_run)
    if not args.dry_run:
        deliver(store, config, now)
    if args.json:
        print(json.dumps(actions, indent=2))
    else:
        print(views.table(actions, ["reference", "action", "to"]) if actions else "nothing due")
    return 0


def cmd_outbox(config: Config, args: Namespace) -> int:
    changes = args.flush or args.retry_now or args.retry or args.drop
    store = open_store(config) if changes else read_store(config)
    if store is None:
        print("[]" if args.json else "outbox empty")
        return 0
    queue, now = OutboxQueue(store), datetime.now(UTC)
    if args.drop:
        print(f"dropped {queue.drop(unsent(queue, args.drop))}")
    if args.retry:
        ids = unsent(queue, args.retry)
        print(f"{queue.revive(ids, now) + queue.hasten(now, ids)} message(s) due now")
    if args.retry_now:
        print(f"{queue.hasten(now)} message(s) waiting out a back-off due now")
    if args.flush or args.retry or args.retry_now:
        outbox.take_back(store, config.helpdesk.node, now)
        result = deliver(store, config, now)
        print(
            f"sent {len(result.sent)}, deferred {len(result.retried)}, "
            f"given up {len(result.failed)}"
        )
    rows = queue.waiting()
    if args.json:
        print(json.dumps([views.outbox_json(r) for r in rows], indent=2))
        return 0
    print(
        views.table(
            [views.outbox_text(r, config.helpdesk.timezone) for r in rows],
            [
                "id",
                "reference",
                "kind",
                "recipients",
                "state",
                "attempts",
                "next_try",
                "last_error",
            ],
        )
        if rows
        else "outbox empty"
    )
    incidents = incident_report(store, config.helpdesk.timezone)
    if incidents:
        print("\n" + incidents)
    return 0


def unsent(queue: OutboxQueue, ids: list[int]) -> list[int]:
    """The ids, once each names mail still in the outbox; else nothing is changed."""
    states = queue.states(ids)
    missing = [str(i) for i in ids if states.get(i) not in ("queued", "failed")]
    if missing:
        raise Failure(
            f"no unsent mail {', '.join(missing)} in the outbox (sent, dropped or never there): "
            "`helpdeskd outbox` lists what waits; nothing was changed",
            exits.NOINPUT,
        )
    return ids


def cmd_requeue(config: Config, args: Namespace) -> int:
    if bool(args.ids) == args.all:
        raise Failure("name the spool ids to requeue, or --all (not both)", exits.USAGE)
    store = open_store(config)
    if args.ids:
        quarantined = {row["id"] for row in store.quarantined()}
        missing = [str(i) for i in args.ids if i not in quarantined]
        if missing:
            raise Failure(
                f"no quarantined message {', '.join(missing)}: `helpdeskd cases --quarantined` "
                "lists them; nothing was requeued",
                exits.NOINPUT,
            )
    count = store.requeue(None if args.all else args.ids)
    print(f"{count} message(s) back in the queue")
    return 0


def cmd_announce(config: Config, args: Namespace) -> int:
    try:
        body = args.body.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise Failure(f"cannot read the body {args.body}: {why.lower()}", exits.NOINPUT) from exc
    store, now = open_store(config), datetime.now(UTC)
    chosen = {"customers": args.customers, "plans": args.plans, "dry_run": args.dry_run}
    try:
        done = announce.announce(store, config, args.subject, body, now, **chosen)
    except announce.UnknownSelection as exc:
        raise Failure(str(exc), exits.USAGE) from exc
    if not args.dry_run:
        deliver(store, config, now)
    print(views.table(done, ["customer", "to", "queued"]) if done else "no recipients")
    return 0


def cmd_open(config: Config, args: Namespace) -> int:
    """A case on a customer's behalf, through the whole flow; prints its reference."""
    from helpdeskd.on_behalf import Request, open_for

    body = ""
    if args.body_file is not None:
        try:
            body = args.body_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise exits.unreadable(args.body_file, exc) from exc
        except UnicodeDecodeError as exc:
            raise Failure(
                f"{args.body_file} is not UTF-8 text; no case opened", exits.DATAERR
            ) from exc
    request = Request(args.for_address, args.subject, body, args.priority, args.channel)
    store = open_store(config)
    at = args.at or datetime.now(UTC)
    result = open_for(store, config, request, at)
    deliver(store, config, at)
    if result.decision is None or result.decision.action != "new":
        raise Failure(f"no case opened for {args.for_address}: {_describe(result)}", exits.DATAERR)
    print(result.reference)
    return 0
