"""`helpdeskd person export|erase ADDRESS`: a person's data, on their request."""

from __future__ import annotations

from argparse import Namespace
from datetime import UTC, datetime

from helpdeskd import exits, person
from helpdeskd.adapters.store import Store
from helpdeskd.commands.context import no_database, read_store
from helpdeskd.config import Config, ConfigError
from helpdeskd.exits import Failure


def cmd_person(config: Config, args: Namespace) -> int:
    address = args.address.strip().lower()
    if "@" not in address:
        raise Failure(f"person: not an address: {args.address!r}", exits.USAGE)
    if args.action == "export" and not args.output:
        raise Failure("person export needs --output FILE", exits.USAGE)
    store = read_store(config, say_so=False)  # a command that never makes the database
    if store is None:
        raise Failure(no_database(config), exits.NOINPUT)
    if args.action == "export":
        return _export(store, config, address, args)
    return _erase(store, config, address, args)


def _export(store: Store, config: Config, address: str, args: Namespace) -> int:
    try:
        held = person.export(
            store, config, address, args.output, datetime.now(UTC), overwrite=args.force
        )
    except FileExistsError as exc:
        raise Failure(f"{exc} exists: give --force to replace it", exits.CANTCREAT) from exc
    print(f"{args.output}: " + ", ".join(f"{n} {kind}" for kind, n in held.items()))
    return 0


def _erase(store: Store, config: Config, address: str, args: Namespace) -> int:
    try:
        who, done, listed = person.erase(
            store, config, address, dry_run=args.dry_run, names=tuple(args.name or ())
        )
    except ConfigError as exc:
        raise Failure(f"the allow-list was not changed: {exc}", exits.CONFIG) from exc
    _print_erasure(who, done, listed, args.dry_run)
    for place in person.named_in_config(config.path, address):
        print(f"still named in {config.path} ({place}): remove it there by hand")
    return 0


def _print_erasure(who, done: dict[str, int], listed: list[str], dry_run: bool) -> None:
    verb = "would become" if dry_run else "is now"
    print(f"{who.address} {verb} {who.pseudonym}")
    if who.names:
        print("names replaced: " + ", ".join(who.names))
    print(f"cases they took part in: {len(who.cases)}")
    for table, count in done.items():
        print(f"  {table}: {count} rows")
    taken = "would be taken" if dry_run else "taken"
    for customer in listed:
        print(f"  allow-list: {taken} out of {customer}'s entry")
