"""`helpdeskd [--config PATH] COMMAND`: parse arguments, call the library, print.

Every expected failure is raised as `exits.Failure` and printed by `main` as one line with its
sysexits code; anything else is a bug, shown in one line too unless `--debug` asks for the
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from helpdeskd import (
    __version__,
    announce,
    arguments,
    backup,
    exits,
    health,
    logs,
    migrate,
    paths,
    quarantine,
    report,
    retention,
    service,
    sweep,
    views,
)
from helpdeskd import config as configuration
from helpdeskd.adapters import outbox
from helpdeskd.adapters import store as stores
from helpdeskd.adapters.store import (
    SQLITE,
    Cases,
    Database,
    DatabaseUrl,
    OutboxQueue,
    Ratings,
    Store,
    StoreUnavailable,
    unavailable,
)
from helpdeskd.alerts import incident_report
from helpdeskd.config import PRIORITIES, Config, ConfigError
from helpdeskd.core.autogen import explain
from helpdeskd.core.parse import ParseError, parse
from helpdeskd.exits import Failure
from helpdeskd.files import exposed, make_private
from helpdeskd.model import STATUSES
from helpdeskd.pipeline import Processed, authenticate, handle, process

# shtab's file completion, named here so the parser is built without importing shtab
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
NO_CONFIG = {"completion"}  # commands that run without reading the configuration


class Parser(argparse.ArgumentParser):
    """A usage mistake is one line and exit 64, not argparse's usage block and exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "cases"; "" for helpdeskd itself
        message = message.removeprefix("argument ")
        if command:
            message = f"{command} {message}" if message.startswith("-") else f"{command}: {message}"
        raise Failure(f"{message}; see `{self.prog} --help`", exits.USAGE)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="helpdeskd", description="An email-driven helpdesk daemon.")
    p.add_argument(
        "--config",
        type=Path,
        help="the TOML file (default: $HELPDESKD_CONFIG, else /etc/helpdeskd/helpdeskd.toml, "
        "else ./config.example.toml)",
    ).complete = FILE
    p.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    p.add_argument("--version", action="version", version=f"helpdeskd {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="the daemon: listeners, pollers, scheduler, outbox delivery")
    sub.add_parser("check-config", help="validate the configuration, print every problem")
    ingest = sub.add_parser("ingest", help="one raw message through the whole flow")
    ingest.add_argument(
        "file", nargs="?", default="-", help="the message file, or - for stdin"
    ).complete = FILE
    _clock_options(ingest, "how it would be classified and routed, writing nothing")
    sw = sub.add_parser("sweep", help="one scheduler pass: warnings, escalations, closings")
    _clock_options(sw, "only list what is due")
    sw.add_argument("--json", action="store_true", help="machine-readable output")
    cases = sub.add_parser("cases", help="list cases")
    # choices beside the type: the type's message for a mistake, the list for completion
    cases.add_argument(
        "--status",
        type=arguments.status,
        choices=STATUSES,
        metavar="STATUS",
        help="only cases in this status",
    )
    cases.add_argument(
        "--priority",
        type=arguments.priority,
        choices=PRIORITIES,
        metavar="P",
        help="only cases of this priority",
    )
    cases.add_argument("--plan", help="only cases on this plan")
    cases.add_argument(
        "--customer", help="only this customer's cases: its name (any case) or a domain"
    )
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
    show.add_argument("--now", type=arguments.instant, help="measure the clocks at this time")
    rep = sub.add_parser("report", help="SLA compliance per plan, priority and customer")
    rep.add_argument("--since", type=arguments.day, help="cases opened on or after DATE")
    rep.add_argument("--until", type=arguments.day, help="cases opened before DATE")
    rep.add_argument("--format", choices=report.FORMATS, default="table", help="default: table")
    rep.add_argument("--now", type=arguments.instant, help="judge the clocks at this time")
    rep.add_argument("--part", choices=report.PARTS, help="only this part (csv, json: default sla)")
    requeue = sub.add_parser("requeue", help="give quarantined messages another try")
    requeue.add_argument(
        "ids",
        nargs="*",
        type=arguments.number("a message", "helpdeskd cases --quarantined"),
        metavar="ID",
        help="spool ids, as `cases --quarantined` lists them",
    )
    requeue.add_argument("--all", action="store_true", help="every quarantined message")
    box = sub.add_parser("outbox", help="what waits to be sent")
    box.add_argument("--flush", action="store_true", help="deliver what is due now")
    box.add_argument(
        "--retry-now",
        action="store_true",
        help="try at once what waits out a back-off after a failed try (implies --flush)",
    )
    outbox_id = arguments.number("an outbox", "helpdeskd outbox")
    box.add_argument(
        "--retry",
        nargs="+",
        type=outbox_id,
        metavar="ID",
        help="try these again now, given up on or not (then flush)",
    )
    box.add_argument(
        "--drop", nargs="+", type=outbox_id, metavar="ID", help="remove unsent mail for good"
    )
    box.add_argument("--json", action="store_true", help="machine-readable output")
    _announce_options(sub.add_parser("announce", help="a notice to customers' contacts"))
    _ops_commands(sub)
    comp = sub.add_parser("completion", help="print the shell completion script")
    comp.add_argument("shell", choices=("bash", "zsh"), help="bash or zsh")
    return p


def _ops_commands(sub) -> None:
    status = sub.add_parser("status", help="health: listener, mailboxes, backlogs, last sweep")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    copy = sub.add_parser("backup", help="a consistent copy of the live database")
    copy.add_argument("dest", type=Path, help="the copy's file name, or a folder for a dated one")
    move = sub.add_parser("migrate", help="copy the helpdesk from SQLite into PostgreSQL")
    move.add_argument(
        "--to", required=True, metavar="URL", help="an empty database: postgresql://USER@HOST/DB"
    )
    purge = sub.add_parser("purge", help="remove raw mail of cases closed long ago")
    purge.add_argument(
        "--older-than",
        required=True,
        type=_days,
        metavar="DAYS",
        help='cases closed more than this long ago, in days ("365d" or 365)',
    )


def _announce_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", required=True, help="the subject of the mail")
    p.add_argument("--body", required=True, type=Path, help="a file with the text of the mail")
    p.add_argument("--customers", nargs="+", metavar="C", help="these customers (name or domain)")
    p.add_argument("--plans", nargs="+", metavar="P", help="the customers on these plans")
    p.add_argument("--dry-run", action="store_true", help="list the recipients, send nothing")


def _clock_options(p: argparse.ArgumentParser, dry_help: str) -> None:
    p.add_argument("--now", type=arguments.instant, help="the clock for this command")
    p.add_argument("--dry-run", action="store_true", help=dry_help)


def _days(text: str) -> timedelta:
    days = configuration.retention_days(text if text.rstrip().endswith("d") else f"{text}d")
    if days is None:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}")
    return timedelta(days=days)


