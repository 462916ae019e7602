"""A thread that does one kind of work whenever it is woken, or every so often."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("helpdeskd.loops")


class Loop(threading.Thread):
    """A thread that runs `step()` whenever woken, or every `interval` seconds, in the log
    context it was made in (a child process's `process` field)."""

    def __init__(self, name: str, step: Callable[[], bool], interval: float):
        super().__init__(name=name, daemon=True)
        self.step, self.interval = step, interval
        self.woken, self.stopping = threading.Event(), threading.Event()
        self.beat = time.monotonic()  # stamped each turn: the watchdog's proof of life
        self.context = contextvars.copy_context()

    def wake(self) -> None:
        self.woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self.woken.set()

    def run(self) -> None:
        self.context.run(self.turn)

    def turn(self) -> None:
        while not self.stopping.is_set():
            self.beat = time.monotonic()
            self.woken.clear()
            try:
                more = self.step()
            except Exception:
                log.exception("step failed", thread=self.name)
                more = False
            if not more:
                self.woken.wait(self.interval)
