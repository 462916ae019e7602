"""SLA clocks and what the scheduler owes a case, worked out by hand (pure: `now` is given).

The test configuration's `business` calendar is America/Chicago, Monday to Friday 08:00-17:00;
in April 2026 Chicago is UTC-5. Its `standard` plan counts P1 on the 24x7 `always` calendar
(UTC), warns at 0.8 of a target, and escalates to the lead at warn_at and to the manager at
the deadline. Waiting cases are warned after 3 working days and closed 2 working days later.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdeskd import config as configuration
from helpdeskd.config import EscalationLevel
from helpdeskd.core import sla
from helpdeskd.core.calendar import Duration
from helpdeskd.model import Case
from tests.support import sample_case, write_config

CHICAGO = ZoneInfo("America/Chicago")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO)


def at_local(moment: datetime) -> datetime:
    return moment.astimezone(CHICAGO)


@pytest.fixture
def config(tmp_path):
    return configuration.load(write_config(tmp_path))


def new_case(config, opened: datetime, priority: str = "P2", **fields) -> Case:
    case = sample_case(
        reference="HD-2026-00001",
        status="new",
        priority=priority,
        plan="standard",
        customer="Globex",
        subject="printer on fire",
        opener="boss@globex.test",
        opened_at=opened,
        contacts=("boss@globex.test",),
        **fields,
    )
    return sla.start_clocks(case, config)


def kinds(actions) -> list[tuple[str, int]]:
    return [(a.kind, a.level) for a in actions]


def settle(case, config, now):
    for action in sla.due_actions(case, config, now):
        case = sla.apply_action(case, action, config, now)
    return case


# -- the clocks -----------------------------------------------------------------------------


def test_p2_opened_friday_afternoon_is_due_monday_morning(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    fr = case.clocks.first_response
    # 30 minutes on Friday, 3h30 on Monday
    assert at_local(fr.deadline) == local(2026, 4, 20, 11, 30)
    # 0.8 of 4h is 3h12: 30 minutes on Friday, 2h42 on Monday
    assert at_local(fr.warn_at) == local(2026, 4, 20, 10, 42)
    assert (fr.target, fr.calendar) == ("4h", "business")
    # 5 working days from Friday 16:30 is the next Friday at 16:30
    assert at_local(case.clocks.resolution.deadline) == local(2026, 4, 24, 16, 30)


def test_p1_counts_on_its_24x7_override(config):
    opened = local(2026, 4, 17, 16, 30)  # 21:30 UTC, a Friday evening
    case = new_case(config, opened, "P1")
    fr = case.clocks.first_response
    assert fr.calendar == "always"
    assert fr.deadline == datetime(2026, 4, 17, 23, 30, tzinfo=UTC)
    assert fr.warn_at == datetime(2026, 4, 17, 23, 6, tzinfo=UTC)
    assert case.clocks.resolution.deadline == opened + timedelta(days=3)


def test_a_deadline_at_closing_time_stays_there(config):
    case = new_case(config, local(2026, 4, 20, 13, 0))
    assert at_local(case.clocks.first_response.deadline) == local(2026, 4, 20, 17, 0)


def test_priority_change_recomputes_and_renews_the_changed_clocks(config):
    case = new_case(config, local(2026, 4, 20, 9, 0), "P3")
    assert at_local(case.clocks.first_response.deadline) == local(2026, 4, 21, 9, 0)
    case = replace(case, notices=frozenset({"warn:first_response", "escalate:1"}))
    raised = sla.start_clocks(replace(case, priority="P1"), config)
    fr = raised.clocks.first_response
    assert (fr.target, fr.calendar) == ("2h", "always")
    assert fr.deadline == local(2026, 4, 20, 11, 0)
    # a new promise may be warned about again; the escalation already made stands
    assert raised.notices == {"escalate:1"}


def test_recomputing_with_the_same_target_keeps_the_notices(config):
    case = new_case(
        config, local(2026, 4, 20, 9, 0), "P2", notices=frozenset({"warn:first_response"})
    )
    assert sla.start_clocks(case, config).notices == {"warn:first_response"}


def test_pause_and_resume_push_the_deadlines_by_the_working_time_waited(config):
    case = new_case(config, local(2026, 4, 20, 9, 0))  # Monday; first response due 13:00
    case = sla.pause(replace(case, status="waiting"), local(2026, 4, 20, 10, 0))
    # Monday 10:00-17:00 and Tuesday 08:00-10:00: 9 working hours, the night not counted
    case = sla.resume(replace(case, status="open"), config, local(2026, 4, 21, 10, 0))
    assert case.waiting_since is None
    assert case.paused_minutes == 9 * 60
    assert at_local(case.clocks.first_response.deadline) == local(2026, 4, 21, 13, 0)
    assert at_local(case.clocks.first_response.warn_at) == local(2026, 4, 21, 12, 12)


def test_pausing_twice_keeps_the_first_instant(config):
    case = sla.pause(new_case(config, local(2026, 4, 20, 9, 0)), local(2026, 4, 20, 10, 0))
    assert sla.pause(case, local(2026, 4, 20, 11, 0)).waiting_since == local(2026, 4, 20, 10, 0)


def test_a_met_clock_keeps_the_deadline_it_was_met_against(config):
    case = new_case(config, local(2026, 4, 20, 9, 0))
    case = sla.meet(case, "first_response", local(2026, 4, 20, 14, 0))  # an hour late
    case = sla.pause(replace(case, status="waiting"), local(2026, 4, 20, 15, 0))
    case = sla.resume(case, config, local(2026, 4, 22, 15, 0))
    fr = case.clocks.first_response
    assert at_local(fr.deadline) == local(2026, 4, 20, 13, 0)
    assert sla.standing(case, fr, config, local(2026, 4, 23, 9, 0)).late


def test_standing_counts_working_time_used_and_left(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    stand = sla.standing(case, case.clocks.first_response, config, local(2026, 4, 20, 9, 0))
    assert (stand.used, stand.left) == (timedelta(minutes=90), timedelta(minutes=150))
    stand = sla.standing(case, case.clocks.first_response, config, local(2026, 4, 20, 12, 50))
    assert stand.late and sla.words(stand.left) == "1h 20m"


def test_a_paused_clock_stands_where_it_stopped(config):
    case = new_case(config, local(2026, 4, 20, 9, 0))
    case = sla.pause(replace(case, status="waiting"), local(2026, 4, 20, 10, 0))
    stand = sla.standing(case, case.clocks.first_response, config, local(2026, 4, 23, 9, 0))
    assert (stand.used, stand.left) == (timedelta(hours=1), timedelta(hours=3))


# -- warnings, breaches, escalation ---------------------------------------------------------


def test_warning_falls_due_exactly_at_warn_at(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    warn_at = case.clocks.first_response.warn_at
    assert sla.next_due(case, config) == warn_at
    assert sla.due_actions(case, config, warn_at - timedelta(seconds=1)) == []
    actions = sla.due_actions(case, config, warn_at)
    assert kinds(actions) == [("warn", 0), ("escalate", 1)]
    assert actions[0].clocks == ("first_response",)
    assert actions[0].records == {"warn:first_response"}


def test_nothing_is_due_twice(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    warn_at = case.clocks.first_response.warn_at
    case = settle(case, config, warn_at)
    assert case.notices == {"warn:first_response", "escalate:1"}
    assert case.escalation_level == 1
    assert sla.due_actions(case, config, warn_at) == []
    assert sla.due_actions(case, config, warn_at + timedelta(minutes=30)) == []
    assert sla.next_due(case, config) == case.clocks.first_response.deadline


def test_breach_tells_the_team_and_raises_the_next_level(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    case = settle(case, config, case.clocks.first_response.warn_at)
    deadline = case.clocks.first_response.deadline
    actions = sla.due_actions(case, config, deadline)
    assert kinds(actions) == [("breach", 0), ("escalate", 2)]
    case = settle(case, config, deadline)
    assert case.escalation_level == 2
    # next: the resolution clock's warning, on Friday
    assert sla.next_due(case, config) == case.clocks.resolution.warn_at


def test_catching_up_sends_the_worst_of_each_kind_once(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    monday_noon = local(2026, 4, 20, 12, 0)  # warn_at and deadline both passed unseen
    actions = sla.due_actions(case, config, monday_noon)
    assert kinds(actions) == [("breach", 0), ("escalate", 2)]
    assert actions[0].records == {"warn:first_response", "breach:first_response"}
    assert actions[1].records == {"escalate:1", "escalate:2"}
    assert actions[0].due_at == case.clocks.first_response.deadline
    assert sla.due_actions(settle(case, config, monday_noon), config, monday_noon) == []


def test_warnings_of_two_clocks_go_in_one_action(config):
    case = new_case(config, local(2026, 4, 20, 9, 0))
    far = local(2026, 5, 1, 9, 0)  # both clocks breached
    actions = sla.due_actions(case, config, far)
    assert (actions[0].kind, actions[0].clocks) == ("breach", ("first_response", "resolution"))


def test_a_level_with_after_counts_working_time_past_its_event(config):
    levels = (
        *config.escalation,
        EscalationLevel(("cto@helpdesk.test",), "breach", Duration(4, "h")),
    )
    config = replace(config, escalation=levels)
    case = new_case(config, local(2026, 4, 20, 13, 0))  # first response due Monday 17:00
    case = settle(case, config, local(2026, 4, 20, 17, 0))
    assert case.escalation_level == 2
    # four working hours past Monday 17:00 is Tuesday 12:00, not Monday 21:00
    assert at_local(sla.next_due(case, config)) == local(2026, 4, 21, 12, 0)
    assert kinds(sla.due_actions(case, config, local(2026, 4, 21, 12, 0))) == [("escalate", 3)]


def test_a_level_reached_by_hand_is_not_sent_again(config):
    case = new_case(config, local(2026, 4, 17, 16, 30), escalation_level=1)
    assert kinds(sla.due_actions(case, config, case.clocks.first_response.warn_at)) == [("warn", 0)]


def test_met_clocks_owe_nothing(config):
    case = new_case(config, local(2026, 4, 17, 16, 30))
    case = sla.meet(case, "first_response", local(2026, 4, 20, 9, 0))
    assert sla.next_due(case, config) == case.clocks.resolution.warn_at
    resolved = sla.meet(replace(case, status="resolved"), "resolution", local(2026, 4, 20, 9))
    assert sla.next_due(resolved, config) is None
    assert sla.due_actions(resolved, config, local(2026, 6, 1, 9, 0)) == []


# -- the closing rule -----------------------------------------------------------------------


def waiting(config, since: datetime, priority: str = "P2") -> Case:
    case = sla.meet(
        new_case(config, local(2026, 4, 20, 9, 0), priority),
        "first_response",
        local(2026, 4, 20, 9, 30),
    )
    return sla.pause(replace(case, status="waiting"), since)


def test_a_waiting_case_owes_no_sla_notice(config):
    case = waiting(config, local(2026, 4, 20, 10, 0))
    assert [a.kind for a in sla.due_actions(case, config, local(2026, 4, 22, 10, 0))] == []


def test_closing_warning_after_three_working_days_of_waiting(config):
    case = waiting(config, local(2026, 4, 20, 10, 0))  # Monday
    assert at_local(sla.next_due(case, config)) == local(2026, 4, 23, 10, 0)
    assert sla.due_actions(case, config, local(2026, 4, 23, 9, 59)) == []
    (action,) = sla.due_actions(case, config, local(2026, 4, 23, 10, 0))
    assert action.kind == "closing_warning"
    assert action.records == {"closing_warning@2026-04-23T15:00:00+00:00"}


def test_closing_mail_waits_for_working_time(config):
    case = waiting(config, local(2026, 4, 20, 10, 0))
    night = local(2026, 4, 23, 20, 0)  # due at 10:00, the sweep did not run until the evening
    assert sla.due_actions(case, config, night) == []
    assert at_local(sla.next_due(case, config, night)) == local(2026, 4, 24, 8, 0)
    saturday = local(2026, 4, 25, 11, 0)
    assert at_local(sla.next_due(case, config, saturday)) == local(2026, 4, 27, 8, 0)


def test_a_24x7_case_is_warned_at_night(config):
    case = waiting(config, local(2026, 4, 20, 10, 0), "P1")
    due = sla.next_due(case, config)
    assert due == local(2026, 4, 23, 10, 0)
    assert [a.kind for a in sla.due_actions(case, config, local(2026, 4, 23, 23, 0))] == [
        "closing_warning"
    ]


def test_closed_two_working_days_after_the_warning_was_sent(config):
    case = waiting(config, local(2026, 4, 20, 10, 0))
    sent = local(2026, 4, 24, 8, 0)  # Friday morning, late after a night
    case = settle(case, config, sent)
    assert sla.warned_at(case) == sent
    # two working days from when the customer got it, not from when it was due
    assert at_local(sla.next_due(case, config)) == local(2026, 4, 28, 8, 0)
    assert sla.due_actions(case, config, local(2026, 4, 27, 16, 0)) == []
    closed = settle(case, config, local(2026, 4, 28, 8, 0))
    assert (closed.status, closed.closed_at) == ("closed", local(2026, 4, 28, 8, 0))
    # closed is settled: the time until a reopening counts as paused, from the close
    assert closed.waiting_since == local(2026, 4, 28, 8, 0)
    assert closed.clocks.resolution.met_at == local(2026, 4, 28, 8, 0)
    assert sla.next_due(closed, config) is None


def test_closing_time_judges_resolution_on_time_not_spent_waiting(config):
    case = settle(waiting(config, local(2026, 4, 20, 10, 0)), config, local(2026, 4, 24, 8, 0))
    closed = settle(case, config, local(2026, 4, 28, 8, 0))
    stand = sla.standing(closed, closed.clocks.resolution, config, local(2026, 5, 1, 8, 0))
    assert stand.used == timedelta(hours=1)
    assert not stand.late


def test_a_reply_cancels_the_closing(config):
    case = settle(waiting(config, local(2026, 4, 20, 10, 0)), config, local(2026, 4, 23, 10, 0))
    # what a customer reply does (core/outcome.py): resume, and forget the closing notices
    case = sla.resume(
        replace(
            case,
            status="open",
            notices=frozenset(n for n in case.notices if not n.startswith("closing")),
        ),
        config,
        local(2026, 4, 24, 9),
    )
    assert sla.warned_at(case) is None
    later = sla.due_actions(case, config, local(2026, 4, 28, 8, 0))
    assert not [a for a in later if a.kind in ("closing_warning", "close")]
    # waiting again starts the rule afresh
    again = sla.pause(replace(case, status="waiting"), local(2026, 4, 27, 9, 0))
    assert at_local(sla.next_due(again, config)) == local(2026, 4, 30, 9, 0)


def test_a_reopened_case_runs_its_resolution_clock_again(config):
    opened = datetime(2026, 4, 20, 9, 0, tzinfo=CHICAGO)  # Monday
    case = sla.meet(new_case(config, opened), "first_response", opened + timedelta(hours=1))
    resolved = sla.settle(replace(case, status="resolved"), opened + timedelta(hours=2))
    assert sla.running(resolved) == []
    again = sla.reopen(
        replace(resolved, status="open"), config, opened + timedelta(days=1, hours=2)
    )  # Tuesday 11:00, 9 working hours on
    assert [c.name for c in sla.running(again)] == ["resolution"]
    before = case.clocks.resolution.deadline
    assert again.clocks.resolution.deadline - before == timedelta(days=1)  # 9h = one 08-17 day
    assert again.clocks.first_response.met_at == opened + timedelta(hours=1)
