"""The loop breaker's rule, pure: no database, a fixed `now`, what the store would know given."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from helpdeskd import config as configuration
from helpdeskd.core import loops
from helpdeskd.core.classify import classify
from helpdeskd.core.loops import PAUSED, TOLD, Traffic, guard, text_key
from helpdeskd.core.outcome import Context, outcome
from helpdeskd.core.parse import parse
from helpdeskd.core.route import Candidates, route
from helpdeskd.pipeline import own
from tests.support import mail, sample_case, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
CUSTOMER, ENGINEER = "jane@acme.test", "alice@helpdesk.test"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    loaded = configuration.load(write_config(tmp_path_factory.mktemp("loops")))
    return replace(loaded, policy=replace(loaded.policy, loop_messages=5, loop_repeats=3))


def guarded(config, sender: str, body: str, traffic: Traffic, case=None, subject="Re: Help"):
    case = case or sample_case(reference="HD-2026-00001", status="open")
    message = mail(sender, f"{subject} [HD-2026-00001]", body)
    inbound = parse(message.as_bytes())
    facts = classify(inbound, config, own(config), NOW.date())
    decision = route(inbound, facts, Candidates(case, None), config, NOW)
    ctx = Context(inbound, facts, decision, config, NOW)
    return guard(ctx, outcome(ctx), traffic)


def kinds(result) -> list[str]:
    return [m.kind for m in result.mails]


def test_the_same_text_however_written_is_the_same_key():
    assert text_key("Thank you for your mail!") == text_key("thank you\nfor your   mail")
    assert text_key("Thank you") != text_key("Thank you, it works now")
    assert text_key("  ...  ") == ""  # no words: never taken for a repeat


def test_a_customer_writing_within_the_bounds_is_forwarded(config):
    result = guarded(config, CUSTOMER, "One more detail", Traffic(earlier=("a", "b", "c")))
    assert kinds(result) == ["follow_up"]
    assert PAUSED not in result.case.notices


def test_more_mails_than_the_bound_pause_the_case_and_tell_the_team_once(config):
    earlier = tuple(f"message number {i}" for i in range(5))
    result = guarded(config, CUSTOMER, "and another", Traffic(earlier=earlier))
    assert kinds(result) == ["loop_notice"]
    assert result.mails[0].to == (ENGINEER,)
    assert {PAUSED, TOLD} <= result.case.notices
    [detail] = [d for k, d in result.events if k == loops.PAUSED_EVENT]
    assert detail.startswith(f"6 mails from {CUSTOMER} on this case within 1h")
    again = guarded(config, CUSTOMER, "and more", Traffic(earlier=earlier), case=result.case)
    assert kinds(again) == []  # paused: nothing crosses, and the team is not told twice
    assert "not passed on" in again.record.route_reason


def test_the_same_text_repeated_pauses_the_case_before_the_count_does(config):
    result = guarded(config, CUSTOMER, "Thanks, noted!", Traffic(earlier=("thanks noted",) * 2))
    assert kinds(result) == ["loop_notice"]
    assert "the same text from jane@acme.test 3 times" in result.events[-1][1]


def test_an_engineers_robot_repeating_itself_is_not_relayed_and_meets_no_clock(config):
    case = sample_case(reference="HD-2026-00001", status="new")
    text = "I am out of the office until Monday."
    result = guarded(config, ENGINEER, text, Traffic(earlier=(text, text)), case=case)
    assert kinds(result) == ["loop_notice"]
    assert result.case.first_response_at is None and result.case.status == "new"


def test_an_engineer_writing_a_lot_is_never_paused_by_the_count(config):
    earlier = tuple(f"answer number {i}" for i in range(20))
    result = guarded(config, ENGINEER, "and one more answer", Traffic(earlier=earlier))
    assert kinds(result) == ["relay"]


def paused_case():
    return sample_case(reference="HD-2026-00001", notices=frozenset({PAUSED, TOLD}))


def test_a_paused_case_holds_the_customers_and_the_engineers_mail(config):
    assert kinds(guarded(config, CUSTOMER, "hello?", Traffic(()), case=paused_case())) == []
    held = guarded(config, ENGINEER, "Robot text", Traffic(()), case=paused_case())
    assert kinds(held) == [] and PAUSED in held.case.notices


def test_an_engineers_answer_to_the_notice_resumes_the_case(config):
    result = guarded(
        config, ENGINEER, "Sorry, here is the fix.", Traffic((), answers_pause=True), paused_case()
    )
    assert kinds(result) == ["relay"]
    assert PAUSED not in result.case.notices and TOLD in result.case.notices
    assert result.events[-1][0] == loops.RESUMED_EVENT


def test_a_robot_answering_the_notice_with_its_usual_text_resumes_nothing(config):
    text = "I am out of the office until Monday."
    traffic = Traffic(earlier=(text, text), answers_pause=True)
    result = guarded(config, ENGINEER, text, traffic, case=paused_case())
    assert kinds(result) == [] and PAUSED in result.case.notices


def test_reopen_resumes_the_case_and_a_later_loop_is_told_again(config):
    result = guarded(config, ENGINEER, "#reopen\n", Traffic(()), case=paused_case())
    assert not {PAUSED, TOLD} & result.case.notices
    assert "wrote #reopen" in result.events[-1][1]


def test_an_engineers_out_of_office_known_by_its_subject_is_a_note(config):
    for subject in ("Automatic reply:", "Automatyczna odpowiedź:", "Abwesenheitsnotiz:"):
        result = guarded(config, ENGINEER, "Away.", Traffic(()), subject=subject)
        assert result.record.kind == "note" and kinds(result) == []
        assert result.case.first_response_at is None
