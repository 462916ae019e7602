"""How long the command line takes to start: `--version`, `--help` and `completion bash`.

Each runs N times in a fresh interpreter (`python -m helpdeskd ...` from the repository root),
after one run not counted that writes the bytecode cache, as an installed package has it
(PYTHONDONTWRITEBYTECODE is taken out of the children's environment). Printed: the median wall
time, and the median CPU time (user + system) of the child, which a busy shared machine disturbs
far less; a bare `python -c pass` is measured beside them, since the interpreter's own start is
part of every figure.

    .venv/bin/python -m bench.cli_start [-n 21]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "--version": ["-m", "helpdeskd", "--version"],
    "--help": ["-m", "helpdeskd", "--help"],
    "completion bash": ["-m", "helpdeskd", "completion", "bash"],
}


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def medians(args: list[str], runs: int) -> tuple[float, float]:
    """The median wall and CPU seconds of `python ARGS`, its bytecode cached."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, *args]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_before = time.perf_counter(), children_cpu()
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        wall.append(time.perf_counter() - started)
        cpu.append(children_cpu() - cpu_before)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("-n", type=int, default=21, help="runs of each (default 21)")
    runs = options.parse_args().n
    print(f"{'':<16} median of {runs}: wall     cpu")
    for name, args in COMMANDS.items():
        wall, cpu = medians(args, runs)
        print(f"{name:<16} {wall * 1000:17.0f} ms {cpu * 1000:4.0f} ms")


if __name__ == "__main__":
    main()
