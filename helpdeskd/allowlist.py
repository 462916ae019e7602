"""The machine-managed allow-list file: engineers' `#allow` commands written where the config
includes them ([helpdesk] allowlist), so the admin's own file is never rewritten.

A change is written to a new file first and kept only when the whole configuration still loads
with it; the running daemon notices the file changed and reloads (service.Service). An `ingest`
or other command only writes the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import structlog
import tomli_w

from helpdeskd import config as configuration
from helpdeskd.config import ConfigError
from helpdeskd.core.commands import CommandError
from helpdeskd.core.outcome import Context, Outcome, allow_line, command_error

log = structlog.get_logger("helpdeskd.allowlist")

HEADER = (
    "# Written by helpdeskd from engineers' #allow commands on cases of a customer's primary\n"
    "# contact. The main configuration includes it ([helpdesk] allowlist); edit with care.\n\n"
)


def apply(ctx: Context, result: Outcome, *, write: bool = True) -> Outcome:
    """Write the outcome's allow-list changes (only check them, unless `write`); when the
    configuration would not load with them, the engineer gets the error instead and nothing of
    the message applies."""
    problem = change(ctx.config, result.case.customer, result.allowlist, keep=write)
    if problem is None:
        if write:
            log.info("allow-list changed", customer=result.case.customer, changes=result.allowlist)
        return result
    line, number = allow_line(ctx.inbound.text)
    error = CommandError(line, number, f"the allow-list was not changed: {problem}")
    return command_error(ctx, result.case, (error,))


def change(
    config: configuration.Config, customer: str, changes: tuple[str, ...], keep: bool = True
) -> str | None:
    """Apply the changes to the file; None when done, else why they were refused. Without
    `keep` the changes are only tried."""
    path = config.helpdesk.allowlist
    try:
        data = read(path)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return f"cannot read {path.name}: {exc}"
    entry = data.setdefault("customers", {}).setdefault(customer, {})
    for one in changes:
        changed(entry, *one.split(" ", 1))
    return write(config, data, keep)


def write(config: configuration.Config, data: dict, keep: bool = True) -> str | None:
    """Write the whole allow-list, kept only when the configuration loads with it; None when
    done, else why not."""
    path = config.helpdesk.allowlist
    # the caller holds the database's "allowlist" lock (store.exclusive) in the message's
    # transaction, so two processes never write the candidate at once
    candidate = path.with_name(path.name + ".new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate.write_text(HEADER + tomli_w.dumps(data), encoding="utf-8")
        configuration.load(config.path, allowlist=candidate)
        if keep:
            os.replace(candidate, path)
    except ConfigError as exc:
        return "; ".join(f"{key}: {why}" for key, why in exc.problems)
    except OSError as exc:
        return f"cannot write {path.name}: {exc.strerror}"
    finally:
        candidate.unlink(missing_ok=True)
    return None


def read(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def changed(entry: dict, action: str, target: str) -> None:
    """One change to a customer's entry: `addresses` and `domains` added, `removed` taken
    away (from the admin's lists too)."""
    key = "domains" if action == "domain" or "@" not in target else "addresses"
    lists = {k: list(entry.get(k, [])) for k in ("addresses", "domains", "removed")}
    if action == "remove":
        lists[key] = [v for v in lists[key] if v != target]
        lists["removed"] = [*dict.fromkeys([*lists["removed"], target])]
    else:
        lists[key] = [*dict.fromkeys([*lists[key], target])]
        lists["removed"] = [v for v in lists["removed"] if v != target]
    entry.update({k: v for k, v in lists.items() if v or k in entry})


def mtime(config: configuration.Config) -> float | None:
    path = config.helpdesk.allowlist
    try:
        return path.stat().st_mtime if path else None
    except OSError:
        return None


def forget(config: configuration.Config, address: str) -> list[str]:
    """Take `address` out of every customer's lists (`removed` too: an erased person leaves
    no trace); the customers it was listed for."""
    path = config.helpdesk.allowlist
    data = read(path) if path else {}
    found = []
    for customer, entry in data.get("customers", {}).items():
        for key in ("addresses", "removed"):
            kept = [v for v in entry.get(key, []) if v.lower() != address]
            if len(kept) != len(entry.get(key, [])):
                entry[key] = kept
                found.append(customer)
    if found:
        problem = write(config, data)
        if problem:
            raise ConfigError([("allowlist", problem)])
    return sorted(set(found))


def entries(config: configuration.Config, address: str) -> list[dict]:
    """The allow-list entries that name `address`: the customer and the list."""
    path = config.helpdesk.allowlist
    data = read(path) if path else {}
    return [
        {"customer": customer, "list": key}
        for customer, entry in data.get("customers", {}).items()
        for key in ("addresses", "removed")
        if address in [v.lower() for v in entry.get(key, [])]
    ]
