"""The IPcelerate maintenance policy as a plan of four named clocks (issue 21), appended to the
test configuration by the tests of clocks, agreed deadlines, tiers and followers.

`central` is 08:00-18:00 Monday to Friday in Chicago with Thanksgiving (2026-11-26) off; US
daylight saving ends on Sunday 2026-11-01 (UTC-5 before, UTC-6 after). Tier 2 works 09:00-17:00.
"""

from __future__ import annotations

IPCELERATE = """
[calendars.central]
timezone = "America/Chicago"
mon = "08:00-18:00"
tue = "08:00-18:00"
wed = "08:00-18:00"
thu = "08:00-18:00"
fri = "08:00-18:00"
holidays = ["2026-11-26"]

[calendars.around-the-clock]
always_open = true

[calendars.tier-two]
timezone = "America/Chicago"
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"

[tiers.2]
calendar = "tier-two"

[plans.ipcelerate]
calendar = "central"

[plans.ipcelerate.clocks.level_one]
calendar = "around-the-clock"   # clock hours
starts = "opened"
stops = "reply"                 # the first engineer reply to the customer after it started
targets = { P1 = "2h", P2 = "6h", P3 = "24h", P4 = "24h" }

[plans.ipcelerate.clocks.level_two]
calendar = "around-the-clock"
starts = "tier 2"               # when the case is handed to tier 2 (`#tier 2`)
stops = "reply"
targets = { P1 = "2h", P2 = "6h", P3 = "24h", P4 = "24h" }

[plans.ipcelerate.clocks.action_plan]
starts = "escalated"            # the first escalation, automatic or `#escalate`
stops = "#plan"                 # an engineer records the action plan
targets = { P1 = "3d", P2 = "5d", P3 = "20d", P4 = "20d" }   # business days of "central"

[plans.ipcelerate.clocks.workaround]
starts = "escalated"
stops = "#workaround"
targets = { P1 = "10d", P2 = "20d", P3 = "next release", P4 = "next release" }

[plans.ipcelerate.escalation]
levels = [
  { notify = ["executive@helpdesk.test"], on = "breach", name = "Executive" },
]

[[customers]]
name = "IPcelerate"
domains = ["ipcelerate.test"]
plan = "ipcelerate"
"""
