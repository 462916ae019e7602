"""`#merge`, `#unmerge` and `#split` carried out: they move messages between cases, so they
need the store, in the transaction of the engineer's mail. `refusals` runs before anything is
applied (an error applies nothing); `carry_out` after the engineer's case is saved, and
returns the mail each case sends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from helpdeskd.adapters.store import Cases, Merges, Store
from helpdeskd.config import Config
from helpdeskd.core import sla
from helpdeskd.core.commands import CommandError, command_line
from helpdeskd.core.outcome import Context, Outcome, acknowledgement
from helpdeskd.model import Case, Mail

UNMERGE_WITHIN = timedelta(days=30)


def refusals(store: Store, ctx: Context, result: Outcome) -> tuple[CommandError, ...]:
    """Why a #merge, #unmerge or #split of this mail cannot be carried out."""
    case = ctx.decision.case
    found = []
    for change in result.merging:
        why = WHY_NOT[change.kind](store, ctx, case, change.value)
        if why:
            found.append(CommandError(*command_line(ctx.inbound.text, change.kind), why))
    return tuple(found)


def _merge_refused(store: Store, ctx: Context, case: Case, reference: str) -> str | None:
    target = Cases(store).get(reference)
    if target is None:
        return f"there is no case {reference}; nothing was merged"
    if target.id == case.id:
        return "a case cannot be merged into itself"
    if target.merged_into:
        return f"{reference} was merged into {target.merged_into}: merge into that one"
    return None


def _unmerge_refused(store: Store, ctx: Context, case: Case, value: None) -> str | None:
    if Merges(store).last(case.id, ctx.now - UNMERGE_WITHIN) is None:
        return f"no case was merged into {case.reference} in the last 30 days; nothing to undo"
    return None


def _split_refused(store: Store, ctx: Context, case: Case, value: None) -> str | None:
    if split_message(store, ctx, case) is None:
        return (
            "#split makes a customer's later message a case of its own: answer the "
            "follow-up that carried it (the opening message is the case itself)"
        )
    return None


WHY_NOT = {"merge": _merge_refused, "unmerge": _unmerge_refused, "split": _split_refused}


def split_message(store: Store, ctx: Context, case: Case) -> dict | None:
    """The customer's message the engineer answers: the last one before the mail of ours
    they reply to (else the latest), never the one that opened the case."""
    messages = Cases(store).messages(case.id)
    ours = [m["id"] for m in messages if m["message_id"] in ctx.inbound.in_reply_to]
    before = min(ours) if ours else None
    theirs = [m for m in messages if m["direction"] == "in" and m["kind"] == "customer"]
    later = [m for m in theirs[1:] if before is None or m["id"] < before]
    return later[-1] if later else None


def carry_out(
    store: Store, config: Config, ctx: Context, result: Outcome
) -> list[tuple[Case, Mail]]:
    """Each change done; the mail to queue, with the case it belongs to."""
    mails = []
    for change in result.merging:
        mails += DONE[change.kind](store, config, ctx, result.case, change.value)
    return mails


def _merge(store: Store, config: Config, ctx: Context, folded: Case, reference: str) -> list:
    """The surviving case gets the folded one's people, messages and history; its customers
    get one mail naming the reference to use."""
    cases, before = Cases(store), ctx.decision.case
    target = cases.get(reference)
    people = (before.opener, *before.contacts)
    added = {
        "contacts": [a for a in dict.fromkeys(people) if a not in target.contacts],
        "participants": [a for a in before.participants if a not in target.participants],
        "status": before.status,
    }
    target = replace(
        target,
        contacts=(*target.contacts, *added["contacts"]),
        participants=(*target.participants, *added["participants"]),
        updated_at=ctx.now,
    )
    target = cases.save(target, sla.next_due(target, config))
    Merges(store).fold(folded.id, target.id, ctx.inbound.from_addr, added, ctx.now)
    cases.add_event(target.id, ctx.now, "merged", f"{folded.reference} folded in")
    context = {"folded": folded.reference}
    return [(target, Mail("merged", "merged", target.contacts, context, cc=target.participants))]


def _unmerge(store: Store, config: Config, ctx: Context, case: Case, value: None) -> list:
    """Both cases as they were: the folded one's messages, history and people go back, and it
    opens again as it stood; its customers are told to use its reference again."""
    cases, merges = Cases(store), Merges(store)
    merge = merges.last(case.id, ctx.now - UNMERGE_WITHIN)
    merges.unfold(merge, ctx.now)
    moved = merge["moved"]
    case = replace(
        case,
        contacts=tuple(a for a in case.contacts if a not in moved["contacts"]),
        participants=tuple(a for a in case.participants if a not in moved["participants"]),
    )
    cases.save(case, sla.next_due(case, config))
    folded = cases.by_id(merge["folded_id"])
    restored = replace(folded, status=moved["status"], merged_into=None, updated_at=ctx.now)
    if moved["status"] not in sla.SETTLED:
        restored = sla.reopen(replace(restored, closed_at=None), config, ctx.now)
    restored = cases.save(restored, sla.next_due(restored, config))
    for one, other in ((case, restored), (restored, case)):
        cases.add_event(one.id, ctx.now, "unmerged", f"{other.reference} apart again")
    context = {"surviving": case.reference}
    mail = Mail("unmerged", "unmerged", restored.contacts, context, cc=restored.participants)
    return [(restored, mail)]


def _split(store: Store, config: Config, ctx: Context, case: Case, value: None) -> list:
    """The customer's message becomes a new case of the same customer, naming the original."""
    cases = Cases(store)
    message = split_message(store, ctx, case)
    sender = message["from_addr"]
    new = Case(
        reference=cases.next_reference(config.helpdesk.reference_prefix, ctx.now.year),
        status="new",
        priority=case.priority,
        plan=case.plan,
        customer=case.customer,
        subject=message["subject"] or case.subject,
        opener=sender,
        opened_at=ctx.now,
        updated_at=ctx.now,
        contacts=(sender,),
        related=case.reference,
    )
    new = sla.start_clocks(new, config)
    new = cases.save(new, sla.next_due(new, config))
    Merges(store).move_message(message["id"], new.id)
    cases.add_event(new.id, ctx.now, "split", f"from {case.reference} by {ctx.inbound.from_addr}")
    cases.add_event(case.id, ctx.now, "split", f"message of {sender} became {new.reference}")
    ack = replace(acknowledgement(ctx, new), to=(sender,))
    return [(new, ack)]


DONE = {"merge": _merge, "unmerge": _unmerge, "split": _split}
