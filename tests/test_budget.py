"""The per-message budget: small mail is parsed inline, large mail in a limited child process,
and whatever comes back is cut to the sizes the pipeline is built for."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from helpdeskd import budget
from helpdeskd import config as configuration
from helpdeskd.budget import HEADER_KEPT, INLINE_BYTES, TEXT_KEPT, OverBudget, parse_within
from helpdeskd.core.parse import ParseError
from helpdeskd.service import BATCH, GROUP_COMMIT, Service, group_end
from tests.support import mail, write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

HEAD = b"From: Jane <jane@acme.test>\r\nTo: support@helpdesk.test\r\nSubject: Help\r\n"


def large_text(size: int) -> bytes:
    return HEAD + b"\r\n" + b"A line of an ordinary but very long report.\r\n" * (size // 46)


def test_small_mail_is_parsed_inline_and_kept_whole():
    inbound = parse_within(HEAD + b"\r\nHello\r\n", "jane@acme.test", 5.0)
    assert inbound.text.strip() == "Hello"
    assert inbound.from_addr == "jane@acme.test"
    assert inbound.defects == ()


def test_large_mail_is_parsed_in_a_child_and_its_text_cut_with_a_note():
    raw = large_text(2 * INLINE_BYTES + TEXT_KEPT)
    inbound = parse_within(raw, None, 30.0)
    assert inbound.from_addr == "jane@acme.test"
    assert len(inbound.text) < TEXT_KEPT + 200
    assert inbound.text.endswith("the whole message is kept as it came]")
    assert any("cut to" in d for d in inbound.defects)


def test_long_header_values_are_cut():
    raw = HEAD.replace(b"Subject: Help", b"Subject: " + b"x" * (3 * HEADER_KEPT)) + b"\r\nHi\r\n"
    inbound = parse_within(raw, None, 5.0)
    assert len(inbound.subject) == HEADER_KEPT
    assert all(len(value) <= HEADER_KEPT for _, value in inbound.headers)


def test_unparseable_large_mail_is_a_parse_error_from_the_child():
    raw = b"\r\n" + b"no header fields here\r\n" * (INLINE_BYTES // 10)
    with pytest.raises(ParseError, match="no header fields"):
        parse_within(raw, None, 30.0)


def test_a_parse_past_the_budget_is_over_budget():
    with pytest.raises(OverBudget, match=r"budget of 0\.01 s"):
        parse_within(large_text(4 * INLINE_BYTES), None, 0.01)


def test_a_parse_past_its_memory_is_over_budget():
    raw = large_text(8 * 1024 * 1024)
    with pytest.raises(OverBudget, match=r"MiB|died"):
        budget._parse_in_child(raw, None, 30.0, memory=48 * budget.MiB)


def test_the_worker_quarantines_mail_over_budget_tells_the_admins_and_goes_on(tmp_path):
    config = configuration.load(write_config(tmp_path))
    tight = replace(config, policy=replace(config.policy, processing_budget=0.001))
    service = Service(tight, clock=lambda: NOW)  # below the "1s" the configuration allows
    hostile, _ = service.store.spool(large_text(2 * INLINE_BYTES), source="smtp", now=NOW)
    service.work()
    service.config = config
    ordinary, _ = service.store.spool(
        mail("joe@acme.test", "After it", "hello").as_bytes(), source="smtp", now=NOW
    )
    service.work()
    states = service.store.rows("SELECT id, state, reason FROM spool ORDER BY id")
    assert [(r["id"], r["state"]) for r in states] == [
        (hostile, "quarantined"),
        (ordinary, "done"),
    ]
    assert states[0]["reason"].startswith("over the processing budget: still parsing")
    alerts = service.store.rows("SELECT recipients FROM outbox WHERE kind = 'admin_alert'")
    assert alerts == [{"recipients": '["ops@helpdesk.test"]'}]


def test_the_worker_parses_ahead_in_a_child_and_applies_in_order(tmp_path):
    service = Service(configuration.load(write_config(tmp_path)), clock=lambda: NOW)
    for n in range(12):
        service.store.spool(
            mail("joe@acme.test", f"Question {n}", "hello").as_bytes(), source="smtp", now=NOW
        )
    service.work()
    subjects = [r["subject"] for r in service.store.rows("SELECT subject FROM cases ORDER BY id")]
    assert subjects == [f"Question {n}" for n in range(12)]
    assert budget._CHILDREN.idle and budget._CHILDREN.idle[-1].alive()


def test_one_child_serves_message_after_message():
    first = parse_within(large_text(2 * INLINE_BYTES), None, 30.0)
    child = budget._CHILDREN.idle[-1].proc.pid
    raw = large_text(3 * INLINE_BYTES).replace(b"Subject: Help", b"Subject: Again")
    second = parse_within(raw, "joe@acme.test", 30.0)
    assert budget._CHILDREN.idle[-1].proc.pid == child
    assert (first.subject, second.subject) == ("Help", "Again")
    assert second.envelope_from == "joe@acme.test"


def test_a_child_past_its_budget_is_ended_and_the_next_message_gets_a_new_one():
    with pytest.raises(OverBudget):
        parse_within(large_text(4 * INLINE_BYTES), None, 0.01)
    inbound = parse_within(large_text(2 * INLINE_BYTES), None, 30.0)
    assert inbound.from_addr == "jane@acme.test"


def test_a_child_out_of_memory_still_parses_the_next_message_within_its_own_limit():
    with pytest.raises(OverBudget, match=r"MiB|died"):
        budget._parse_in_child(large_text(8 * 1024 * 1024), None, 30.0, memory=48 * budget.MiB)
    assert parse_within(large_text(2 * INLINE_BYTES), None, 30.0).from_addr == "jane@acme.test"


def started_children(monkeypatch) -> list[budget._Child]:
    """The parse children started from now on, as they start."""
    started, start = [], budget._Child.__init__

    def recorded(child):
        start(child)
        started.append(child)

    monkeypatch.setattr(budget._Child, "__init__", recorded)
    return started


def test_a_child_left_grown_by_a_large_message_retires_and_another_takes_its_place(monkeypatch):
    monkeypatch.setattr(budget, "RETIRE_AT", 0)  # every child has grown past nothing
    started = started_children(monkeypatch)
    raws = [large_text(2 * INLINE_BYTES).replace(b"Help", f"Help {n}".encode()) for n in range(3)]
    subjects = [parse_within(raw, None, 30.0).subject for raw in raws]
    assert subjects == ["Help 0", "Help 1", "Help 2"]
    assert len(started) >= 2  # each retired after its answer; a successor started at once
    assert [c.proc.wait(timeout=10) for c in started[:-1]] == [0] * (len(started) - 1)


def test_a_child_retires_after_its_messages_and_no_message_is_lost_to_it(monkeypatch):
    monkeypatch.setattr(budget, "RETIRE_AFTER", 2)
    started = started_children(monkeypatch)
    raws = [large_text(2 * INLINE_BYTES).replace(b"Help", f"Help {n}".encode()) for n in range(7)]
    assert [parse_within(raw, None, 30.0).subject for raw in raws] == [
        f"Help {n}" for n in range(7)
    ]
    assert len(started) >= 3


def test_a_child_found_gone_is_replaced_without_blaming_the_message():
    gone = budget._Child()
    head = {"cpu": 5, "memory": budget.memory_limit(100), "envelope_from": None}
    _, _, last = gone.ask({**head, "retire_at": 1 << 40, "retire_after": 1}, HEAD, 30.0)
    assert last and gone.proc.wait(timeout=10) == 0  # it ended itself after its answer
    gone.proc.poll = lambda: None  # taken as alive all the same: the race itself
    budget._CHILDREN.idle.append(gone)
    assert parse_within(large_text(2 * INLINE_BYTES), None, 30.0).subject == "Help"


def test_taking_the_last_idle_child_starts_its_spare(monkeypatch):
    """Two large messages close together: the second finds a child started, not a cold one."""
    monkeypatch.setattr(budget, "_CHILDREN", budget._Children())
    budget.warm_up()
    started = started_children(monkeypatch)
    try:
        first = budget._CHILDREN.take()
        assert started and budget._CHILDREN.idle == started  # the spare, starting already
        second = parse_within(large_text(2 * INLINE_BYTES), None, 30.0)
        assert second.subject == "Help"
        assert budget._CHILDREN.idle[-1] is started[0]  # the spare served it, and came back
        assert len(started) == 2  # and its own spare started when it was taken
        budget._CHILDREN.give_back(first)
    finally:
        for child in budget._CHILDREN.idle:
            child.end()


def test_a_backlog_is_parsed_ahead_batch_after_batch(tmp_path):
    """The next batch's first group is parsed in the child behind the batch in hand, so the
    worker's interpreter parses none of a backlog."""
    service = Service(configuration.load(write_config(tmp_path)), clock=lambda: NOW)
    ids = [
        service.store.spool(
            mail(f"joe{n}@acme.test", f"Question {n}", "hello").as_bytes(), source="smtp", now=NOW
        )[0]
        for n in range(BATCH + 12)
    ]
    assert service.work()  # more to come
    assert sorted(service.parsing) == ids[BATCH : BATCH + GROUP_COMMIT]
    while service.work():
        pass
    subjects = [r["subject"] for r in service.store.rows("SELECT subject FROM cases ORDER BY id")]
    assert subjects == [f"Question {n}" for n in range(BATCH + 12)]
    assert service.parsing == {}


class Item:
    def __init__(self, size: int):
        self.raw = b"x" * size


def parsed(done: bool) -> Future:
    future = Future()
    if done:
        future.set_result(None)
    return future


def test_a_group_ends_before_a_large_message_still_being_parsed():
    small, large = Item(1000), Item(INLINE_BYTES + 1)
    items = [small, small, large, small]
    assert group_end(items, [None, None, parsed(False), None], 0, 8) == 2
    assert group_end(items, [None, None, None, None], 0, 8) == 2  # parsed inline: it waits too
    assert group_end(items, [None, None, parsed(True), None], 0, 8) == 4  # parsed already
    assert group_end(items, [None, None, parsed(False), None], 2, 8) == 4  # it leads its group
    assert group_end(items, [None] * 4, 0, 1) == 1
