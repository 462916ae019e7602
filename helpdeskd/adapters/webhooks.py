"""Webhooks: each event a case raises is queued, in the transaction of the change, for every
hook that wants it; a thread of its own POSTs them, signed, with a time-out, and retries with
the outbox's back-off. Only configured URLs are called, a redirect is never followed, and of an
answer no more than a short excerpt is kept."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from datetime import datetime, timedelta

import structlog

from helpdeskd import views
from helpdeskd.adapters.outbox import backoff
from helpdeskd.adapters.store import Deliveries, Delivery, Store, iso
from helpdeskd.config import Config, Webhook
from helpdeskd.core import webhooks
from helpdeskd.model import Case

log = structlog.get_logger("helpdeskd.webhooks")

EXCERPT = 200  # characters of a receiver's answer kept, for `helpdeskd webhooks`
KEPT = timedelta(days=7)  # delivered ones stay listed by `helpdeskd webhooks` this long
LEASE = timedelta(minutes=5)  # a delivery in hand is not taken by another flush before then


# -- queueing: in the change's own transaction -------------------------------------------------


def announce(
    store: Store,
    config: Config,
    before: Case | None,
    after: Case,
    kinds: list[str],
    now: datetime,
    replied: bool = False,
) -> int:
    """Queue the events of one change for every hook that wants them; how many were queued."""
    if not config.webhooks:
        return 0
    queued = 0
    for event in webhooks.happened(before, after, kinds, replied):
        document = event_document(event, after, config, now)
        for hook in config.webhooks:
            if hook.wants(event, after.priority, after.plan, after.customer):
                Deliveries(store).enqueue(
                    hook.url, event, after.reference, body(hook, document), now
                )
                queued += 1
    return queued


def event_document(event: str, case: Case, config: Config, now: datetime) -> dict:
    """Schema version 1 (docs/integrations.md)."""
    document = {
        "schema": webhooks.SCHEMA_VERSION,
        "event": event,
        "time": iso(now),
        "reference": case.reference,
        "subject": case.subject,
        "customer": case.customer,
        "plan": case.plan,
        "priority": case.priority,
        "status": case.status,
        "escalation_level": case.escalation_level,
        "clocks": views.clocks_json(case, config, now),
        "link": None,
    }
    if config.web.enabled:
        document["link"] = f"{config.web.base_url}/cases/{case.reference}"
    return document


def body(hook: Webhook, document: dict) -> bytes:
    # Slack-compatible and Matrix (hookshot) incoming hooks both read "text"
    shown = document if hook.format == "json" else {"text": webhooks.one_line(document)}
    return json.dumps(shown, ensure_ascii=False).encode("utf-8")


# -- delivery: in a thread of its own ----------------------------------------------------------


class Refused(Exception):
    """The receiver's answer says trying again cannot help (a 4xx other than 408 and 429)."""


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is never followed: a hook's URL must not lead helpdeskd's requests, and its
    signed events, anywhere nobody configured (and a POST redirected becomes a GET without its
    body in most clients). The delivery is given up on, saying where it was sent."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise Refused(f"{code} redirect to {newurl} not followed: configure that URL instead")


# no proxies from the environment: a hook goes where the configuration says
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects())


def post(hook: Webhook, delivery: Delivery) -> str:
    """POST one delivery; the answer's status and excerpt, or an exception."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "helpdeskd",
        "X-Helpdeskd-Event": delivery.event,
        "X-Helpdeskd-Delivery": str(delivery.id),
    }
    if hook.secret_file is not None:
        secret = hook.secret_file.read_bytes().strip()  # OSError: retried, said in `webhooks`
        headers["X-Helpdeskd-Signature"] = webhooks.signature(secret, delivery.body)
    request = urllib.request.Request(hook.url, delivery.body, headers, method="POST")
    try:
        with OPENER.open(request, timeout=hook.timeout) as answer:
            return f"{answer.status} {excerpt(answer.read(EXCERPT * 4))}"
    except urllib.error.HTTPError as exc:
        said = f"{exc.code} {excerpt(exc.read(EXCERPT * 4))}"
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise Refused(said) from exc
        raise OSError(said) from exc


def excerpt(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:EXCERPT] + ("…" if len(text) > EXCERPT else "")


def flush(store: Store, config: Config, now: datetime, rng: random.Random | None = None) -> int:
    """Deliver what is due, each case's events in order; how many were delivered. A pass
    sees the oldest waiting event of each case: while one delivers, the next pass goes on."""
    total, rng = 0, rng or random.Random()
    while done := flush_pass(store, config, now, rng):
        total += done
    Deliveries(store).forget(now - KEPT)
    return total


def flush_pass(store: Store, config: Config, now: datetime, rng: random.Random) -> int:
    deliveries = Deliveries(store)
    hooks = {hook.url: hook for hook in config.webhooks}
    done, stalled = 0, set()
    for delivery in deliveries.due(now):
        key = (delivery.url, delivery.reference)
        if key in stalled or not deliveries.claim(delivery.id, now, now + LEASE):
            continue
        if attempt(deliveries, hooks.get(delivery.url), delivery, config, now, rng):
            done += 1
        else:
            stalled.add(key)  # the case's next events wait for this one
    return done


def attempt(
    deliveries: Deliveries,
    hook: Webhook | None,
    delivery: Delivery,
    config: Config,
    now: datetime,
    rng: random.Random,
) -> bool:
    if hook is None:
        deliveries.give_up(delivery.id, "its URL is no longer configured in [[webhooks]]")
        return False
    try:
        answer = post(hook, delivery)
    except Refused as exc:
        deliveries.give_up(delivery.id, str(exc))
        log.warning("webhook refused", id=delivery.id, url=hook.url, error=str(exc))
        return False
    except (OSError, ValueError) as exc:  # refused connections, time-outs, 5xx
        error = excerpt(str(exc).encode())
        if delivery.attempts + 1 >= config.outbound.max_attempts:
            deliveries.give_up(delivery.id, error)
        else:
            wait = backoff(config.outbound, delivery.attempts, rng)
            deliveries.retry(delivery.id, now + wait, error)
        log.info("webhook not delivered", id=delivery.id, url=hook.url, error=error)
        return False
    deliveries.delivered(delivery.id, now, answer)
    log.info("webhook delivered", id=delivery.id, url=hook.url, what=delivery.event)
    return True
