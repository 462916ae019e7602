"""The fixed names helpdeskd knows: case statuses, priorities, report formats and parts.

A module of its own, importing nothing, so the command line lists them (in its parser, its
help and its shell completion) without loading the library.
"""

STATUSES = ("new", "open", "waiting", "pending_close", "resolved", "closed")
PRIORITIES = ("P1", "P2", "P3", "P4")
REPORT_FORMATS = ("table", "csv", "json")
# in the order the table shows them
REPORT_PARTS = ("sla", "satisfaction", "fair-use", "categories")
CHANNELS = ("phone", "mail", "chat", "visit")  # how a customer told an engineer (`open`)

# what `[[webhooks]]` may listen to (helpdeskd.core.webhooks says when each happens)
EVENTS = (
    "case.opened",
    "case.replied",
    "case.escalated",
    "case.breached",
    "case.resolved",
    "case.closed",
    "case.reopened",
    "rating.received",
)
