"""Named clocks of the IPcelerate plan (issue 21), worked out by hand (pure: `now` is given).

`central` is 08:00-18:00 Monday to Friday in Chicago, Thanksgiving (Thursday 2026-11-26) off;
`around-the-clock` counts clock hours. US daylight saving ends on Sunday 2026-11-01: Chicago is
UTC-5 before, UTC-6 after. Tier 2 works 09:00-17:00 on `tier-two`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdeskd import config as configuration
from helpdeskd.core import sla
from tests.ipcelerate import IPCELERATE
from tests.support import sample_case, write_config

CHICAGO = ZoneInfo("America/Chicago")

PRO_PLUS = """
[plans.proplus]
calendar = "business"
first_response = { P1 = "1h", P2 = "2h", P3 = "4h", P4 = "4h" }
resolution = { P1 = "1d", P2 = "2d", P3 = "5d", P4 = "5d" }

[plans.proplus.clocks.tier_response]
starts = "tier 2"
stops = "reply"
targets = { P1 = "4h", P2 = "4h", P3 = "8h", P4 = "8h" }
"""


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clocks")
    return configuration.load(write_config(folder, extra=IPCELERATE + PRO_PLUS))


def opened(config, at: datetime, priority: str = "P1", plan: str = "ipcelerate"):
    case = sample_case(plan=plan, customer="IPcelerate", priority=priority, opened_at=at)
    return sla.start_clocks(case, config)


def deadlines(case) -> dict[str, datetime | None]:
    return {c.name: c.deadline and c.deadline.astimezone(CHICAGO) for c in case.clocks}


# Opened Friday 16:00, escalated Monday 10:00, handed to tier 2 Monday 11:00 (Nov 2026, CST).
# Clock hours run through the weekend; business days skip it and Thanksgiving.
EXPECTED = {
    "P1": {
        "level_one": local(2026, 11, 20, 18, 0),  # 2 clock hours
        "level_two": local(2026, 11, 23, 13, 0),
        "action_plan": local(2026, 11, 27, 10, 0),  # Tue, Wed, (Thu off), Fri
        "workaround": local(2026, 12, 8, 10, 0),  # 24 25 27 30 1 2 3 4 7 8
    },
    "P2": {
        "level_one": local(2026, 11, 20, 22, 0),
        "level_two": local(2026, 11, 23, 17, 0),
        "action_plan": local(2026, 12, 1, 10, 0),  # 24 25 27 30 1
        "workaround": local(2026, 12, 22, 10, 0),  # 20 business days
    },
    "P3": {
        "level_one": local(2026, 11, 21, 16, 0),  # Saturday: clock hours
        "level_two": local(2026, 11, 24, 11, 0),
        "action_plan": local(2026, 12, 22, 10, 0),
        "workaround": None,  # "next release"
    },
}
EXPECTED["P4"] = EXPECTED["P3"]


@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4"])
def test_every_clock_of_every_priority_across_a_weekend_and_a_holiday(config, priority):
    case = opened(config, local(2026, 11, 20, 16, 0), priority)
    assert deadlines(case) == {
        "level_one": EXPECTED[priority]["level_one"],
        "level_two": None,  # not started before tier 2 has the case
        "action_plan": None,
        "workaround": None,
    }
    case = sla.escalated(replace(case, escalation_level=1), config, 1, local(2026, 11, 23, 10, 0))
    case, started = sla.start(case, "tier 2", config, local(2026, 11, 23, 11, 0))
    assert started == ["level_two"]
    assert deadlines(case) == EXPECTED[priority]
    workaround = case.clocks.get("workaround")
    assert workaround.target == ("10d" if priority == "P1" else "20d" if priority == "P2" else
                                 "next release")  # fmt: skip
    assert workaround.started_at == local(2026, 11, 23, 10, 0)


def test_a_p1_counts_clock_hours_and_business_days_side_by_side_across_dst(config):
    # Friday 2026-10-30 16:00 CDT (21:00 UTC); DST ends on Sunday
    case = opened(config, local(2026, 10, 30, 16, 0))
    case = sla.escalated(case, config, 1, local(2026, 10, 30, 16, 0))
    level_one, action = case.clocks.get("level_one"), case.clocks.get("action_plan")
    assert (level_one.calendar, action.calendar) == ("around-the-clock", "central")
    assert level_one.deadline == datetime(2026, 10, 30, 23, 0, tzinfo=UTC)  # 18:00 CDT
    # three business days later at the same local hour, now in CST: Mon, Tue, Wed 16:00
    assert action.deadline == local(2026, 11, 4, 16, 0) == datetime(2026, 11, 4, 22, tzinfo=UTC)
    assert action.warn_at < action.deadline


def test_clock_hours_across_the_dst_change_are_real_hours(config):
    case = opened(config, local(2026, 10, 31, 12, 0), "P3")  # Saturday 12:00 CDT
    # 24 real hours later the wall clock in Chicago shows 11:00 CST
    assert case.clocks.get("level_one").deadline.astimezone(CHICAGO) == local(2026, 11, 1, 11, 0)


def test_a_clock_started_by_tier_2_counts_on_the_tiers_calendar(config):
    case = opened(config, local(2026, 11, 20, 9, 0), plan="proplus")
    case, _ = sla.start(case, "tier 2", config, local(2026, 11, 20, 16, 30))
    clock = case.clocks.get("tier_response")
    # tier 2 works 09:00-17:00: 30 minutes on Friday, 3h30 on Monday
    assert clock.calendar == "tier-two"
    assert clock.deadline == local(2026, 11, 23, 12, 30)
    # the plan's other clocks stay on its own calendar
    assert case.clocks.first_response.calendar == "business"


def test_plan_and_workaround_stop_their_own_clocks(config):
    case = opened(config, local(2026, 11, 23, 9, 0))
    case = sla.escalated(case, config, 1, local(2026, 11, 23, 10, 0))
    case, met = sla.stop(case, "#plan", local(2026, 11, 24, 10, 0))
    assert met == ["action_plan"]
    assert [c.name for c in sla.running(case)] == ["level_one", "workaround"]
    case, met = sla.stop(case, "#workaround", local(2026, 11, 25, 10, 0))
    assert met == ["workaround"]
    case, met = sla.stop(case, "reply", local(2026, 11, 25, 11, 0))
    assert met == ["level_one"]  # level two has not started: a reply does not meet it
    assert case.clocks.get("level_two").started_at is None


def test_next_release_is_never_warned_and_is_met_when_stopped(config):
    case = opened(config, local(2026, 11, 23, 9, 0), "P3")
    case = sla.escalated(case, config, 1, local(2026, 11, 23, 10, 0))
    case = sla.stop(
        sla.stop(case, "reply", local(2026, 11, 23, 9, 30))[0], "#plan", local(2026, 11, 24)
    )[0]
    far = local(2027, 6, 1, 9, 0)
    due = sla.due_actions(case, config, far)
    assert [a.clocks for a in due if a.kind in ("warn", "breach")] == []
    assert "workaround" not in {p.clock for p in sla.pending(case, config)}
    met = sla.stop(case, "#workaround", far)[0].clocks.get("workaround")
    assert met.met_at == far and met.deadline is None


def test_a_plans_own_ladder_replaces_the_helpdesks(config):
    case = opened(config, local(2026, 11, 23, 9, 0))
    level_one = case.clocks.get("level_one")
    # the plan's one level is on breach; the helpdesk's first level (on warn) does not apply
    assert sla.escalation_of(case, config)[0].notify == ("executive@helpdesk.test",)
    actions = sla.due_actions(case, config, level_one.warn_at)
    assert [a.kind for a in actions] == ["warn"]
    actions = sla.due_actions(case, config, level_one.deadline)
    assert [(a.kind, a.level) for a in actions] == [("breach", 0), ("escalate", 1)]
    done = case
    for action in actions:
        done = sla.apply_action(done, action, config, level_one.deadline)
    assert done.followers == ("executive@helpdesk.test",)
    assert done.clocks.get("action_plan").started_at == level_one.deadline


def test_an_agreed_deadline_moves_warning_and_escalation(config):
    case = opened(config, local(2026, 11, 23, 9, 0), "P3")
    case = sla.escalated(case, config, 1, local(2026, 11, 23, 10, 0))
    agreed = local(2026, 12, 18, 15, 0)
    case = sla.agree(
        case, "workaround", agreed, "bob@helpdesk.test", config, local(2026, 11, 23, 12)
    )
    clock = case.clocks.get("workaround")
    assert (clock.deadline, clock.agreed_by, clock.target) == (
        agreed,
        "bob@helpdesk.test",
        "next release",
    )
    assert clock.warn_at < agreed
    assert any(p.clock == "workaround" and p.kind == "breach" for p in sla.pending(case, config))
    # a recomputation (a priority change) keeps what was agreed
    assert (
        sla.start_clocks(replace(case, priority="P1"), config).clocks.get("workaround").deadline
        == agreed
    )


@settings(max_examples=60, deadline=None)
@given(
    opened_after=st.integers(0, 14 * 24 * 60),
    pause_after=st.integers(0, 10 * 24 * 60),
    pause_for=st.integers(1, 10 * 24 * 60),
    priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
)
def test_adding_a_pause_never_moves_a_deadline_earlier(
    config, opened_after, pause_after, pause_for, priority
):
    start = local(2026, 10, 26, 0, 0) + timedelta(minutes=opened_after)
    case = opened(config, start, priority)
    case = sla.escalated(case, config, 1, start + timedelta(minutes=1))
    paused_at = start + timedelta(minutes=1 + pause_after)
    waited = sla.pause(replace(case, status="waiting"), paused_at)
    waited = sla.resume(
        replace(waited, status="open"), config, paused_at + timedelta(minutes=pause_for)
    )
    for before, after in zip(case.clocks, waited.clocks, strict=True):
        if before.deadline is not None:
            assert after.deadline >= before.deadline, before.name


def test_the_status_page_names_every_clock_and_what_it_waits_for(config):
    from helpdeskd import portal, views

    case = opened(config, local(2026, 11, 23, 9, 0), "P3")
    case = sla.escalated(case, config, 1, local(2026, 11, 23, 10, 0))
    now = local(2026, 11, 23, 11, 0)
    lines = [portal.clock_line(c) for c in views.clocks_json(case, config, now)]
    assert [(c["name"], c["state"], c["deadline_text"]) for c in lines] == [
        ("level_one", "running", "2026-11-24 09:00 CST"),
        ("level_two", "not started", "-"),
        ("action_plan", "running", "2026-12-22 10:00 CST"),
        ("workaround", "running", "next release"),
    ]


# Opened Saturday 2026-10-31 12:00 CDT and escalated at once; handed to tier 2 on Sunday
# 2026-11-01 12:00 CST, after daylight saving ended at 02:00 that night. Clock hours are real
# hours; business days count from Monday 08:00 (CST) and skip Thanksgiving.
ACROSS_DST = {
    "P1": {
        "level_one": local(2026, 10, 31, 14, 0),
        "level_two": local(2026, 11, 1, 14, 0),
        "action_plan": local(2026, 11, 5, 8, 0),
        "workaround": local(2026, 11, 16, 8, 0),  # Nov 3 4 5 6 9 10 11 12 13 16
    },
    "P2": {
        "level_one": local(2026, 10, 31, 18, 0),
        "level_two": local(2026, 11, 1, 18, 0),
        "action_plan": local(2026, 11, 9, 8, 0),
        "workaround": local(2026, 12, 1, 8, 0),  # 20 business days, Thanksgiving off
    },
    "P3": {
        "level_one": local(2026, 11, 1, 11, 0),  # 24 real hours: 12:00 CDT is 11:00 CST
        "level_two": local(2026, 11, 2, 12, 0),
        "action_plan": local(2026, 12, 1, 8, 0),
        "workaround": None,
    },
}
ACROSS_DST["P4"] = ACROSS_DST["P3"]


@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4"])
def test_every_clock_of_every_priority_across_the_dst_change(config, priority):
    case = opened(config, local(2026, 10, 31, 12, 0), priority)
    case = sla.escalated(case, config, 1, local(2026, 10, 31, 12, 0))
    case, _ = sla.start(case, "tier 2", config, local(2026, 11, 1, 12, 0))
    assert deadlines(case) == ACROSS_DST[priority]
