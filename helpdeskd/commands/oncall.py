"""`helpdeskd oncall`: who is on call now, and who takes over next."""

from __future__ import annotations

import json
from argparse import Namespace
from datetime import UTC, datetime

from helpdeskd import exits, views
from helpdeskd.config import Config
from helpdeskd.core import oncall
from helpdeskd.exits import Failure


def cmd_oncall(config: Config, args: Namespace) -> int:
    if config.oncall is None:
        raise Failure(f"{config.path} has no [oncall] rota: README, On call", exits.CONFIG)
    now = args.now or datetime.now(UTC)
    found = oncall.now_and_next(config, now)
    tz = oncall.team_timezone(config)
    if args.json:
        times = {k: views.local(found[k], tz) for k in ("since", "until", "from")}
        print(json.dumps({**found, **times}, indent=2))
        return 0
    if found["now"]:
        print(f"now   {found['now']}  since {views.shown(found['since'], tz)}", end="")
        print(f"  until {views.shown(found['until'], tz)}")
    else:
        print(f"now   nobody ({nobody_why(config, now)}): paging cases climb the escalation ladder")
    if found["next"]:
        print(f"next  {found['next']}  from {views.shown(found['from'], tz)}")
    else:
        print("next  nobody (no shift after this): add shifts to [oncall]")
    return 0


def nobody_why(config: Config, now: datetime) -> str:
    shifts = config.oncall.shifts
    if not shifts:
        return "the rota has not started"
    return "between shifts" if shifts[0].begins <= now < shifts[-1].ends else "no shift now"
