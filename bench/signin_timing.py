"""How long the status page takes to answer a sign-in request, for addresses it knows and
addresses it does not: the two must not be told apart (docs/status-page.md).

    .venv/bin/python -m bench.signin_timing --tries 60

Starts a daemon with the page on, asks for links for `--tries` known and as many unknown
addresses in a shuffled order (each from its own client, so no limit applies), and prints the
median answer time of each and the two-sided p-value of a Mann-Whitney U test (normal
approximation): a small p means the time gives away who is a customer.
"""

from __future__ import annotations

import argparse
import http.client
import math
import random
import re
import socket
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

from tests.support import Daemon, free_port, wait_for_port, write_config

WEB = '\n[web]\nenabled = true\nport = {port}\nbase_url = "http://127.0.0.1:{port}"\n'
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=60, help="requests of each kind")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between requests")
    parser.add_argument(
        "--dir", help="where the database goes; tmpfs (/dev/shm) keeps fsync's noise out"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        smtp, web = free_port(), free_port()
        config = write_config(Path(folder), smtp_port=smtp, extra=WEB.format(port=web))
        with Daemon(config, smtp) as daemon:
            wait_for_port(web, daemon.proc)
            known, unknown = measure(web, args.tries, args.gap)
    report(known, unknown)


def measure(port: int, tries: int, gap: float) -> tuple[list[float], list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.connect()
    # headers and body go in two writes: without this, Nagle and delayed ACKs add 40 ms
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.request("GET", "/signin")
    first = conn.getresponse()
    cookie = first.getheader("set-cookie").split(";")[0]
    csrf = CSRF.search(first.read().decode()).group(1)
    kinds = ["warm"] * 20 + random.sample(["known", "unknown"] * tries, 2 * tries)
    times: dict[str, list[float]] = {"warm": [], "known": [], "unknown": []}
    for i, kind in enumerate(kinds):
        address = f"user{i}@acme.test" if kind in ("known", "warm") else f"user{i}@nowhere.test"
        body = urllib.parse.urlencode({"csrf": csrf, "address": address})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,
            "X-Forwarded-For": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",  # one client each
        }
        started = time.perf_counter()
        conn.request("POST", "/signin", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        times[kind].append(time.perf_counter() - started)
        assert answer.status == 200, answer.status
        time.sleep(gap)
    conn.close()
    return times["known"], times["unknown"]


def report(known: list[float], unknown: list[float]) -> None:
    a, b = statistics.median(known) * 1000, statistics.median(unknown) * 1000
    print(f"known   median {a:.3f} ms over {len(known)}")
    print(f"unknown median {b:.3f} ms over {len(unknown)}")
    print(f"difference {a - b:+.3f} ms, Mann-Whitney p = {mann_whitney_p(known, unknown):.4f}")


def mann_whitney_p(x: list[float], y: list[float]) -> float:
    """Two-sided, by the normal approximation (ties are improbable with timings)."""
    ranked = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    rank_sum = sum(rank for rank, (_, group) in enumerate(ranked, 1) if group == 0)
    n, m = len(x), len(y)
    u = rank_sum - n * (n + 1) / 2
    z = (u - n * m / 2) / math.sqrt(n * m * (n + m + 1) / 12)
    return math.erfc(abs(z) / math.sqrt(2))


if __name__ == "__main__":
    main()
