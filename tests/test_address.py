"""Address fields as mail clients read them, the sender fallback, and the outbox's last guard."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import Cases, Store
from helpdeskd.core.address import Mailbox, mailboxes, usable
from helpdeskd.core.parse import parse
from helpdeskd.model import Mail
from helpdeskd.pipeline import process, queue_mail
from tests.support import write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def message(*headers: str, body: str = "Hello.") -> bytes:
    return "\r\n".join([*headers, "", body]).encode("utf-8")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        # a comma only once decoded: one mailbox, decoded after the split
        (
            "=?iso-8859-1?q?B=FCrling,_Hans?= <hans@example.com>",
            [("=?iso-8859-1?q?B=FCrling,_Hans?=", "hans@example.com")],
        ),
        (
            "Doe, John <john@example.com>, b@example.org",
            [("Doe, John", "john@example.com"), ("", "b@example.org")],
        ),
        ('"Doe, John" <John@Example.com>', [("Doe, John", "john@example.com")]),
        ("John Q. Public <jqp@example.com>", [("John Q. Public", "jqp@example.com")]),
        ('"John  Doe" (the boss) <j@example.com>', [("John  Doe", "j@example.com")]),
        ("John (Johnny)\r\n Doe <j@example.com>", [("John Doe", "j@example.com")]),
        ("john@example.com (John Doe)", [("John Doe", "john@example.com")]),
        ("John Doe john@example.com", [("John Doe", "john@example.com")]),
        ("john . doe @ example . com", [("", "john.doe@example.com")]),
        ("<@relay.example:jdoe@example.com>", [("", "jdoe@example.com")]),
        ("Pete(his \\) nice) <pete(account)@silly.test(host)>", [("Pete", "pete@silly.test")]),
        ("undisclosed-recipients:;", []),
        ("unlisted-recipients:; (no To-header on input)", []),
        (
            "A Group:Ed <c@a.test>,joe@where.test;, x@y.test",
            [("Ed", "c@a.test"), ("", "joe@where.test"), ("", "x@y.test")],
        ),
        ("<John Doe>", [("John Doe", "")]),
        ("John Doe", [("John Doe", "")]),
        ("John <john@example.com", [("John", "john@example.com")]),
        ("tim@example.com ann@example.com", [("", "tim@example.com"), ("", "ann@example.com")]),
    ],
)
def test_mailboxes(field: str, expected: list[tuple[str, str]]) -> None:
    assert mailboxes(field) == [Mailbox(p, a) for p, a in expected]


def test_a_huge_field_is_read_in_linear_time() -> None:
    field = ", ".join(f"=?utf-8?q?N=C3=A4me_{i}?= <n{i}@example.com>" for i in range(3000))
    assert len(mailboxes(field)) == 3000
    hostile = "x " * 50_000 + "<a@example.com>" + " :" * 50_000 + " (" * 50_000
    started = time.monotonic()
    assert mailboxes(hostile)[0].address == "a@example.com"
    assert time.monotonic() - started < 5  # generous: well under a second


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("john@example.com", True),
        ("claudia.shu@yahoo.com.", True),
        ("x@[192.0.2.1]", True),
        ("john", False),
        ("john doe", False),
        ("john@localhost", True),
        ("john@", False),
        ("@example.com", False),
        ("=?utf-8?q?john?=", False),
        ("", False),
    ],
)
def test_usable(address: str, ok: bool) -> None:
    assert usable(address) is ok


def test_a_comma_inside_an_encoded_display_name() -> None:
    inbound = parse(
        message(
            "From: =?iso-8859-1?q?B=FCrling,_Hans?= <hans@example.com>",
            "To: support@helpdesk.test",
            "Subject: Hi",
        )
    )
    assert (inbound.from_name, inbound.from_addr) == ("Bürling, Hans", "hans@example.com")


@pytest.mark.parametrize(
    ("headers", "envelope", "address"),
    [
        (["From: <John Doe>", "Reply-To: John <john@example.com>"], None, "john@example.com"),
        (["From: John Doe", "Sender: john@example.com"], None, "john@example.com"),
        (["From: John Doe <john>"], "john@example.com", "john@example.com"),
        (["Reply-To: john@example.com"], None, "john@example.com"),
        (["From: <John Doe>"], None, ""),
        (["From: <John Doe>", "Reply-To: undisclosed-recipients:;"], "", ""),
    ],
)
def test_a_from_without_an_address_falls_back(headers, envelope, address) -> None:
    inbound = parse(message(*headers, "Subject: Hi"), envelope_from=envelope)
    assert inbound.from_addr == address
    assert inbound.from_name in ("John Doe", "")
    assert any("usable" in d for d in inbound.defects)


@pytest.fixture
def config(tmp_path):
    return configuration.load(write_config(tmp_path))


def test_a_mail_with_no_usable_sender_is_unrouted_and_answered_with_nothing(config, tmp_path):
    store = Store.open(tmp_path / "unrouted.db")
    raw = message(
        "From: <John Doe>", "To: support@helpdesk.test", "Subject: Help", "Message-ID: <u1@x.test>"
    )
    spool_id, _ = store.spool(raw, source="ingest", now=NOW)
    result = process(store, config, store.spool_item(spool_id), NOW)
    assert result.reference is None and result.queued == ()
    assert store.rows("SELECT * FROM outbox") == []
    [row] = Cases(store).unrouted()
    assert row["route_reason"].startswith("kept: no usable sender address")


def test_the_outbox_refuses_what_is_not_an_address(config, tmp_path):
    store = Store.open(tmp_path / "guard.db")
    context = {"summary": "s", "detail": "d", "since": NOW}
    to = ("Bürling", "=?x?q?y?=", "ops@example.com")
    mail = Mail("admin_alert", "admin_alert", to, context, "auto-generated", threaded=False)
    queued = queue_mail(store, config, mail, None, [], None, NOW)
    assert queued is not None and queued["to"] == ["ops@example.com"]
    mail = Mail("admin_alert", "admin_alert", ("Bürling",), context, "auto-generated")
    nothing = queue_mail(store, config, mail, None, [], None, NOW)
    assert nothing is None
    assert len(store.rows("SELECT * FROM outbox")) == 1
