"""Webhooks: which events a change raises, and their delivery to a real HTTP receiver on
127.0.0.1, through the daemon and through the delivery loop with a fixed clock, on SQLite and
on PostgreSQL."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters import webhooks
from helpdeskd.adapters.store import Deliveries
from helpdeskd.core.webhooks import happened, one_line, signature
from tests.receiver import Receiver, signed
from tests.support import (
    Daemon,
    Sink,
    call_in_process,
    cli,
    free_port,
    mail,
    run_in_process,
    sample_case,
    send,
    write_config,
)

SECRET = b"s3cret-shared-with-the-receiver"
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def hook_config(folder: Path, url: str, smtp_port: int = 0, relay_port=None, **more) -> Path:
    (folder / "hook.secret").write_bytes(SECRET + b"\n")
    lines = [f'url = "{url}"', 'secret_file = "hook.secret"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in more.items()]
    extra = "\n[[webhooks]]\n" + "\n".join(lines) + "\n"
    return write_config(folder, smtp_port=smtp_port, relay_port=relay_port, extra=extra)


# -- which events a change raises ------------------------------------------------------------


def test_a_change_raises_its_events_in_the_order_they_happened():
    case = sample_case()
    assert happened(None, case, ["opened"]) == ["case.opened"]
    resolved = replace(case, status="resolved")
    assert happened(case, resolved, ["status"], replied=True) == ["case.replied", "case.resolved"]
    assert happened(resolved, case, ["status"]) == ["case.reopened"]
    assert happened(resolved, replace(case, status="closed"), ["status"]) == ["case.closed"]
    higher = replace(case, escalation_level=1)
    assert happened(case, higher, ["sla_breach", "escalate"]) == [
        "case.escalated",
        "case.breached",
    ]
    assert happened(case, case, ["rating"]) == ["rating.received"]
    assert happened(case, case, ["assign"]) == []


def test_the_signature_is_the_bodys_hmac_and_a_chat_line_reads_at_once():
    # RFC 4231's style of known answer, the widely published one for this phrase
    fox = b"The quick brown fox jumps over the lazy dog"
    assert signature(b"key", fox) == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    document = {
        "event": "case.opened",
        "reference": "HD-2026-00042",
        "subject": "Help",
        "priority": "P1",
        "customer": "Acme",
        "status": "new",
        "link": "https://help.example/cases/HD-2026-00042",
    }
    assert one_line(document) == (
        "HD-2026-00042 opened: Help (P1, Acme, new) https://help.example/cases/HD-2026-00042"
    )


def test_a_webhook_with_unknown_names_is_refused_with_every_problem(tmp_path):
    path = hook_config(
        tmp_path, "ftp://nowhere", events=["case.openned"], priorities=["P9"], format="teams"
    )
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(path)
    keys = {key for key, _ in refused.value.problems}
    assert keys == {
        "webhooks[0].url",
        "webhooks[0].events",
        "webhooks[0].priorities",
        "webhooks[0].format",
    }


# -- delivery through the daemon ---------------------------------------------------------------


def wait_for_case(config: Path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = json.loads(call_in_process(config, "cases", "--json")[1] or "[]")
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} cases after {timeout}s")


@pytest.mark.timeout(120)
def test_each_event_is_delivered_once_with_a_valid_signature(tmp_path, database, sink: Sink):
    port = free_port()
    with Receiver() as receiver:
        config = hook_config(tmp_path, receiver.url, smtp_port=port, relay_port=sink.port)
        with Daemon(config, port) as daemon:
            send(daemon.port, mail("jane@acme.test", "Portal down", "since 9:00"))
            [case] = wait_for_case(config, 1)
            ref = case["reference"]
            receiver.wait_for(1)
            reply = f"Re: [{ref}] Portal down"
            send(daemon.port, mail("alice@helpdesk.test", reply, "#resolve\nFixed it."))
            receiver.wait_for(3)
            time.sleep(1)  # nothing more comes: each event once
    assert [e["event"] for e in receiver.events()] == [
        "case.opened",
        "case.replied",
        "case.resolved",
    ]
    assert all(signed(SECRET, r) for r in receiver.requests)
    ids = [r["headers"]["X-Helpdeskd-Delivery"] for r in receiver.requests]
    assert len(set(ids)) == 3
    opened = receiver.events()[0]
    assert opened["schema"] == 1 and opened["reference"] == ref
    assert (opened["customer"], opened["plan"], opened["priority"]) == ("Acme", "gold", "P1")
    assert [c["name"] for c in opened["clocks"]] == ["first_response", "resolution"]
    listed = json.loads(run_in_process(config, "webhooks", "--json"))
    assert [d["state"] for d in listed] == ["delivered"] * 3
    assert all(len(d["last_error"]) < 300 for d in listed)  # an excerpt of the 5 kB answer


@pytest.mark.timeout(120)
def test_a_hanging_receiver_does_not_slow_mail_intake(tmp_path, sink: Sink):
    port = free_port()
    with Receiver() as receiver:
        receiver.hang.set()
        config = hook_config(
            tmp_path, receiver.url, smtp_port=port, relay_port=sink.port, timeout=30
        )
        with Daemon(config, port) as daemon:
            send(daemon.port, mail("jane@acme.test", "First", "the hook hangs on this one"))
            wait_for_case(config, 1)
            time.sleep(0.5)  # the delivery is in the receiver's hands, hanging
            start = time.monotonic()
            send(daemon.port, mail("joe@acme.test", "Second", "while it hangs"))
            # the acknowledgement goes out once the mail is a case
            assert sink.wait_for(lambda m: "joe@acme.test" in str(m["To"]))
            took = time.monotonic() - start
            receiver.hang.clear()
            print(f"a mail became a case in {took:.2f}s while the receiver hung")
    assert took < 2, f"{took:.1f}s while a 30s webhook hung"  # about 0.1s, as without a hook


# -- the delivery loop, with a fixed clock ----------------------------------------------------


def queue(store, url: str, reference: str, events: list[str]) -> list[int]:
    deliveries = Deliveries(store)
    return [
        deliveries.enqueue(url, e, reference, json.dumps({"event": e}).encode(), NOW)
        for e in events
    ]


def test_a_receiver_down_then_up_gets_each_event_once_in_order_per_case(tmp_path, store):
    port = free_port()  # nothing listens there yet
    config = configuration.load(hook_config(tmp_path, f"http://127.0.0.1:{port}/hook"))
    url = config.webhooks[0].url
    queue(store, url, "HD-2026-00001", ["case.opened", "case.replied", "case.resolved"])
    queue(store, url, "HD-2026-00002", ["case.opened"])
    assert webhooks.flush(store, config, NOW) == 0
    waiting = {d["id"]: (d["state"], d["attempts"]) for d in Deliveries(store).listed()}
    # each case's first event was tried and waits out its back-off; the others were not tried
    assert waiting == {1: ("queued", 1), 2: ("queued", 0), 3: ("queued", 0), 4: ("queued", 1)}
    assert webhooks.flush(store, config, NOW) == 0  # within the back-off: nothing is tried
    with Receiver(port) as receiver:
        assert webhooks.flush(store, config, NOW + timedelta(minutes=5)) == 4
        assert webhooks.flush(store, config, NOW + timedelta(minutes=10)) == 0
    got = [
        (r["headers"]["X-Helpdeskd-Delivery"], json.loads(r["body"])["event"])
        for r in receiver.requests
    ]
    assert [g for g in got if g[0] != "4"] == [
        ("1", "case.opened"),
        ("2", "case.replied"),
        ("3", "case.resolved"),
    ]
    assert len(got) == 4
    assert all(signed(SECRET, r) for r in receiver.requests)
    assert webhooks.flush(store, config, NOW + timedelta(days=8)) == 0
    assert Deliveries(store).listed() == []  # delivered a week ago: forgotten


def test_a_redirect_to_another_host_is_not_followed(tmp_path, store):
    with Receiver() as elsewhere, Receiver() as hook:
        hook.redirect = f"http://localhost:{elsewhere.port}/hook"  # another host name
        config = configuration.load(hook_config(tmp_path, hook.url))
        queue(store, hook.url, "HD-2026-00001", ["case.opened"])
        assert webhooks.flush(store, config, NOW) == 0
    assert elsewhere.requests == []
    [refused] = Deliveries(store).listed()
    assert refused["state"] == "failed"
    assert f"302 redirect to {hook.redirect} not followed" in refused["last_error"]


def test_a_url_no_longer_configured_is_never_called(tmp_path, store):
    with Receiver() as old:
        config = configuration.load(hook_config(tmp_path, "http://127.0.0.1:9/hook"))
        queue(store, old.url, "HD-2026-00001", ["case.opened"])
        assert webhooks.flush(store, config, NOW) == 0
    assert old.requests == []
    [given_up] = Deliveries(store).listed()
    assert given_up["state"] == "failed" and "no longer configured" in given_up["last_error"]


def test_the_command_lists_retries_and_drops_deliveries(tmp_path, database):
    port = free_port()
    config = hook_config(tmp_path, f"http://127.0.0.1:{port}/hook")
    from helpdeskd.adapters.store import open_store

    store = open_store(database)
    loaded = configuration.load(config)
    queue(store, loaded.webhooks[0].url, "HD-2026-00001", ["case.opened", "case.closed"])
    Deliveries(store).give_up(1, "500 receiver broken")
    store.close()
    listed = run_in_process(config, "webhooks")
    assert "case.opened" in listed and "500 receiver broken" in listed and "failed" in listed
    with Receiver(port) as receiver:
        done = cli(config, "webhooks", "--retry", "1")
        assert done.returncode == 0, done.stderr.decode()
    assert [json.loads(r["body"])["event"] for r in receiver.requests] == [
        "case.opened",
        "case.closed",
    ]
    queue_again = open_store(database)
    queue(queue_again, loaded.webhooks[0].url, "HD-2026-00003", ["case.opened"])
    queue_again.close()
    assert run_in_process(config, "webhooks", "--drop", "3").startswith("dropped 1")
    states = [d["state"] for d in json.loads(run_in_process(config, "webhooks", "--json"))]
    assert states == ["delivered", "delivered"]


# -- the sweep's events, queued with its changes -------------------------------------------------


def test_the_sweeps_escalations_and_breaches_are_queued_with_them(tmp_path, database):
    config = hook_config(
        tmp_path,
        "http://127.0.0.1:9/hook",
        events=["case.escalated", "case.breached", "case.closed", "case.opened"],
        plans=["standard"],
    )

    def run(*args: str, stdin: bytes | None = None) -> None:
        run_in_process(config, *args, stdin=stdin)

    urgent = mail("boss@globex.test", "urgent: the printer is on fire", "Smoke everywhere.")
    run("ingest", "--now", "2026-04-17T16:30:00-05:00", stdin=bytes(urgent))
    gold = mail("jane@acme.test", "urgent: not on the standard plan", "no events for us")
    run("ingest", "--now", "2026-04-17T16:31:00-05:00", stdin=bytes(gold))
    dry = mail("joe@globex.test", "urgent: a dry run", "writes nothing")
    run("ingest", "--dry-run", "--now", "2026-04-17T16:32:00-05:00", stdin=bytes(dry))
    run("sweep", "--now", "2026-04-20T10:42:00-05:00", "--dry-run")
    run("sweep", "--now", "2026-04-20T10:42:00-05:00")
    run("sweep", "--now", "2026-04-20T11:30:00-05:00")
    queued = json.loads(run_in_process(config, "webhooks", "--json"))
    assert [d["event"] for d in queued] == [
        "case.opened",
        "case.escalated",  # level 1 at warn_at (the warning itself is no event)
        "case.escalated",  # level 2 at the deadline
        "case.breached",
    ]
    assert {d["reference"] for d in queued} == {"HD-2026-00001"}


def test_slack_and_matrix_hooks_get_one_readable_line(tmp_path):
    for form in ("slack", "matrix"):
        config = configuration.load(hook_config(tmp_path, "https://chat.example/h", format=form))
        case = sample_case(priority="P1", subject="Portal down")
        document = webhooks.event_document("case.opened", case, config, NOW)
        assert json.loads(webhooks.body(config.webhooks[0], document)) == {
            "text": "HD-2026-00042 opened: Portal down (P1, Acme, open)"
        }
