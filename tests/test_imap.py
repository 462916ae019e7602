"""The IMAP poller against a real Dovecot on 127.0.0.1 (see tests/dovecot.py)."""

from __future__ import annotations

import ssl
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpdeskd.adapters import imap
from helpdeskd.adapters.imap import Backoff, Incident, MailboxPoller, SecretUnavailable
from helpdeskd.adapters.store import MailboxState, Store
from helpdeskd.config import Mailbox
from tests.dovecot import dovecot  # noqa: F401 - the fixture

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WAIT = 20.0  # seconds any one wait for a real server event may take


def message(n: int, *, size: int = 0, headers: str = "") -> bytes:
    filler = "".join(f"line {i} of message {n}, padding the body\r\n" for i in range(size // 40))
    return (
        f"From: customer{n}@example.com\r\nTo: support@example.com\r\n{headers}"
        f"Subject: request {n}\r\nMessage-ID: <request-{n}@example.com>\r\n"
        f"Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n\r\nPlease help with {n}.\r\n{filler}"
    ).encode()


class RecordingAlerts:
    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def trouble(self, key, summary, detail, now):
        self.calls.append(("trouble", key))

    def recovered(self, key, summary, now):
        self.calls.append(("recovered", key))


class Harness:
    """A database, a password file and pollers for the mailboxes of one Dovecot."""

    def __init__(self, server, tmp_path: Path):
        self.server, self.tmp = server, tmp_path
        self.db = tmp_path / "helpdesk.db"
        self.store = Store.open(self.db)
        self.alerts = RecordingAlerts()
        self.wakes = 0

    def mailbox(self, user: str = "alice", **changes) -> Mailbox:
        secret = self.tmp / f"{user}.password"
        secret.write_text(self.server.users[user] + "\n")
        fields = dict(
            name=user,
            host="127.0.0.1",
            port=self.server.port,
            tls="none",
            username=user,
            password_file=secret,
            password_command=None,
            oauth2_token_command=None,
            processed_folder="Processed",
            poll_interval=3600,
            alert_after=0,
            batch_size=10,
        )
        return Mailbox(**{**fields, **changes})

    def poller(self, box: Mailbox, cls=MailboxPoller, **kwargs) -> MailboxPoller:
        kwargs.setdefault("backoff", Backoff(first=0.05, cap=0.2))
        return cls(box, lambda: Store.open(self.db), self.wake, self.alerts, **kwargs)

    def wake(self) -> None:
        self.wakes += 1

    def spooled(self) -> list[dict]:
        return self.store.rows("SELECT id, message_id, source FROM spool ORDER BY id")


@pytest.fixture
def harness(dovecot, tmp_path):  # noqa: F811 - the fixture imported above
    h = Harness(dovecot, tmp_path)
    yield h
    h.store.close()


def wait_until(predicate, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Running:
    """A poller's `run` in a thread, stopped (and checked to stop promptly) at the end."""

    def __init__(self, poller: MailboxPoller):
        self.stop = threading.Event()
        self.thread = poller.start(self.stop)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the poller did not stop"


# -- against Dovecot ----------------------------------------------------------------------------


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_message_appended_before_start_is_spooled_then_moved(harness, dovecot):  # noqa: F811
    dovecot.append("alice", message(1))
    poller = harness.poller(harness.mailbox())

    assert poller.poll_once() == 1
    assert poller.poll_once() == 0
    poller.close()

    assert [r["message_id"] for r in harness.spooled()] == ["request-1@example.com"]
    assert harness.spooled()[0]["source"] == "imap:alice"
    assert dovecot.messages("alice") == []
    assert dovecot.messages("alice", "Processed") == [message(1)]
    assert harness.wakes == 1
    assert MailboxState(harness.store).get("alice")[1] == 1


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_without_processed_folder_the_message_is_flagged_seen_once(harness, dovecot):  # noqa: F811
    dovecot.append("alice", message(1))
    poller = harness.poller(harness.mailbox(processed_folder=None))

    assert poller.poll_once() == 1
    dovecot.append("alice", message(2))
    assert poller.poll_once() == 1
    assert poller.poll_once() == 0
    poller.close()

    assert len(harness.spooled()) == 2
    assert [b"\\Seen" in f for f in dovecot.flags("alice")] == [True, True]


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_message_appended_while_idling_is_spooled_within_seconds(harness, dovecot):  # noqa: F811
    dovecot.append("alice", message(1))
    # an hour between polls: only IDLE can bring the second message in time
    poller = harness.poller(harness.mailbox(poll_interval=3600))
    with Running(poller):
        assert wait_until(lambda: len(harness.spooled()) == 1)
        assert wait_until(lambda: poller.idling)
        appended = time.monotonic()
        dovecot.append("alice", message(2))
        assert wait_until(lambda: len(harness.spooled()) == 2, timeout=5)
        assert time.monotonic() - appended < 5
        assert wait_until(lambda: dovecot.messages("alice") == [])


@pytest.mark.dovecot
@pytest.mark.timeout(90)
def test_dovecot_restart_mid_run_loses_and_doubles_nothing(harness, dovecot):  # noqa: F811
    with Running(harness.poller(harness.mailbox())):
        for n in range(3):
            dovecot.append("alice", message(n))
        assert wait_until(lambda: len(harness.spooled()) == 3)
        dovecot.restart()
        for n in range(3, 6):
            dovecot.append("alice", message(n))
        assert wait_until(lambda: len(dovecot.messages("alice", "Processed")) == 6)

    assert sorted(r["message_id"] for r in harness.spooled()) == [
        f"request-{n}@example.com" for n in range(6)
    ]
    assert dovecot.messages("alice") == []


class CrashBeforeMove(MailboxPoller):
    def _acknowledge(self, client, uids):
        raise RuntimeError("killed between the spool commit and the move")


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_crash_between_commit_and_move_makes_one_case(harness, dovecot):  # noqa: F811
    for n in range(3):
        dovecot.append("alice", message(n))
    box = harness.mailbox(batch_size=2)
    crashing = harness.poller(box, cls=CrashBeforeMove)
    with pytest.raises(RuntimeError):
        crashing.poll_once()
    crashing.close()
    assert len(harness.spooled()) == 2  # the first batch was committed, nothing moved
    assert len(dovecot.messages("alice")) == 3

    restarted = harness.poller(box)
    assert restarted.poll_once() == 1  # only message 2 is new; 0 and 1 are spool duplicates
    restarted.close()

    assert len(harness.spooled()) == 3
    assert dovecot.messages("alice") == []
    assert len(dovecot.messages("alice", "Processed")) == 3


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_bad_password_alerts_admins_once_then_recovery_once(harness, dovecot):  # noqa: F811
    box = harness.mailbox()
    box.password_file.write_text("wrong\n")
    poller = harness.poller(box)
    with Running(poller):
        assert wait_until(lambda: poller.incident.failures >= 4)
        assert harness.alerts.calls == [("trouble", "imap:alice")]
        box.password_file.write_text(dovecot.users["alice"])  # the admin fixes it
        dovecot.append("alice", message(1))
        assert wait_until(lambda: len(harness.spooled()) == 1)
    assert harness.alerts.calls == [("trouble", "imap:alice"), ("recovered", "imap:alice")]


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_failures_shorter_than_alert_after_are_not_reported(harness, dovecot):  # noqa: F811
    box = harness.mailbox(alert_after=3600)
    box.password_file.write_text("wrong\n")
    poller = harness.poller(box)
    for _ in range(3):
        with pytest.raises(imap.LoginError):
            poller.poll_once()
    box.password_file.write_text(dovecot.users["alice"])
    assert poller.poll_once() == 0
    poller.close()
    assert harness.alerts.calls == []


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_same_message_in_two_mailboxes_is_one_case(harness, dovecot):  # noqa: F811
    # Cc'd to both: each copy has its own delivery headers, the same Message-ID and body
    dovecot.append("alice", b"Delivered-To: alice@example.com\r\n" + message(7))
    dovecot.append("bob", b"Delivered-To: bob@example.com\r\n" + message(7))
    alice, bob = harness.poller(harness.mailbox("alice")), harness.poller(harness.mailbox("bob"))

    assert alice.poll_once() + bob.poll_once() == 1
    alice.close()
    bob.close()

    assert len(harness.spooled()) == 1
    assert dovecot.messages("alice") == dovecot.messages("bob") == []


@pytest.mark.dovecot
@pytest.mark.timeout(120)
def test_500_messages_at_start_all_spooled_with_bounded_memory(harness, dovecot):  # noqa: F811
    with dovecot.client("alice") as client:
        for n in range(500):
            client.append("INBOX", message(n, size=30_000))
    total = 500 * len(message(0, size=30_000))
    poller = harness.poller(harness.mailbox(batch_size=20))

    tracemalloc.start()
    try:
        assert poller.poll_once() == 500
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    poller.close()

    # a whole-mailbox fetch would peak above `total`; batches of 20 stay near 20 bodies
    assert peak < total / 4, f"peak {peak} bytes for {total} bytes of mail"
    assert harness.store.row("SELECT count(*) AS n FROM spool")["n"] == 500
    with dovecot.client("alice") as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
        assert client.select_folder("Processed")[b"EXISTS"] == 500


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_uidvalidity_change_does_not_reimport_processed_mail(harness, dovecot):  # noqa: F811
    for n in range(3):
        dovecot.append("alice", message(n))
    box = harness.mailbox(processed_folder=None)
    poller = harness.poller(box)
    assert poller.poll_once() == 3
    poller.close()

    dovecot.reset_uidvalidity("alice")
    dovecot.append("alice", message(3))
    attempts = []
    poller = harness.poller(box)
    spool = poller.store.spool
    poller.store.spool = lambda raw, **kw: attempts.append(raw) or spool(raw, **kw)
    assert poller.poll_once() == 1
    poller.close()

    assert attempts == [message(3)]  # the three \Seen ones were not even fetched again
    assert len(harness.spooled()) == 4


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_imaps_with_a_trusted_self_signed_certificate(harness, dovecot):  # noqa: F811
    if dovecot.cafile is None:
        pytest.skip("openssl is not installed to make a certificate")
    dovecot.append("alice", message(1))
    box = harness.mailbox(tls="ssl", port=dovecot.ssl_port)

    untrusted = harness.poller(box)
    with pytest.raises(ssl.SSLError):
        untrusted.poll_once()
    untrusted.close()

    trusted = harness.poller(box, ssl_context=imap.tls_context(dovecot.cafile))
    assert trusted.poll_once() == 1
    trusted.close()


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_starttls(harness, dovecot):  # noqa: F811
    if dovecot.cafile is None:
        pytest.skip("openssl is not installed to make a certificate")
    dovecot.append("alice", message(1))
    poller = harness.poller(harness.mailbox(tls="starttls"), ssl_context=dovecot.ssl_context())
    assert poller.poll_once() == 1
    poller.close()


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_xoauth2_token_is_fetched_again_when_refused(harness, dovecot, tmp_path):  # noqa: F811
    token, runs = tmp_path / "token", tmp_path / "runs"
    token.write_text("token-one\n")
    dovecot.tokens["token-one"] = "alice"
    command = f"echo run >> {runs}; cat {token}"
    box = harness.mailbox(password_file=None, oauth2_token_command=command, alert_after=3600)
    poller = harness.poller(box)
    dovecot.append("alice", message(1))

    assert poller.poll_once() == 1
    dovecot.restart()  # the connection is lost; the kept token still works
    with pytest.raises(imap.MAILBOX_FAILURES):
        poller.poll_once()
    assert poller.poll_once() == 0
    assert runs.read_text().count("run") == 1

    del dovecot.tokens["token-one"]  # it expired
    dovecot.tokens["token-two"] = "alice"
    token.write_text("token-two\n")
    dovecot.restart()
    with pytest.raises(imap.MAILBOX_FAILURES):
        poller.poll_once()
    dovecot.append("alice", message(2))
    assert poller.poll_once() == 1
    assert runs.read_text().count("run") == 2
    poller.close()
    assert harness.alerts.calls == []


@pytest.mark.dovecot
@pytest.mark.timeout(60)
def test_a_failing_password_command_is_a_login_failure(harness, dovecot):  # noqa: F811
    box = harness.mailbox(password_file=None, password_command="echo vault sealed >&2; exit 3")
    poller = harness.poller(box)
    with pytest.raises(SecretUnavailable, match="exited 3: vault sealed"):
        poller.poll_once()
    assert harness.alerts.calls == [("trouble", "imap:alice")]
    poller.close()


# -- without a server ---------------------------------------------------------------------------


def test_secret_command_output_is_stripped():
    assert imap.run_secret_command("printf ' s3cret \\n'") == "s3cret"


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("exit 1", "exited 1"),
        ("true", "printed nothing"),
        ("sleep 5", "did not finish"),
        ("sleep 5 & wait", "did not finish"),  # a child holding stdout open dies too
    ],
)
def test_secret_command_failures_are_explained(command, why):
    started = time.monotonic()
    with pytest.raises(SecretUnavailable, match=why):
        imap.run_secret_command(command, timeout=0.2)
    assert time.monotonic() - started < 2


def test_backoff_doubles_up_to_its_cap_with_jitter():
    low, high = Backoff(first=1, cap=8, rng=lambda: 0.0), Backoff(first=1, cap=8, rng=lambda: 1.0)
    assert [low.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert [high.next() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    high.reset()
    assert high.next() == 1


def test_incident_is_reported_once_after_alert_after_and_recovery_once():
    alerts = RecordingAlerts()
    incident = Incident("imap:support", 600, alerts)
    for minutes in (0, 5, 9):
        incident.failed("LoginError: refused", NOW + timedelta(minutes=minutes))
    assert alerts.calls == []
    for minutes in (10, 11, 30):
        incident.failed("LoginError: refused", NOW + timedelta(minutes=minutes))
    assert alerts.calls == [("trouble", "imap:support")]
    incident.succeeded(NOW + timedelta(minutes=31))
    incident.succeeded(NOW + timedelta(minutes=32))
    assert alerts.calls == [("trouble", "imap:support"), ("recovered", "imap:support")]


def test_a_short_outage_is_neither_reported_nor_recovered():
    alerts = RecordingAlerts()
    incident = Incident("imap:support", 600, alerts)
    incident.failed("OSError: connection refused", NOW)
    incident.succeeded(NOW + timedelta(minutes=2))
    incident.failed("OSError: connection refused", NOW + timedelta(minutes=20))
    assert alerts.calls == []


def test_idle_ends_on_new_mail_or_a_closed_connection_only():
    assert imap.idle_ends([(3, b"EXISTS")], elapsed=0.01)
    assert imap.idle_ends([(b"BYE", b"Server shutting down.")], elapsed=0.01)
    assert not imap.idle_ends([(b"OK", b"Still here")], elapsed=0.01)
    assert not imap.idle_ends([], elapsed=imap.IDLE_SLICE)
    assert imap.idle_ends([], elapsed=0.0)
