"""A message's whole journey: spool -> parse -> classify -> route -> outcome -> store + outbox.

Everything after the spool runs in one transaction, so a case change and the mail it causes are
committed together or not at all.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

import structlog

from helpdeskd import allowlist, merging, report, stand_ins
from helpdeskd.adapters import authres as authentication
from helpdeskd.adapters import webhooks as hooks
from helpdeskd.adapters.store import (
    Cases,
    Conversations,
    OutboxQueue,
    Pages,
    Ratings,
    Reminders,
    SearchIndex,
    SentOnce,
    SpoolItem,
    Store,
    TimeSpent,
    iso,
)
from helpdeskd.budget import OverBudget, parse_within
from helpdeskd.config import Config
from helpdeskd.core import authres, behalf, loops, oncall, search, sla
from helpdeskd.core.address import usable
from helpdeskd.core.authres import Verdict, header_value
from helpdeskd.core.autogen import Own
from helpdeskd.core.classify import Facts, classify
from helpdeskd.core.commands import CommandError, command_line
from helpdeskd.core.outcome import Context, Outcome, command_error, outcome
from helpdeskd.core.parse import ParseError
from helpdeskd.core.render import Rendered, Threading, message_id_for, render
from helpdeskd.core.route import Candidates, Decision, route, tags
from helpdeskd.core.webhooks import REPLIES
from helpdeskd.model import Case, Inbound, Mail

log = structlog.get_logger("helpdeskd.pipeline")


@dataclass(frozen=True)
class Processed:
    """What happened to one message: for logs, `ingest --dry-run` and tests."""

    spool_id: int
    facts: Facts | None
    decision: Decision | None
    reference: str | None
    queued: tuple[dict, ...] = ()  # {"kind", "to", "subject"} of each mail queued
    quarantined: str | None = None
    skipped: bool = False  # another process had already processed it


def own(config: Config) -> Own:
    return Own(
        loop_value=config.helpdesk.address,
        message_id_domain=config.helpdesk.domain,
        reference_prefix=config.helpdesk.reference_prefix,
    )


@dataclass(frozen=True)
class Prepared:
    """A spooled message parsed, authenticated and classified: the work done before the write
    lock, DNS lookups included."""

    item: SpoolItem
    inbound: Inbound
    verdict: Verdict | None
    facts: Facts


@dataclass(frozen=True)
class Checked:
    """A spooled message parsed and its sender checked: the part of the work that waits (on
    the parse child, on DNS), which the daemon does for a group of messages side by side."""

    inbound: Inbound
    verdict: Verdict | None


def looks_up(config: Config, source: str) -> bool:
    """Whether checking mail from this entrance takes DNS look-ups."""
    return config.authentication is not None and config.first_hop(source)


def check(config: Config, item: SpoolItem, parsed: Future[Inbound] | None = None) -> Checked:
    """Parse (or take the parse made ahead) and check the sender; ParseError, OverBudget."""
    if parsed is None:
        inbound = parse_within(item.raw, item.envelope_from, config.policy.processing_budget)
    else:
        inbound = parsed.result()
    return Checked(inbound, authenticate(config, item.source, item.raw, inbound, item))


def process(store: Store, config: Config, item: SpoolItem, now: datetime) -> Processed:
    """Process one spooled message. A message that cannot be parsed is quarantined at once;
    any other failure propagates, and the worker counts it as a failed try."""
    prepared = prepare(store, config, item, now)
    return settle(store, config, prepared, now) if isinstance(prepared, Prepared) else prepared


def prepare(
    store: Store,
    config: Config,
    item: SpoolItem,
    now: datetime,
    parsed: Future[Inbound] | None = None,
    checked: Future[Checked] | None = None,
) -> Prepared | Processed:
    """`parsed`: the message being parsed already (the daemon parses ahead); `checked`: parsed
    and its sender checked already (the daemon's look-ups side by side); else it is done here."""
    try:
        # DNS: before the write lock, never inside it
        done = checked.result() if checked is not None else check(config, item, parsed)
    except (ParseError, OverBudget) as exc:
        why = "unparseable" if isinstance(exc, ParseError) else "over the processing budget"
        store.quarantine(item.id, f"{why}: {exc}", now)
        log.warning("quarantined", spool_id=item.id, reason=str(exc), size=len(item.raw))
        return Processed(item.id, None, None, None, quarantined=str(exc))
    facts = classify(done.inbound, config, own(config), now.date(), done.verdict)
    return Prepared(item, done.inbound, done.verdict, facts)


def settle(store: Store, config: Config, prepared: Prepared, now: datetime) -> Processed:
    """Apply a prepared message in one transaction (a savepoint of the caller's, if any)."""
    item, verdict = prepared.item, prepared.verdict
    with store.transaction():
        if not store.claim(item.id, now):
            return Processed(item.id, None, None, None, skipped=True)
        if verdict is not None:
            results = header_value(config.authentication.authserv_id, verdict)
            store.authenticated(item.id, stamped(item.raw, results), results)
        return handle(store, config, prepared.inbound, item.id, now, verdict, facts=prepared.facts)


def authenticate(
    config: Config, source: str, raw: bytes, inbound: Inbound, item: SpoolItem | None = None
) -> Verdict | None:
    """At a first-hop entrance nobody checked the sender before us: DKIM, SPF and DMARC are
    checked here, and nothing the mail says about itself is believed. SPF needs the client's
    address, which only the listener's spool rows (`item`) know."""
    if source == "web":  # the page writes only the signed-in address into From
        return authres.signed_in(inbound.from_addr)
    if config.authentication is None or not config.first_hop(source):
        return None
    client = (item.peer_ip, item.helo, item.envelope_from) if item else (None, None, None)
    checker = authentication.checker(config.authentication)
    return checker.check(raw, inbound.from_addr.rpartition("@")[2], *client)


def stamped(raw: bytes, results: str) -> bytes:
    """The raw mail with our Authentication-Results on top, in the mail's own line endings."""
    newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    value = results.replace("\r\n", "\n").replace("\n", newline.decode())
    return b"Authentication-Results: " + value.encode("utf-8") + newline + raw


def handle(
    store: Store,
    config: Config,
    inbound: Inbound,
    spool_id: int | None,
    now: datetime,
    verdict: Verdict | None = None,
    dry_run: bool = False,
    facts: Facts | None = None,
) -> Processed:
    """`dry_run`: the caller rolls the transaction back; files outside it stay untouched."""
    cases = Cases(store)
    facts = facts or classify(inbound, config, own(config), now.date(), verdict)
    found = candidates(cases, inbound, config, now)
    if found.tagged is None and found.threaded is None and asks_for(inbound, facts):
        return for_customer(store, config, inbound, facts, spool_id, now, dry_run)
    decision = route(inbound, facts, found, config, now)
    return decided(store, config, inbound, facts, decision, spool_id, now, verdict, dry_run)


def decided(
    store: Store,
    config: Config,
    inbound: Inbound,
    facts: Facts,
    decision: Decision,
    spool_id: int | None,
    now: datetime,
    verdict: Verdict | None = None,
    dry_run: bool = False,
) -> Processed:
    """A routed message applied: its outcome stored and its mail queued."""
    cases = Cases(store)
    reference = None
    if decision.action == "new":
        reference = cases.next_reference(config.helpdesk.reference_prefix, now.year)
    fair_use = fair_use_of(store, config, facts, decision, now)
    ctx = Context(inbound, facts, decision, config, now, fair_use)
    result = outcome(ctx, reference)
    if result.merging and (refused := merging.refusals(store, ctx, result)):
        result = command_error(ctx, decision.case, refused)
    if result.allowlist:
        store.exclusive("allowlist")  # one writer of the file at a time, whatever the store
        result = allowlist.apply(ctx, result, write=not dry_run)
    result = stand_ins.redirect(store, config, result, now)
    result = loop_guard(store, ctx, result)
    queued = apply(store, config, result, inbound, spool_id, now)
    if result.merging:
        queued += carried_out(store, config, ctx, result)
    tell_webhooks(store, config, decision.case, result, now)
    case_ref = result.case.reference if result.case else None
    log.info(
        "processed",
        spool_id=spool_id,
        message_id=inbound.message_id,
        case=case_ref,
        action=decision.action,
        reason=decision.reason,
        queued=len(queued),
        auth=verdict.summary() if verdict else None,
    )
    return Processed(spool_id or 0, facts, decision, case_ref, queued)


def carried_out(store: Store, config: Config, ctx: Context, result: Outcome) -> tuple[dict, ...]:
    """#merge, #unmerge and #split done, and the mail each of their cases sends queued."""
    queued = []
    for case, mail in merging.carry_out(store, config, ctx, result):
        thread = Cases(store).thread_ids(case.id)
        queued.append(queue_mail(store, config, mail, case, thread, None, ctx.now))
    return tuple(q for q in queued if q)


def asks_for(inbound: Inbound, facts: Facts) -> bool:
    """A proven engineer's new mail with `#for` on its first line."""
    sender = facts.sender
    return sender.role == "engineer" and sender.proven and behalf.asks(inbound)


def for_customer(
    store: Store,
    config: Config,
    inbound: Inbound,
    facts: Facts,
    spool_id: int | None,
    now: datetime,
    dry_run: bool = False,
) -> Processed:
    """The forwarded mail opens a case as the customer's own: their customer, plan and
    allow-list, their acknowledgement; the engineer vouches for it, so no proof is asked of
    the original. The engineer's words are kept as a note; an unreadable forward is answered
    to the engineer and opens nothing."""
    unwrapped = behalf.unwrap(inbound)
    if isinstance(unwrapped, str):
        return for_refused(store, config, inbound, facts, spool_id, now, unwrapped)
    original = unwrapped.original
    customer = classify(original, config, own(config), now.date())
    found = candidates(Cases(store), original, config, now)
    decision = route(original, customer, found, config, now)
    if decision.action != "new":
        why = f"{original.from_addr} cannot have a case opened ({decision.reason}); nothing opened"
        return for_refused(store, config, inbound, facts, spool_id, now, why)
    decision = replace(
        decision, reason=f"{decision.reason}, forwarded by {unwrapped.engineer} (#for)"
    )
    done = decided(store, config, original, customer, decision, spool_id, now, dry_run=dry_run)
    note(store, done.reference, unwrapped, now)
    return done


def for_refused(
    store: Store,
    config: Config,
    inbound: Inbound,
    facts: Facts,
    spool_id: int | None,
    now: datetime,
    why: str,
) -> Processed:
    """A `#for` that opens nothing: kept, and answered to the engineer alone."""
    line, number = command_line(inbound.text, "for")
    ctx = Context(inbound, facts, Decision("keep", "kept: #for not applied"), config, now)
    result = command_error(ctx, None, (CommandError(line, number, why),))
    queued = apply(store, config, result, inbound, spool_id, now)
    return Processed(spool_id or 0, facts, ctx.decision, None, queued)


def note(store: Store, reference: str, unwrapped: behalf.OnBehalf, now: datetime) -> None:
    """The engineer's words on the forward: an internal note on the case they opened."""
    cases = Cases(store)
    case = cases.get(reference)
    cases.add_event(case.id, now, "on_behalf", f"opened for the customer by {unwrapped.engineer}")
    if unwrapped.note:
        cases.add_message(
            {
                "case_id": case.id,
                "direction": "in",
                "kind": "note",
                "from_addr": unwrapped.engineer,
                "to_addrs": "[]",
                "subject": case.subject,
                "at": iso(now),
                "body": unwrapped.note,
                "route_reason": "the words of a forward with #for",
                "attachments": "[]",
            }
        )


def fair_use_of(
    store: Store, config: Config, facts: Facts, decision: Decision, now: datetime
) -> str:
    """Why the sender's customer is flagged for fair use this month: the engineers' notice of
    its new case says so. Asked only when a customer's mail opens a case."""
    customer = facts.sender.customer
    if customer is None or decision.action != "new":
        return ""
    return report.flagged_this_month(store, config, now).get(customer, "")


def tell_webhooks(
    store: Store, config: Config, before: Case | None, result: Outcome, now: datetime
) -> None:
    """The change's events queued for `[[webhooks]]`, in its own transaction."""
    if result.case is None:
        return
    kinds = [kind for kind, _ in result.events] + (["rating"] if result.rating else [])
    replied = not result.created and result.record.kind in REPLIES
    hooks.announce(
        store, config, None if result.created else before, result.case, kinds, now, replied
    )


def loop_guard(store: Store, ctx: Context, result: Outcome) -> Outcome:
    """What the sender wrote on the case lately, for the loop breaker to judge."""
    case = result.case
    if case is None or case.id is None or result.created:
        return result
    talk = Conversations(store)
    since = ctx.now - ctx.config.policy.loop_window.wall
    paused_at = talk.last_event_at(case.id, loops.PAUSED_EVENT)
    ids = (*ctx.inbound.in_reply_to, *ctx.inbound.references)
    policy = ctx.config.policy
    # enough to tell either bound is passed; a flood of mail on one case costs no more each
    enough = policy.loop_messages + policy.loop_repeats
    traffic = loops.Traffic(
        earlier=tuple(talk.bodies_from(case.id, ctx.inbound.from_addr, since, enough)),
        answers_pause=paused_at is not None and talk.answers_mail_since(case.id, ids, paused_at),
    )
    return loops.guard(ctx, result, traffic)


def candidates(cases: Cases, inbound: Inbound, config: Config, now: datetime) -> Candidates:
    prefix = config.helpdesk.reference_prefix
    tagged = next((c for ref in tags(inbound.subject, prefix) if (c := cases.get(ref))), None)
    tagged = tagged and surviving(cases, tagged)
    ids = (*inbound.references, *inbound.in_reply_to)
    # every Message-ID we sent is stored, so a reply whose client dropped the tag still finds
    # its case here; guessing a reference into a made-up Message-ID finds nothing
    threaded = cases.by_message_ids(ids)
    recent = cases.new_cases_since(inbound.from_addr, now - timedelta(hours=1))
    return Candidates(
        tagged, threaded[0] if threaded else None, threaded[1] if threaded else None, recent
    )


def surviving(cases: Cases, case: Case) -> Case:
    """A case folded into another threads there, for ever (a few hops at most)."""
    for _ in range(8):
        if not case.merged_into or (into := cases.get(case.merged_into)) is None:
            break
        case = into
    return case


def apply(
    store: Store,
    config: Config,
    result: Outcome,
    inbound: Inbound,
    spool_id: int | None,
    now: datetime,
) -> tuple[dict, ...]:
    cases = Cases(store)
    case = result.case
    if case is not None:
        case = cases.save(case, sla.next_due(case, config))
        for kind, detail in result.events:
            cases.add_event(case.id, now, kind, detail)
        keep_teamwork(store, config, result, case, inbound.from_addr, now)
    if result.bounced:
        for case_id in cases.mark_bounced(result.bounced):
            cases.add_event(case_id, now, "bounce", "outgoing mail reported undeliverable")
    if result.rating is not None:
        Ratings(store).record(replace(result.rating, case_id=case.id))
    message_id = cases.add_message(inbound_row(inbound, result, case, spool_id, now))
    if case is not None and result.record.kind not in UNSEARCHED:
        SearchIndex(store).add(case.id, message_id, search.indexed(inbound, result.record.body))
    thread = cases.thread_ids(case.id) if case else []
    return tuple(
        q
        for mail in result.mails
        if not told_today(store, mail, now)
        and (q := queue_mail(store, config, mail, case, thread, inbound, now))
    )


def keep_teamwork(
    store: Store, config: Config, result: Outcome, case: Case, writer: str, now: datetime
) -> None:
    """An engineer's reminders, time spent and answer to a page, with the mail that gave
    them; the page a new case sent, with its page_command's arguments."""
    for reminder in result.reminders:
        Reminders(store).add(case.id, reminder, now)
    if result.minutes:
        TimeSpent(store).add(case.id, writer, result.minutes, now)
    if result.paged:
        ack_by = now + config.oncall.ack_within.wall
        command = oncall.command(config, case, result.paged)
        Pages(store).add(case.id, result.paged, 0, now, ack_by, command)
    if result.answered:
        Pages(store).ack(case.id, now)


UNSEARCHED = frozenset({"command_error"})  # applied nothing: not part of the case's story

ONCE_A_DAY = frozenset({"unverified_notice"})


def told_today(store: Store, mail: Mail, now: datetime) -> bool:
    """An engineer hears once a day that mail in their name was not proven: a forger's
    flood must not become a flood in the engineer's inbox."""
    if mail.kind not in ONCE_A_DAY:
        return False
    queue, since = OutboxQueue(store), now - timedelta(days=1)
    return all(queue.kind_sent_since(mail.kind, r, since) for r in mail.to)


def inbound_row(
    inbound: Inbound, result: Outcome, case: Case | None, spool_id: int | None, now: datetime
) -> dict:
    rec = result.record
    return {
        "case_id": case.id if case else None,
        "direction": "in",
        "kind": rec.kind,
        "from_addr": inbound.from_addr,
        "to_addrs": json.dumps([*inbound.to, *inbound.cc]),
        "subject": inbound.subject,
        "at": iso(now),
        "message_id": inbound.message_id,
        "body": rec.body,
        "elided": rec.elided,
        "route_reason": rec.route_reason,
        "auth": rec.auth,
        "spool_id": spool_id,
        "attachments": json.dumps(
            [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in inbound.attachments
            ]
        ),
    }


def queue_mail(
    store: Store,
    config: Config,
    mail: Mail,
    case: Case | None,
    thread: list[str],
    inbound: Inbound | None,
    now: datetime,
) -> dict | None:
    """Render one mail into the outbox, unless every recipient is filtered out or it was
    to go once and went already."""
    mail = guarded(store, config, mail, now)
    if not mail.to or (mail.once and not SentOnce(store).claim(mail.once, now)):
        return None
    reference = case.reference if case else None
    message_id = message_id_for(reference, config.helpdesk.domain, secrets.token_hex(8))
    msg = render(mail, case, config, threading_for(mail, thread, inbound, message_id), now)
    outbox_id = OutboxQueue(store).enqueue(
        case_id=case.id if case else None,
        kind=mail.kind,
        message_id=message_id,
        mail_from="" if mail.automatic else config.helpdesk.address,
        recipients=(*mail.to, *mail.cc),
        raw=msg.raw,
        automatic=bool(mail.automatic),
        now=now,
    )
    outside = tuple(r for r in (*mail.to, *mail.cc) if r not in config.staff)
    Conversations(store).mail_sent(outside, now)
    if case is not None:
        Cases(store).add_message(outbound_row(mail, msg, case, message_id, outbox_id, now))
    return {"kind": mail.kind, "to": list(mail.to), "subject": msg.subject}


def guarded(store: Store, config: Config, mail: Mail, now: datetime) -> Mail:
    """The mail with only the recipients, in To and Cc alike, that every guard lets through;
    a Cc repeating a To goes once."""
    to = passing(store, config, mail, mail.to, now)
    cc = passing(store, config, mail, tuple(r for r in mail.cc if r not in to), now)
    return replace(mail, to=to, cc=cc)


def passing(
    store: Store, config: Config, mail: Mail, recipients: tuple[str, ...], now: datetime
) -> tuple[str, ...]:
    """Those of `recipients` (of one field of `mail`) that every guard lets through."""
    recipients = addressable(mail, recipients)
    recipients = allowed_recipients(store, config, mail, recipients, now)
    return within_mail_limit(store, config, mail, recipients, now)


def threading_for(
    mail: Mail, thread: list[str], inbound: Inbound | None, message_id: str
) -> Threading:
    if not mail.threaded:
        return Threading(message_id)
    replying_to = inbound.message_id if inbound and inbound.message_id in thread else None
    parent = replying_to or (thread[-1] if thread else None)
    # the first message and the latest few: enough for every client to thread, bounded in size
    return Threading(message_id, parent, tuple(dict.fromkeys(thread[:1] + thread[-9:])))


def addressable(mail: Mail, recipients: tuple[str, ...]) -> tuple[str, ...]:
    """The last guard: whatever a parser or a template got wrong, mail goes only to things
    that are addresses, never to a display name or a fragment of one."""
    kept = tuple(r for r in recipients if usable(r))
    if len(kept) < len(recipients):
        refused = sorted(set(recipients) - set(kept))
        log.warning("not an address: mail refused", kind=mail.kind, refused=refused)
    return kept


def allowed_recipients(
    store: Store, config: Config, mail: Mail, recipients: tuple[str, ...], now: datetime
) -> tuple[str, ...]:
    """Never mail ourselves, and never more automatic mail to an outside address than the
    hourly limit: the last guard against a loop that every other check missed. Our own
    staff are exempt, so a busy Monday never silences their warnings."""
    ours = set(config.helpdesk.addresses)
    recipients = tuple(r for r in dict.fromkeys(recipients) if r and r not in ours)
    if not mail.automatic:
        return recipients
    queue, since = OutboxQueue(store), now - timedelta(hours=1)
    sent = partial(queue.automatic_sent_since, since=since)
    return under_limit(config, mail, recipients, sent, config.policy.auto_replies_per_hour)


def within_mail_limit(
    store: Store, config: Config, mail: Mail, recipients: tuple[str, ...], now: datetime
) -> tuple[str, ...]:
    """No more mail of any kind to one outside address than the hourly limit: acknowledgements,
    relays and forwards alike, so no loop outlasts every other check. Staff are exempt."""
    talk, since = Conversations(store), now - timedelta(hours=1)
    sent = partial(talk.mail_sent_since, since=since)
    return under_limit(config, mail, recipients, sent, config.policy.mails_per_hour_per_recipient)


def under_limit(
    config: Config, mail: Mail, recipients: tuple[str, ...], sent: Callable[[str], int], limit: int
) -> tuple[str, ...]:
    """The recipients who got fewer than `limit` such mails in the last hour; our own staff
    always, so a busy Monday never silences their warnings."""
    kept = tuple(r for r in recipients if r in config.staff or sent(r) < limit)
    if len(kept) < len(recipients):
        log.warning(
            "mail limit per recipient reached",
            kind=mail.kind,
            automatic=bool(mail.automatic),
            dropped=sorted(set(recipients) - set(kept)),
        )
    return kept


def outbound_row(
    mail: Mail, msg: Rendered, case: Case, message_id: str, outbox_id: int, now: datetime
) -> dict:
    return {
        "case_id": case.id,
        "direction": "out",
        "kind": mail.kind,
        "from_addr": msg.sender,
        "to_addrs": json.dumps([*mail.to, *mail.cc]),
        "subject": msg.subject,
        "at": iso(now),
        "message_id": message_id,
        "body": msg.body,
        "outbox_id": outbox_id,
        "status": "queued",
    }
