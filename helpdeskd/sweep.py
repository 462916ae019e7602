"""One scheduler pass at `now`: what is due is done (or, dry, only listed)."""

from __future__ import annotations

from datetime import datetime

from helpdeskd.adapters.store import Store
from helpdeskd.config import Config


def run(store: Store, config: Config, now: datetime, *, dry_run: bool = False) -> list[dict]:
    return []
