"""`helpdeskd [--config PATH] COMMAND`: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from helpdeskd import announce, logs, report, service, sweep, views
from helpdeskd import config as configuration
from helpdeskd.adapters import outbox
from helpdeskd.adapters.store import Cases, OutboxQueue, Ratings, Store, StoreUnavailable
from helpdeskd.config import Config, ConfigError
from helpdeskd.core.parse import ParseError, parse
from helpdeskd.pipeline import Processed, handle, process

EX_TEMPFAIL = 75


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="helpdeskd", description="An email-driven helpdesk daemon.")
    p.add_argument(
        "--config",
        type=Path,
        help="the TOML file (default: $HELPDESKD_CONFIG, else config.example.toml)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="the daemon: listeners, pollers, scheduler, outbox delivery")
    sub.add_parser("check-config", help="validate the configuration, print every problem")
    ingest = sub.add_parser("ingest", help="one raw message through the whole flow")
    ingest.add_argument("file", nargs="?", default="-", help="the message file, or - for stdin")
    _clock_options(ingest, "how it would be classified and routed, writing nothing")
    sw = sub.add_parser("sweep", help="one scheduler pass: warnings, escalations, closings")
    _clock_options(sw, "only list what is due")
    sw.add_argument("--json", action="store_true", help="machine-readable output")
    cases = sub.add_parser("cases", help="list cases")
    cases.add_argument("--status", help="only cases in this status")
    cases.add_argument("--customer", help="only this customer's cases")
    cases.add_argument("--json", action="store_true", help="machine-readable output")
    cases.add_argument(
        "--unrouted",
        action="store_true",
        help="list the messages kept without a case (auto-generated, ignored)",
    )
    cases.add_argument(
        "--quarantined",
        action="store_true",
        help="list the messages that could not be processed, with the reason",
    )
    show = sub.add_parser("show", help="one case: history, routing reasons, SLA clocks")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--full", action="store_true", help="include quoted text and signatures")
    show.add_argument("--now", type=_instant, help="measure the clocks at this time (ISO 8601)")
    rep = sub.add_parser("report", help="SLA compliance per plan, priority and customer")
    rep.add_argument("--since", type=date.fromisoformat, help="cases opened on or after DATE")
    rep.add_argument("--until", type=date.fromisoformat, help="cases opened before DATE")
    rep.add_argument("--format", choices=report.FORMATS, default="table", help="default: table")
    rep.add_argument("--now", type=_instant, help="judge the clocks at this time (ISO 8601)")
    rep.add_argument("--part", choices=report.PARTS, help="only this part (csv, json: default sla)")
    requeue = sub.add_parser("requeue", help="give quarantined messages another try")
    requeue.add_argument(
        "ids",
        nargs="*",
        type=int,
        metavar="ID",
        help="spool ids, as `cases --quarantined` lists them",
    )
    requeue.add_argument("--all", action="store_true", help="every quarantined message")
    box = sub.add_parser("outbox", help="what waits to be sent")
    box.add_argument("--flush", action="store_true", help="deliver what is due now")
    _announce_options(sub.add_parser("announce", help="a notice to customers' contacts"))
    return p


def _announce_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", required=True, help="the subject of the mail")
    p.add_argument("--body", required=True, type=Path, help="a file with the text of the mail")
    p.add_argument("--customers", nargs="+", metavar="C", help="these customers (name or domain)")
    p.add_argument("--plans", nargs="+", metavar="P", help="the customers on these plans")
    p.add_argument("--dry-run", action="store_true", help="list the recipients, send nothing")


def _clock_options(p: argparse.ArgumentParser, dry_help: str) -> None:
    p.add_argument("--now", type=_instant, help="the clock for this command (ISO 8601)")
    p.add_argument("--dry-run", action="store_true", help=dry_help)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure("INFO" if args.command == "run" else "WARNING")
    path = args.config or configuration.default_path()
    try:
        config = configuration.load(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for key, why in exc.problems:
            print(f"  {key}: {why}", file=sys.stderr)
        # nothing was stored: an MTA piping to `ingest` must defer the mail, not bounce it
        return EX_TEMPFAIL if args.command == "ingest" else 1
    return COMMANDS[args.command](config, args)


def cmd_check_config(config: Config, args) -> int:
    print(
        f"{config.path}: OK ({len(config.customers)} customers, {len(config.plans)} plans, "
        f"{len(config.engineers)} engineers, {len(config.imap)} IMAP mailboxes)"
    )
    return 0


def cmd_run(config: Config, args) -> int:
    service.run(config)
    return 0


def cmd_ingest(config: Config, args) -> int:
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    now = args.now or datetime.now(UTC)
    try:
        store = Store.open(config.helpdesk.database)
    except Exception as exc:  # any failure to open is "not stored": the MTA retries
        print(f"not stored: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    if args.dry_run:
        return _dry_ingest(store, config, raw, now)
    try:
        spool_id, new = store.spool(raw, source="ingest", now=now)
    except StoreUnavailable as exc:
        print(f"not stored: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
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
    outbox.flush(store, config.outbound, now)
    print(_describe(result))
    return 0


class _Rollback(Exception):
    pass


def _dry_ingest(store: Store, config: Config, raw: bytes, now: datetime) -> int:
    try:
        inbound = parse(raw)
    except ParseError as exc:
        print(json.dumps({"quarantine": str(exc)}, indent=2))
        return 0
    try:
        with store.transaction():
            result = handle(store, config, inbound, None, now, dry_run=True)
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
                "auto_generated": list(result.facts.auto),
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


def cmd_sweep(config: Config, args) -> int:
    store = Store.open(config.helpdesk.database)
    now = args.now or datetime.now(UTC)
    actions = sweep.run(store, config, now, dry_run=args.dry_run)
    if not args.dry_run:
        outbox.flush(store, config.outbound, now)
    if args.json:
        print(json.dumps(actions, indent=2))
    else:
        print(views.table(actions, ["reference", "action", "to"]) if actions else "nothing due")
    return 0


def cmd_cases(config: Config, args) -> int:
    store = Store.open(config.helpdesk.database)
    if args.quarantined:
        rows = store.quarantined()
        print(
            json.dumps(rows, indent=2)
            if args.json
            else views.table(rows, ["id", "received_at", "source", "message_id", "reason"])
        )
        return 0
    cases = Cases(store)
    if args.unrouted:
        rows = cases.unrouted()
        print(
            json.dumps(rows, indent=2)
            if args.json
            else views.table(rows, ["id", "at", "kind", "from_addr", "subject", "route_reason"])
        )
        return 0
    found = [views.case_summary(c, config) for c in cases.list(args.status, args.customer)]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(
        views.table(
            found, ["reference", "status", "priority", "customer", "plan", "opened_at", "subject"]
        )
    )
    unrouted = len(cases.unrouted())
    if unrouted:
        print(f"\n{unrouted} message(s) kept without a case: helpdeskd cases --unrouted")
    return 0


def cmd_show(config: Config, args) -> int:
    store = Store.open(config.helpdesk.database)
    case = Cases(store).get(args.reference.upper())
    if case is None:
        print(f"no case {args.reference}", file=sys.stderr)
        return 1
    detail = views.case_detail(store, case, config, args.now or datetime.now(UTC), args.full)
    print(json.dumps(detail, indent=2) if args.json else views.show_text(detail))
    return 0


def cmd_report(config: Config, args) -> int:
    since, until = report.window(args.since, args.until, config.helpdesk.timezone)
    store = Store.open(config.helpdesk.database)
    cases = Cases(store).opened_between(since, until)
    ratings = Ratings(store).of_cases([c.id for c in cases])
    parts = {
        "sla": report.compliance(cases, config, args.now or datetime.now(UTC)),
        "satisfaction": report.satisfaction(cases, ratings),
        "fair-use": report.fair_use(cases, config),
    }
    print(report.render_parts(parts, args.format, args.part))
    return 0


def cmd_outbox(config: Config, args) -> int:
    store = Store.open(config.helpdesk.database)
    if args.flush:
        result = outbox.flush(store, config.outbound, datetime.now(UTC))
        print(
            f"sent {len(result.sent)}, deferred {len(result.retried)}, failed {len(result.failed)}"
        )
    rows = OutboxQueue(store).waiting()
    print(
        views.table(
            rows,
            [
                "id",
                "reference",
                "kind",
                "recipients",
                "state",
                "attempts",
                "next_attempt_at",
                "last_error",
            ],
        )
        if rows
        else "outbox empty"
    )
    return 0


def cmd_requeue(config: Config, args) -> int:
    if not args.ids and not args.all:
        print("name the spool ids to requeue, or --all", file=sys.stderr)
        return 2
    count = Store.open(config.helpdesk.database).requeue(None if args.all else args.ids)
    print(f"{count} message(s) back in the queue")
    return 0


def cmd_announce(config: Config, args) -> int:
    try:
        body = args.body.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read the body {args.body}: {exc}", file=sys.stderr)
        return 66
    store, now = Store.open(config.helpdesk.database), datetime.now(UTC)
    chosen = {"customers": args.customers, "plans": args.plans, "dry_run": args.dry_run}
    try:
        done = announce.announce(store, config, args.subject, body, now, **chosen)
    except announce.UnknownSelection as exc:
        print(exc, file=sys.stderr)
        return 64
    if not args.dry_run:
        outbox.flush(store, config.outbound, now)
    print(views.table(done, ["customer", "to", "queued"]) if done else "no recipients")
    return 0


COMMANDS = {
    "run": cmd_run,
    "check-config": cmd_check_config,
    "ingest": cmd_ingest,
    "sweep": cmd_sweep,
    "cases": cmd_cases,
    "show": cmd_show,
    "report": cmd_report,
    "outbox": cmd_outbox,
    "requeue": cmd_requeue,
    "announce": cmd_announce,
}
