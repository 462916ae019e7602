"""The yardstick's helpdeskd_server.py with the daemon's database on PostgreSQL: the same
arguments and configuration, but `database` is a fresh PostgreSQL database named after
`--db`, on the cluster of bench/on_postgres.py (HELPDESKD_BENCH_PG).

    --server 'helpdeskd-pg={python} bench/pg_server.py --port {port} --db {db} --workdir {workdir}'

The yardstick is looked for in HELPDESKD_BENCH_YARDSTICK, else in ../shared/bench beside the
repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def yardstick() -> Path:
    found = os.environ.get("HELPDESKD_BENCH_YARDSTICK") or ROOT.parent / "shared" / "bench"
    return Path(found)


def database_for(path: str) -> str:
    """The PostgreSQL address that stands for an SQLite path of the yardstick's."""
    name = "hd_" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:12]
    return f"{os.environ['HELPDESKD_BENCH_PG']}/{name}"


def fresh(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(yardstick()))
    import helpdeskd_server  # the yardstick's: its configuration, its arguments

    args = [a for a in argv if a != "--print-config"]
    db = args[args.index("--db") + 1]
    url = database_for(db)
    fresh(url)
    helpdeskd_server.main([*args, "--print-config"])  # writes it, and says where
    config = Path(args[args.index("--workdir") + 1]).resolve() / "helpdeskd.toml"
    text = re.sub(r'(?m)^database = ".*"$', f'database = "{url}"', config.read_text())
    config.write_text(text)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "helpdeskd", "--config", str(config), "run"])


if __name__ == "__main__":
    main(sys.argv[1:])
