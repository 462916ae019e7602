"""[[webhooks]]: the systems told of what happens to cases, and what each wants to hear."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from helpdeskd.config.reader import Reader, _readable
from helpdeskd.names import EVENTS, PRIORITIES

FORMATS = ("json", "slack", "matrix")


@dataclass(frozen=True)
class Webhook:
    url: str
    events: tuple[str, ...] = EVENTS
    priorities: tuple[str, ...] = ()  # empty: every one
    plans: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    secret_file: Path | None = None  # the HMAC key of X-Helpdeskd-Signature
    format: str = "json"
    timeout: int = 10  # seconds a receiver has to answer

    def wants(self, event: str, priority: str, plan: str, customer: str | None) -> bool:
        return (
            event in self.events
            and (not self.priorities or priority in self.priorities)
            and (not self.plans or plan in self.plans)
            and (not self.customers or customer in self.customers)
        )


KEYS = {"url", "events", "priorities", "plans", "customers", "secret_file", "format", "timeout"}


def _webhooks(r: Reader, data: dict, plans: dict) -> tuple[Webhook, ...]:
    return tuple(_webhook(r, p, t, plans) for p, t in r.tables(data, "webhooks"))


def _webhook(r: Reader, p: str, t: dict, plans: dict) -> Webhook:
    r.unknown(t, p, KEYS)
    url = r.required(t, "url", p, str) or ""
    if url and not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", url):
        r.problem(f"{p}.url", f"not an http(s) URL: {url!r}")
    events = _known(r, t, p, "events", EVENTS) or EVENTS
    return Webhook(
        url=url,
        events=events,
        priorities=_known(r, t, p, "priorities", PRIORITIES),
        plans=_known(r, t, p, "plans", tuple(plans)),
        customers=r.strings(t, "customers", p),
        secret_file=_readable(r, r.path(t, "secret_file", p), f"{p}.secret_file"),
        format=r.choice(t, "format", p, FORMATS, "json"),
        timeout=r.positive(t, "timeout", p, Webhook.timeout),
    )


def _known(r: Reader, t: dict, p: str, key: str, known: tuple[str, ...]) -> tuple[str, ...]:
    chosen = r.strings(t, key, p)
    for value in chosen:
        if value not in known:
            r.problem(f"{p}.{key}", f"unknown {value!r} (known: {', '.join(known)})")
    return chosen
