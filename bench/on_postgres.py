"""Run a command beside a throwaway PostgreSQL cluster, fsync on (as a production server):
the yardstick's PostgreSQL reference and helpdeskd on PostgreSQL, side by side in one run.

    .venv/bin/python -m bench.on_postgres -- COMMAND ARGS...

`{pg}` in an argument becomes the cluster's address (postgresql://postgres@127.0.0.1:PORT),
and the command sees it as HELPDESKD_BENCH_PG: bench/pg_server.py and bench/pg_e2e.py make a
database of their own there for each run; `{pg}/limits` is an empty database for
`limit_server.py --mode postgres --dsn`. The cluster is removed when the command ends.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.postgres import running_cluster

ADDRESS = "HELPDESKD_BENCH_PG"


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    with running_cluster(fsync=True) as cluster:
        cluster.admin("CREATE DATABASE limits")
        address = cluster.url("postgres").rpartition("/")[0]
        command = [arg.replace("{pg}", address) for arg in argv]
        return subprocess.run(command, env={**os.environ, ADDRESS: address}).returncode


if __name__ == "__main__":
    sys.exit(main())
