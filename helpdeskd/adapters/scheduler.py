"""APScheduler 3.x: periodic wake-ups only. The timers themselves are columns in the database
(`cases.next_due`, `outbox.next_attempt_at`), so a restart loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

SWEEP_SECONDS = 60
FLUSH_SECONDS = 30


def start(service) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.add_job(
        service.request_sweep,
        "interval",
        seconds=SWEEP_SECONDS,
        id="sweep",
        next_run_time=datetime.now(UTC),
        **common,
    )
    scheduler.add_job(service.courier.wake, "interval", seconds=FLUSH_SECONDS, id="flush", **common)
    scheduler.start()
    return scheduler
