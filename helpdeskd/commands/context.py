"""What every command starts from: the configuration, read once, and the database."""

from __future__ import annotations

import sys
from pathlib import Path

from helpdeskd import config as configuration
from helpdeskd import exits
from helpdeskd.adapters import store as stores
from helpdeskd.adapters.store import Database, DatabaseUrl, Store, StoreUnavailable
from helpdeskd.config import Config, ConfigError
from helpdeskd.exits import Failure


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


def read_store(config: Config, *, say_so: bool = True) -> Store | None:
    """The database for a command that only reads it, or None while there is none yet (said
    on stderr unless the caller says it): such a command never makes it. A place it could
    never be made is still the one-line failure."""
    path = config.helpdesk.database
    if isinstance(path, DatabaseUrl) or path.exists() or exits.blocking_file(path):
        return open_store(config)
    if say_so:
        tell_no_database(config)
    return None


def tell_no_database(config: Config) -> None:
    print(f"helpdeskd: {no_database(config)}", file=sys.stderr)


def no_database(config: Config) -> str:
    return (
        f"no database yet: {config.helpdesk.database} is made when helpdeskd first takes mail "
        "(`helpdeskd run`, `helpdeskd ingest`)"
    )