def main(argv: list[str] | None = None) -> int:
    make_private()  # before anything is created: customer mail is in those files
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(argv)
    except Failure as exc:
        if "--debug" in argv:
            traceback.print_exc()
        print(f"helpdeskd: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130  # the shell's code for Ctrl-C; the admin knows why
    except BrokenPipeError:  # `helpdeskd cases | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if "--debug" in argv:
            raise
        print(f"helpdeskd: {unexpected(exc)}", file=sys.stderr)
        return exits.TEMPFAIL if _busy(exc) else exits.SOFTWARE


def unexpected(exc: Exception) -> str:
    if _busy(exc):
        return f"the database is busy or out of reach ({exc}): try again in a moment"
    return (
        f"unexpected error ({type(exc).__name__}: {exc}); "
        "run again with --debug to see where, and please report it"
    )


def _busy(exc: Exception) -> bool:
    return unavailable(exc)


def dispatch(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logs.configure("INFO" if args.command == "run" else "WARNING")
    config = None
    if args.command not in NO_CONFIG:
        config = load_config(args.config, args.command)
        arguments.settle(args, config.helpdesk.timezone)
    return COMMANDS[args.command](config, args)


def load_config(given: Path | None, command: str) -> Config:
    """The configuration, or one failure naming the file; `ingest` asks the MTA to retry
    (75): nothing was stored, and the admin will fix the file."""
    code = exits.TEMPFAIL if command == "ingest" else exits.CONFIG
    path = (given or configuration.default_path()).absolute()
    if given is None and not path.exists():
        raise Failure(
            f"no configuration: HELPDESKD_CONFIG is not set and neither "
            f"{configuration.SYSTEM_CONFIG} nor {path} exists; give --config PATH",
            code,
        )
    if path.is_dir():
        raise Failure(f"the configuration {path} is a folder: name the TOML file", code)
    try:
        return configuration.load(path)
    except ConfigError as exc:
        raise Failure(config_problems(path, exc), code) from exc


def config_problems(path: Path, exc: ConfigError) -> str:
    if len(exc.problems) == 1:
        key, why = exc.problems[0]
        if key == "(file)":  # the file as a whole: cannot be read, or not TOML
            return why if str(path) in why else f"{path}: {why}"
        return f"{path}: {key}: {why}"
    lines = [f"{path}: {len(exc.problems)} problems"]
    return "\n".join(lines + [f"  {key}: {why}" for key, why in exc.problems])


def open_store(config: Config, database: Path | DatabaseUrl | None = None) -> Store:
    """The configured store (or `database`), or one failure naming it."""
    database = database or config.helpdesk.database
    try:
        return stores.open_store(database)
    except (OSError, StoreUnavailable, *Database.errors) as exc:
        raise exits.database_failure(database, exc, config.path) from exc


def cmd_check_config(config: Config, args) -> int:
    problems = paths.problems(config)
    if problems:
        print(f"{config.path}: {len(problems)} problem(s)", file=sys.stderr)
        for key, why in problems:
            print(f"  {key}: {why}", file=sys.stderr)
        return 1
    print(
        f"{config.path}: OK ({len(config.customers)} customers, {len(config.plans)} plans, "
        f"{len(config.engineers)} engineers, {len(config.imap)} IMAP mailboxes)"
    )
    for problem in exposed(config.helpdesk.database):
        print(f"warning: {problem} (chmod go-rwx)", file=sys.stderr)
    for key, why in configuration.warnings(config):
        print(f"  warning: {key}: {why}", file=sys.stderr)
    return 0


def cmd_run(config: Config, args) -> int:
    open_store(config).close()  # a database that cannot open is said here, in one line
    try:
        service.run(config)
    except service.CannotStart as exc:
        raise Failure(str(exc), exits.UNAVAILABLE) from exc
    return 0


def cmd_ingest(config: Config, args) -> int:
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
    outbox.flush(store, config.outbound, now)
    print(_describe(result))
    return 0


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


def cmd_sweep(config: Config, args) -> int:
    store = open_store(config)
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
    store = open_store(config)
    tz = config.helpdesk.timezone
    if args.quarantined:
        rows = store.quarantined()
        print(
            json.dumps(rows, indent=2)
            if args.json
            else views.table(
                views.shown_rows(rows, ("received_at",), tz),
                ["id", "received_at", "from", "subject", "size", "reason"],
            )
        )
        return 0
    cases = Cases(store)
    if args.unrouted:
        rows = cases.unrouted()
        print(
            json.dumps(rows, indent=2)
            if args.json
            else views.table(
                views.shown_rows(rows, ("at",), tz),
                ["id", "at", "kind", "from_addr", "subject", "route_reason"],
            )
        )
        return 0
    found = [views.case_summary(c, config) for c in chosen_cases(cases, config, args)]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(
        views.table(
            views.shown_rows(found, ("opened_at",), tz),
            ["reference", "status", "priority", "customer", "plan", "opened_at", "subject"],
        )
    )
    unrouted = len(cases.unrouted())
    if unrouted:
        print(f"\n{unrouted} message(s) kept without a case: helpdeskd cases --unrouted")
    return 0


def chosen_cases(cases: Cases, config: Config, args) -> list:
    """The cases the filters name, each filter checked against what exists first."""
    customer = args.customer and arguments.customer(config, args.customer, cases.customers())
    plan = args.plan and arguments.plan(config, args.plan)
    return [
        c
        for c in cases.list(args.status, customer or None)
        if args.priority in (None, c.priority) and plan in (None, c.plan)
    ]


def cmd_show(config: Config, args) -> int:
    store = open_store(config)
    case = Cases(store).get(args.reference.strip().upper())
    if case is None:
        raise Failure(f"no case {args.reference}: `helpdeskd cases` lists them", exits.NOINPUT)
    detail = views.case_detail(store, case, config, args.now or datetime.now(UTC), args.full)
    print(
        json.dumps(detail, indent=2)
        if args.json
        else views.show_text(detail, config.helpdesk.timezone)
    )
    return 0


def cmd_report(config: Config, args) -> int:
    tz = config.helpdesk.timezone
    since, until = report.window(args.since, args.until, tz)
    if since and until and since >= until:
        raise Failure(f"--until {args.until} is not after --since {args.since}", exits.USAGE)
    store = open_store(config)
    cases = Cases(store).opened_between(since, until)
    parts = {
        "sla": report.compliance(cases, config, args.now or datetime.now(UTC)),
        "satisfaction": report.satisfaction(cases, Ratings(store).of_cases([c.id for c in cases])),
        "fair-use": report.fair_use(cases, config),
    }
    print(report.render_parts(parts, args.format, args.part))
    if args.format == "table" and parts["sla"] and (since or until):
        print(f"cases opened from {views.shown(since, tz)} until {views.shown(until, tz)}")
    return 0


def cmd_outbox(config: Config, args) -> int:
    store = open_store(config)
    queue, now = OutboxQueue(store), datetime.now(UTC)
    if args.drop:
        print(f"dropped {queue.drop(unsent(queue, args.drop))}")
    if args.retry:
        ids = unsent(queue, args.retry)
        print(f"{queue.revive(ids, now) + queue.hasten(now, ids)} message(s) due now")
    if args.retry_now:
        print(f"{queue.hasten(now)} message(s) waiting out a back-off due now")
    if args.flush or args.retry or args.retry_now:
        result = outbox.flush(store, config.outbound, now)
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


def cmd_requeue(config: Config, args) -> int:
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


def cmd_completion(config: None, args) -> int:
    import shtab  # here only: no other command pays for the import

    print(shtab.complete(parser(), shell=args.shell))
    return 0


def cmd_status(config: Config, args) -> int:
    found = health.assess(config, open_store(config), datetime.now(UTC))
    print(json.dumps(found, indent=2) if args.json else health.text(found))
    return 0 if found["healthy"] else 1


def cmd_backup(config: Config, args) -> int:
    store = open_store(config)
    if store.dialect is not SQLITE:
        raise Failure(backup.USE_PG_DUMP, exits.UNAVAILABLE)
    try:
        copy = backup.backup(store, args.dest, datetime.now(UTC))
    except (OSError, backup.BackupFailed) as exc:
        why = exits.why(exc) if isinstance(exc, OSError) else str(exc).lower()
        raise Failure(f"backup to {args.dest} failed: {why}", exits.CANTCREAT) from exc
    print(f"backed up to {copy}")
    return 0


def cmd_migrate(config: Config, args) -> int:
    if why := migrate.unusable(config, args.to):
        raise Failure(f"migrate --to: {why}", exits.USAGE)
    if migrate.listener_answers(config):
        raise Failure("helpdeskd is running (its SMTP port answers): stop it first", exits.TEMPFAIL)
    source, target = open_store(config), open_store(config, DatabaseUrl(args.to))
    try:
        moved = migrate.move(source, target)
    except migrate.MoveRefused as exc:
        raise Failure(str(exc), exits.CANTCREAT) from exc
    print(migrate.summary(moved, target, config))
    return 0


def cmd_purge(config: Config, args) -> int:
    counts = retention.purge(open_store(config), args.older_than, datetime.now(UTC))
    print(f"raw mail removed: {counts['spool']} inbound, {counts['outbox']} sent")
    return 0


def cmd_announce(config: Config, args) -> int:
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
    "completion": cmd_completion,
    "status": cmd_status,
    "backup": cmd_backup,
    "migrate": cmd_migrate,
    "purge": cmd_purge,
    "announce": cmd_announce,
}
