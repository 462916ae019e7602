"""The yardstick's e2e_bench.py with helpdeskd on PostgreSQL: the same sender, relay, figures
and checks against the corpus; only the daemon's database differs (bench/pg_server.py), and so
where the progress and the cases are read from. Run it beside a cluster:

    .venv/bin/python -m bench.on_postgres -- .venv/bin/python -m bench.pg_e2e $C --mode closed -c 8

Arguments are e2e_bench.py's (`--seed-db` excepted: a seed is an SQLite file).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, or with -m
from pg_server import database_for, yardstick

# e2e_bench.py's SQLite sums of comparisons, as PostgreSQL counts them
SUM_OF_TEST = re.compile(r"sum\((\w+) = '(\w+)'\)")


class PostgresDB:
    """e2e_bench.DB's reads, from the daemon's PostgreSQL database."""

    def __init__(self, path: str):
        self.url, self.conn = database_for(path), None

    def q(self, sql: str, params=()):
        import psycopg

        sql = SUM_OF_TEST.sub(r"count(*) FILTER (WHERE \1 = '\2')", sql).replace("?", "%s")
        try:
            if self.conn is None:
                self.conn = psycopg.connect(self.url, autocommit=True)
            rows = self.conn.execute(sql, params).fetchall()
        except psycopg.Error:
            return None
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(yardstick()))
    import e2e_bench

    with tempfile.TemporaryDirectory() as here:
        # the yardstick starts HERE/helpdeskd_server.py and HERE/ack_sink.py
        Path(here, "helpdeskd_server.py").symlink_to(Path(__file__).with_name("pg_server.py"))
        Path(here, "ack_sink.py").symlink_to(yardstick() / "ack_sink.py")
        e2e_bench.HERE, e2e_bench.DB = here, PostgresDB
        e2e_bench.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
