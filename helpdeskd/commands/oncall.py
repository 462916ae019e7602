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
    found = oncall.now_and_next(config, args.now or datetime.now(UTC))
    tz = oncall.team_timezone(config)
    if args.json:
        since, later = views.local(found["since"], tz), views.local(found["from"], tz)
        print(json.dumps({**found, "since": since, "from": later}, indent=2))
        return 0
    print(f"now   {found['now'] or 'nobody (the rota has not started)'}", end="")
    print(f"  since {views.shown(found['since'], tz)}" if found["since"] else "")
    print(f"next  {found['next']}  from {views.shown(found['from'], tz)}")
    return 0
