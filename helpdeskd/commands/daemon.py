"""The daemon and its upkeep: `run`, `check-config`, `status`, `backup`, `migrate`, `purge`,
`web`."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from datetime import UTC, datetime

from helpdeskd import backup, exits, health, migrate, paths, retention, service
from helpdeskd import config as configuration
from helpdeskd.adapters import signin
from helpdeskd.adapters.store import SQLITE, DatabaseUrl
from helpdeskd.commands.context import no_database, open_store, read_store
from helpdeskd.config import Config
from helpdeskd.exits import Failure
from helpdeskd.files import exposed


def cmd_run(config: Config, args: Namespace) -> int:
    open_store(config).close()  # a database that cannot open is said here, in one line
    try:
        service.run(config)
    except service.CannotStart as exc:
        raise Failure(str(exc), exits.UNAVAILABLE) from exc
    return 0


def cmd_check_config(config: Config, args: Namespace) -> int:
    problems = paths.problems(config)
    if problems:
        print(f"{config.path}: {len(problems)} problem(s)", file=sys.stderr)
        for key, why in problems:
            print(f"  {key}: {why}", file=sys.stderr)
        return exits.CONFIG
    print(
        f"{config.path}: OK ({len(config.customers)} customers, {len(config.plans)} plans, "
        f"{len(config.engineers)} engineers, {len(config.imap)} IMAP mailboxes)"
    )
    for problem in exposed(config.helpdesk.database, signin.secret_path(config)):
        print(f"warning: {problem} (chmod go-rwx)", file=sys.stderr)
    for key, why in configuration.warnings(config):
        print(f"  warning: {key}: {why}", file=sys.stderr)
    return 0


def cmd_status(config: Config, args: Namespace) -> int:
    store = read_store(config)
    if store is None:  # the daemon never ran: unhealthy, and the reason is said above
        found = {"healthy": False, "problems": [no_database(config)], "warnings": []}
        print(json.dumps(found, indent=2) if args.json else "helpdeskd: UNHEALTHY")
        return 1
    found = health.assess(config, store, datetime.now(UTC))
    print(
        json.dumps(found, indent=2) if args.json else health.text(found, config.helpdesk.timezone)
    )
    return 0 if found["healthy"] else 1


def cmd_backup(config: Config, args: Namespace) -> int:
    store = open_store(config)
    if store.dialect is not SQLITE:
        raise Failure(backup.USE_PG_DUMP, exits.UNAVAILABLE)
    try:
        copy = backup.backup(store, args.dest, datetime.now(UTC), force=args.force)
    except (OSError, backup.BackupFailed) as exc:
        why = exits.why(exc) if isinstance(exc, OSError) else str(exc)
        raise Failure(f"backup to {args.dest} failed: {why}", exits.CANTCREAT) from exc
    print(f"backed up to {copy}")
    return 0


def cmd_migrate(config: Config, args: Namespace) -> int:
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


def cmd_purge(config: Config, args: Namespace) -> int:
    counts = retention.purge(open_store(config), args.older_than, datetime.now(UTC))
    unindexed = f", {counts['search']} attachment(s) out of search" if counts["search"] else ""
    print(f"raw mail removed: {counts['spool']} inbound, {counts['outbox']} sent{unindexed}")
    return 0


def cmd_web(config: Config, args: Namespace) -> int:
    ended = signin.sign_out(open_store(config), args.address)
    print(f"{ended} sessions of {signin.normal(args.address)} ended")
    return 0
