"""Engineers' #due, #tier, #plan and #workaround, and the followers of an escalated case, pure:
a reply goes through classify, route and outcome at a fixed `now` (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdeskd import config as configuration
from helpdeskd.core import sla
from helpdeskd.core.classify import classify
from helpdeskd.core.commands import parse_commands
from helpdeskd.core.outcome import Context, outcome
from helpdeskd.core.parse import parse
from helpdeskd.core.route import Candidates, route
from helpdeskd.pipeline import own
from helpdeskd.sweep import settle
from tests.ipcelerate import IPCELERATE
from tests.support import mail, sample_case, write_config

CHICAGO = ZoneInfo("America/Chicago")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=CHICAGO)  # Monday
ALICE, BOB, JANE = "alice@helpdesk.test", "bob@helpdesk.test", "jane@ipcelerate.test"
EXECUTIVE = "executive@helpdesk.test"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return configuration.load(write_config(tmp_path_factory.mktemp("agreed"), extra=IPCELERATE))


def ipcelerate_case(config, priority="P1", opened=NOW - timedelta(hours=1)):
    case = sample_case(
        reference="HD-2026-00001",
        plan="ipcelerate",
        customer="IPcelerate",
        priority=priority,
        opener=JANE,
        contacts=(JANE,),
        opened_at=opened,
    )
    return sla.start_clocks(case, config)


def reply(config, case, body: str, sender: str = ALICE, now: datetime = NOW):
    inbound = parse(mail(sender, "Re: [HD-2026-00001] Help", body).as_bytes())
    facts = classify(inbound, config, own(config), now.date())
    decision = route(inbound, facts, Candidates(case, None), config, now)
    return outcome(Context(inbound, facts, decision, config, now))


def kinds(result) -> list[tuple[str, tuple[str, ...]]]:
    return [(m.kind, m.to) for m in result.mails]


def test_due_parses_a_date_a_time_a_duration_and_a_clock():
    def value(line):
        parsed = parse_commands(line + "\n", sender=ALICE, engineers=[ALICE])
        return parsed.changes[0].value if parsed.changes else parsed.errors[0].reason

    assert value("#due 2026-12-20") == "resolution 2026-12-20"
    assert value("#due 2026-12-20 15:00") == "resolution 2026-12-20 15:00"
    assert value("#DUE 5d") == "resolution 5d"
    assert value("#due workaround 2026-12-18") == "workaround 2026-12-18"
    assert "is not a deadline" in value("#due 2026-02-30")
    assert "is not a deadline" in value("#due next week")
    assert (
        "is not a tier" in parse_commands("#tier 4\n", sender=ALICE, engineers=[]).errors[0].reason
    )
    assert (
        "needs its text" in parse_commands("#plan\n", sender=ALICE, engineers=[]).errors[0].reason
    )


def test_due_sets_the_resolution_deadline_and_tells_the_customer_once(config):
    case = ipcelerate_case(config)
    result = reply(config, case, "#due 2026-12-18\n")
    clock = result.case.clocks.resolution  # created: the plan has none
    # the close of that working day on the plan's central calendar
    assert clock.deadline == datetime(2026, 12, 18, 18, 0, tzinfo=CHICAGO)
    assert (clock.agreed_by, clock.agreed_at) == (ALICE, NOW)
    assert kinds(result) == [("agreed_deadline", (JANE,))]
    assert result.events == (("due", f"resolution agreed for Fri 2026-12-18 18:00 CST by {ALICE}"),)
    # warnings and escalation count from the agreed date
    owed = {(p.kind, p.clock) for p in sla.pending(result.case, config)}
    assert ("breach", "resolution") in owed


def test_agreeing_again_is_recorded_with_who_and_when(config):
    case = reply(config, ipcelerate_case(config), "#due workaround 5d\n").case
    later = NOW + timedelta(hours=2)
    result = reply(config, case, "#due workaround 2026-12-21 10:00\n", sender=BOB, now=later)
    clock = result.case.clocks.get("workaround")
    assert clock.deadline == datetime(2026, 12, 21, 10, 0, tzinfo=CHICAGO)
    assert (clock.agreed_by, clock.agreed_at) == (BOB, later)
    # 5 business days from Monday 09:00: Tue, Wed, (Thanksgiving off), Fri, Mon, Tue 09:00
    assert result.events[0][1] == (
        f"workaround agreed for Mon 2026-12-21 10:00 CST by {BOB} "
        f"(was Tue 2026-12-01 09:00 CST, agreed by {ALICE})"
    )
    assert result.mails[0].context["again"] is True


def test_a_due_for_an_unknown_clock_or_a_past_date_applies_nothing(config):
    case = ipcelerate_case(config)
    unknown = reply(config, case, "#due patch 2026-12-20\n")
    assert [m.kind for m in unknown.mails] == ["command_error"]
    assert 'no clock "patch"' in unknown.events[0][1]
    past = reply(config, case, "#due 2026-11-20\n")
    assert "already past" in past.events[0][1]
    assert past.case.clocks.resolution is None


def test_due_moves_the_warning_and_the_escalation(config):
    case = ipcelerate_case(config, "P3")
    case = replace(sla.escalated(case, config, 1, NOW), escalation_level=1)
    agreed = reply(config, case, "#due action_plan 2026-11-24 18:00\n").case
    clock = agreed.clocks.get("action_plan")
    assert clock.deadline == datetime(2026, 11, 24, 18, 0, tzinfo=CHICAGO)
    # warned at 0.8 of the 19 working hours from the agreement (Mon 09:00 + 15h12)
    assert clock.warn_at == datetime(2026, 11, 24, 14, 12, tzinfo=CHICAGO)
    before = [p.at for p in sla.pending(case, config) if p.clock == "action_plan"]
    after = [p.at for p in sla.pending(agreed, config) if p.clock == "action_plan"]
    assert min(after) < min(before)  # 20 business days were the plan's target


def test_tier_2_hand_over_tells_tier_2_and_starts_its_clock(config):
    result = reply(config, ipcelerate_case(config), "#tier 2\n")
    assert result.case.tier == 2
    assert kinds(result) == [("tier_handover", (BOB,))]
    level_two = result.case.clocks.get("level_two")
    assert level_two.started_at == NOW and level_two.deadline == NOW + timedelta(hours=2)
    assert result.events == (("tier", f"1 -> 2 by {ALICE}; started level_two"),)
    # a reply from tier 2 meets it
    met = reply(config, result.case, "Looking at it now.", sender=BOB, now=NOW + timedelta(hours=1))
    assert met.case.clocks.get("level_two").met_at == NOW + timedelta(hours=1)


def test_plan_and_workaround_stop_their_clocks_and_plan_reaches_the_customer(config):
    case = sla.escalated(ipcelerate_case(config), config, 1, NOW)
    planned = reply(config, case, "#plan Reproduce on 4.2, then patch the parser.\n")
    assert planned.case.clocks.get("action_plan").met_at == NOW
    assert [m.kind for m in planned.mails] == ["action_plan", "follower"]
    assert planned.mails[0].context["plan"] == "Reproduce on 4.2, then patch the parser."
    assert planned.events[0] == (
        "action_plan",
        "Reproduce on 4.2, then patch the parser. (met action_plan)",
    )
    fixed = reply(config, planned.case, "#workaround Disable the cache.\n")
    assert fixed.case.clocks.get("workaround").met_at == NOW
    assert [m.kind for m in fixed.mails] == ["follower"]
    assert not any(JANE in m.to for m in fixed.mails)


def test_plan_with_note_stays_inside(config):
    case = sla.escalated(ipcelerate_case(config), config, 1, NOW)
    result = reply(config, case, "#plan Call them first.\n#note\nDraft only.\n")
    assert result.case.clocks.get("action_plan").met_at == NOW
    assert not any(JANE in m.to for m in result.mails)


def test_followers_get_one_mail_at_each_milestone(config):
    case = ipcelerate_case(config)
    level_one = case.clocks.get("level_one")
    # the plan's ladder escalates at the level-one breach: the executive follows the case
    case, steps = settle(case, config, level_one.deadline)
    assert case.followers == (EXECUTIVE,)
    assert [m.kind for s in steps for m in s.mails].count("escalation") == 1
    now, received = level_one.deadline, []
    for body in (
        "#due 2026-12-18\n",
        "#plan Patch the parser.\n",
        "#workaround Disable the cache.\n",
        "#resolve\n",
        "#reopen\n",
    ):
        now += timedelta(hours=1)
        result = reply(config, case, body, now=now)
        case = result.case
        received += [m.context["milestone"] for m in result.mails if EXECUTIVE in m.to]
    assert received == ["agreed deadline", "action plan", "workaround", "resolved", "reopened"]
    # another reply with no milestone mails nobody who follows
    quiet = reply(config, case, "Still on it.", now=now + timedelta(hours=1))
    assert not any(EXECUTIVE in m.to for m in quiet.mails)


def test_a_case_handed_to_tier_2_is_followed_up_by_tier_2(config):
    handed = reply(config, ipcelerate_case(config), "#tier 2\n").case
    answer = reply(config, handed, "Here are the logs.", sender=JANE, now=NOW + timedelta(hours=1))
    assert [(m.kind, m.to) for m in answer.mails] == [("follow_up", (BOB,))]
    # before the hand-over the plan's notification tier has it
    first = reply(config, ipcelerate_case(config), "Logs.", sender=JANE)
    assert [m.to for m in first.mails if m.kind == "follow_up"] == [(ALICE,)]
