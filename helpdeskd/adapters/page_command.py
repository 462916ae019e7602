"""`[oncall] page_command`: the program an SMS or chat gateway offers, run once per page.

A page records its command's arguments in the transaction that pages; whoever delivers the
outbox next runs it, after that commit, without a shell and for at most SECONDS: a gateway
that hangs is killed (with whatever it started) and holds up the mail no longer. A failure is
recorded on the page and returned, for the admins to be told; the page's mail goes anyway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime

import structlog

from helpdeskd.adapters.store import Cases, Pages, Store

log = structlog.get_logger("helpdeskd.page_command")

SECONDS = 10
ERROR_CHARACTERS = 300  # of what the program wrote to stderr, in the alert


@dataclass(frozen=True)
class Failed:
    page_id: int
    reference: str
    person: str
    why: str

    @property
    def summary(self) -> str:
        return f"page_command for {self.reference} ({self.person}) failed: {self.why}"


def run_due(store: Store, now: datetime) -> tuple[Failed, ...]:
    """Run the commands of the pages recorded since the last delivery; the failures."""
    failed = []
    for row in Pages(store).commands_due():
        with store.transaction():
            if not Pages(store).take_command(row["id"]):
                continue  # another process has it
        why = run(json.loads(row["command"]))
        with store.transaction():
            Pages(store).command_done(row["id"], why)
            done = f"failed for {row['person']}: {why}" if why else f"ran for {row['person']}"
            Cases(store).add_event(row["case_id"], now, "page_command", done)
        if why:
            log.error("page command failed", reference=row["reference"], why=why)
            failed.append(Failed(row["id"], row["reference"], row["person"], why))
        else:
            log.info("page command ran", reference=row["reference"], person=row["person"])
    return tuple(failed)


def run(argv: list[str]) -> str | None:
    """None when the program ran and exited 0; else why not, in a few words."""
    with tempfile.TemporaryFile() as errors:
        try:
            # a session of its own: on a time-out its children go with it
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
        except OSError as exc:
            return f"cannot be started: {exc.strerror or exc}"
        try:
            status = child.wait(SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return f"killed after {SECONDS}s"
        if status == 0:
            return None
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace").strip()[-ERROR_CHARACTERS:]
        return f"exit status {status}" + (f": {said}" if said else "")
