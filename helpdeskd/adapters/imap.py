"""IMAP intake: one poller per `[[imap]]` mailbox, each with its own client in its own thread.

Exactly once, in this order for every message: fetch by UID with BODY.PEEK[] (so the fetch
itself sets no \\Seen), commit the bytes to the spool, and only then move the message to
`processed_folder` (or flag it \\Seen when no folder is set), and only after that advance the
mailbox's last UID in the store. A crash anywhere before the move leaves the message where it
was; the next poll fetches it again and the spool's dedup (Message-ID + body hash) turns the
second commit into a no-op, so it is moved without becoming a second case.

Size: a message over `[smtp] max_message_size` (one limit for every entrance) is never fetched:
its RFC822.SIZE is read first, and it is left where it is, flagged \\Flagged and $TooLarge so a
person can deal with it and no later pass (a rescan included) takes it again; the admins are
told once, with its sender and subject.

Resilience: any failure drops the connection and retries after a bounded exponential backoff
with jitter; the thread never dies. A mailbox failing for longer than `alert_after` is reported
to the admins once per incident, and once more when it recovers.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import os
import random
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from helpdeskd.adapters.store import Heartbeats, MailboxState, Store
from helpdeskd.config import Mailbox, Smtp

IDLE_RENEW = 25 * 60  # seconds; RFC 2177 servers may drop an IDLE after 29 minutes
IDLE_SLICE = 1.0  # seconds between checks of the stop event while idling
SECRET_TIMEOUT = 30  # seconds a password or token command may take
SOCKET_TIMEOUT = 120  # seconds for any one IMAP command (a large FETCH included)
SEEN = b"\\Seen"
BODY = b"BODY[]"
SIZE = b"RFC822.SIZE"
TOO_LARGE = b"$TooLarge"  # a keyword: set aside for a person, never fetched again
SET_ASIDE = [b"\\Flagged", TOO_LARGE]
SUMMARY_FIELDS = b"BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)]"

# What a mailbox that is down, unreachable or refusing us raises; anything else is a bug or a
# store problem, retried all the same but not reported as the mailbox's fault.
MAILBOX_FAILURES = (imaplib.IMAP4.error, OSError)


class SecretUnavailable(Exception):
    """The password or token could not be read; a login failure, never a crash."""


class Alerts(Protocol):
    """Mails `[helpdesk] admins`; implemented where the outbox lives."""

    def trouble(self, key: str, summary: str, detail: str, now: datetime) -> None: ...

    def recovered(self, key: str, summary: str, now: datetime) -> None: ...

    def notice(self, key: str, summary: str, detail: str, now: datetime) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def tls_context(ca_file: Path | str | None) -> ssl.SSLContext | None:
    """A verifying context that also trusts `ca_file` (a private CA or a self-signed server)."""
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file else None


def run_secret_command(command: str, timeout: float = SECRET_TIMEOUT) -> str:
    """stdout of `command`, stripped; SecretUnavailable when it fails, hangs or prints nothing."""
    try:
        returncode, out, err = _run_bounded(command, timeout)
    except OSError as exc:
        raise SecretUnavailable(f"command could not start: {exc}") from exc
    if returncode != 0:
        raise SecretUnavailable(f"command exited {returncode}: {err.strip()[-200:]}")
    if not out.strip():
        raise SecretUnavailable("command printed nothing")
    return out.strip()


def _run_bounded(command: str, timeout: float) -> tuple[int, str, str]:
    """Its own process group, so that a hung command's children die with it too (they would
    otherwise hold the pipes open and the wait would never end)."""
    with subprocess.Popen(
        command,
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise SecretUnavailable(f"command did not finish within {timeout:g}s") from exc
        return process.returncode, out, err


def read_secret_file(path: Path) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretUnavailable(f"cannot read password file {path}: {exc}") from exc
    if not secret:
        raise SecretUnavailable(f"password file {path} is empty")
    return secret


class Backoff:
    """Exponential delays, capped, with jitter so that mailboxes on one server don't retry in
    step: each delay is drawn between half and all of first * 2**attempt."""

    def __init__(
        self, first: float = 1.0, cap: float = 300.0, rng: Callable[[], float] = random.random
    ):
        self.first, self.cap, self.rng = first, cap, rng
        self.attempts = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return delay / 2 + self.rng() * delay / 2

    def reset(self) -> None:
        self.attempts = 0


class Incident:
    """When a mailbox started failing; admins hear of it once past `alert_after`, and once
    more when it recovers, never once per retry."""

    def __init__(self, key: str, alert_after: float, alerts: Alerts):
        self.key, self.alert_after, self.alerts = key, alert_after, alerts
        self.since: datetime | None = None
        self.reported = False
        self.failures = 0

    def failed(self, detail: str, now: datetime) -> None:
        self.failures += 1
        self.since = self.since or now
        if not self.reported and (now - self.since).total_seconds() >= self.alert_after:
            summary = f"IMAP mailbox {self.key.removeprefix('imap:')} is unreachable"
            text = f"Failing since {self.since.isoformat(timespec='seconds')}: {detail}"
            self.alerts.trouble(self.key, summary, text, now)
            self.reported = True

    def succeeded(self, now: datetime) -> None:
        if self.reported:
            name = self.key.removeprefix("imap:")
            self.alerts.recovered(self.key, f"IMAP mailbox {name} works again", now)
        self.since, self.reported, self.failures = None, False, 0


def batches(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MailboxPoller:
    """Reads one mailbox into the spool. `poll_once` for one pass, `run` for a daemon thread."""

    def __init__(
        self,
        mailbox: Mailbox,
        open_store: Callable[[], Store],
        wake: Callable[[], None],
        alerts: Alerts,
        *,
        clock: Callable[[], datetime] = utc_now,
        log=None,
        ssl_context: ssl.SSLContext | None = None,
        backoff: Backoff | None = None,
        max_message_size: int = Smtp.max_message_size,
    ):
        self.mailbox = mailbox
        self.alerts, self.max_message_size = alerts, max_message_size
        self.open_store, self.wake, self.clock = open_store, wake, clock
        self.ssl_context = ssl_context
        self.backoff = backoff or Backoff()
        self.incident = Incident(f"imap:{mailbox.name}", mailbox.alert_after, alerts)
        self.log = (log or structlog.get_logger()).bind(mailbox=mailbox.name)
        self.source = f"imap:{mailbox.name}"
        self._client: IMAPClient | None = None
        self._store: Store | None = None
        self._token: str | None = None
        self.idling = False  # in IDLE right now: for status displays and tests

    # -- the thread ----------------------------------------------------------------------------

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(stop,), daemon=True, name=f"imap-{self.mailbox.name}"
        )
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        """Poll, wait for mail, repeat, until `stop` is set; never raises."""
        self.log.info("imap.started", host=self.mailbox.host, folder=self.mailbox.folder)
        try:
            while not stop.is_set():
                self._cycle(stop)
        finally:
            self.close()
            self.log.info("imap.stopped")

    def _cycle(self, stop: threading.Event) -> None:
        try:
            self.poll_once()
            self.backoff.reset()
            self._wait_for_mail(stop)
        except Exception as exc:  # a poller must outlive any one failure
            delay = self.backoff.next()
            self.log.warning(
                "imap.retry",
                error=describe(exc),
                retry_in=round(delay, 2),
                exc_info=not isinstance(exc, MAILBOX_FAILURES),
            )
            self._disconnect()
            stop.wait(delay)

    def close(self) -> None:
        self._disconnect()
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- one pass ------------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Connect if needed and spool every new message; returns how many were new."""
        try:
            client = self._connected()
            uidvalidity, uidnext = self._select(client)
        except (*MAILBOX_FAILURES, SecretUnavailable) as exc:
            self._disconnect()
            self.incident.failed(describe(exc), self.clock())
            raise
        self.incident.succeeded(self.clock())
        found = self._ingest(client, uidvalidity, uidnext)
        Heartbeats(self.store).stamp(f"imap:{self.mailbox.name}", self.clock())  # for `status`
        return found

    def _select(self, client: IMAPClient) -> tuple[int, int | None]:
        info = client.select_folder(self.mailbox.folder)
        untagged(client).pop("EXISTS", None)  # SELECT's own count; later ones mean new mail
        return int(info[b"UIDVALIDITY"]), info.get(b"UIDNEXT")

    def _ingest(self, client: IMAPClient, uidvalidity: int, uidnext: int | None) -> int:
        state = MailboxState(self.store)
        known = state.get(self.mailbox.name)
        if known is None or known[0] != uidvalidity:
            return self._rescan(client, uidvalidity, uidnext)
        uids = [u for u in client.search(["UID", f"{known[1] + 1}:*"]) if u > known[1]]
        total = 0
        for batch in batches(sorted(uids), self.mailbox.batch_size):
            total += self._spool_batch(client, batch)
            state.set(self.mailbox.name, uidvalidity, max(batch))
        return total

    def _rescan(self, client: IMAPClient, uidvalidity: int, uidnext: int | None) -> int:
        """First start, or the server renumbered the folder (UIDVALIDITY changed), so stored
        UIDs mean nothing. What has not been processed is exactly what is still in the folder
        (when processed mail is moved) or still unseen (when it is flagged): only that is
        imported, and the spool's dedup absorbs any of it that was committed but not yet moved.
        The new position is stored only once the whole scan is done; a scan cut short is simply
        run again, which is safe because it asks for "not yet processed", not for UIDs."""
        unprocessed = ["UNSEEN"] if not self.mailbox.processed_folder else ["ALL"]
        uids = sorted(client.search([*unprocessed, "NOT", "KEYWORD", TOO_LARGE.decode()]))
        self.log.info("imap.rescan", uidvalidity=uidvalidity, candidates=len(uids))
        total = sum(self._spool_batch(client, b) for b in batches(uids, self.mailbox.batch_size))
        last = max([uidnext - 1 if uidnext else 0, *uids])
        MailboxState(self.store).set(self.mailbox.name, uidvalidity, last)
        return total

    def _spool_batch(self, client: IMAPClient, batch: Sequence[int]) -> int:
        """Spool one batch, then acknowledge what was committed, even if a later one failed."""
        batch = self._within_size(client, batch)
        if not batch:
            return 0
        fetched = client.fetch(batch, [b"BODY.PEEK[]"])
        committed, new = [], 0
        try:
            for uid in batch:
                data = fetched.pop(uid, None)  # popped so each body is freed once spooled
                if data is None:
                    continue  # expunged by someone else meanwhile
                new += self._spool(uid, data[BODY])
                committed.append(uid)
        finally:
            if committed:
                self._acknowledge(client, committed)
            if new:
                self.wake()
        return new

    def _within_size(self, client: IMAPClient, batch: Sequence[int]) -> list[int]:
        """The UIDs of the batch small enough to fetch; the others are set aside."""
        sizes = {uid: data.get(SIZE, 0) for uid, data in client.fetch(batch, [SIZE]).items()}
        too_large = [uid for uid in batch if sizes.get(uid, 0) > self.max_message_size]
        if too_large:
            self._set_aside(client, too_large, sizes)
        return [uid for uid in batch if uid not in too_large]

    def _set_aside(self, client: IMAPClient, uids: list[int], sizes: dict[int, int]) -> None:
        """Admins first, then the flag: a crash in between tells them twice, never not at all."""
        heads = client.fetch(uids, [SUMMARY_FIELDS])
        lines = [
            f"UID {uid}, {sizes[uid]:,} bytes: {summary_of(heads.get(uid, {}))}" for uid in uids
        ]
        for line in lines:
            self.log.warning("imap.too_large", message=line, limit=self.max_message_size)
        name = self.mailbox.name
        self.alerts.notice(
            f"imap:{name}:too-large",
            f"{len(uids)} message(s) in IMAP mailbox {name} over the size limit",
            f"Over max_message_size ({self.max_message_size:,} bytes), so not fetched:\n"
            + "\n".join(lines)
            + f"\n\nThey stay in {self.mailbox.folder}, flagged and marked "
            f"{TOO_LARGE.decode()}; helpdeskd will not take them again.",
            self.clock(),
        )
        client.add_flags(uids, SET_ASIDE)

    def _spool(self, uid: int, raw: bytes) -> bool:
        spool_id, is_new = self.store.spool(raw, source=self.source, now=self.clock())
        self.log.info("imap.spooled", uid=uid, spool_id=spool_id, duplicate=not is_new)
        return is_new

    def _acknowledge(self, client: IMAPClient, uids: list[int]) -> None:
        """Called only after the spool commit: the server may now forget these messages."""
        folder = self.mailbox.processed_folder
        if not folder:
            client.add_flags(uids, [SEEN])
        elif client.has_capability("MOVE"):
            client.move(uids, folder)
        else:
            client.copy(uids, folder)
            client.delete_messages(uids)
            client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()

    # -- waiting -------------------------------------------------------------------------------

    def _wait_for_mail(self, stop: threading.Event) -> None:
        client = self._client
        if client is not None and untagged(client).pop("EXISTS", None):
            return  # mail came while we searched or moved: IDLE would not announce it again
        if client is not None and self.mailbox.idle and client.has_capability("IDLE"):
            self._idle(client, stop)
        else:
            stop.wait(self.mailbox.poll_interval)

    def _idle(self, client: IMAPClient, stop: threading.Event) -> None:
        """Wait in IDLE until new mail, `stop`, or the time to renew the IDLE. It is renewed
        at least every `poll_interval` too: a server does not announce mail that arrived while
        we were moving the last batch, and that mail must not wait for the next one."""
        client.idle()
        self.idling = True
        try:
            renew_at = time.monotonic() + min(IDLE_RENEW, self.mailbox.poll_interval)
            while not stop.is_set() and time.monotonic() < renew_at:
                started = time.monotonic()
                responses = client.idle_check(timeout=IDLE_SLICE)
                if idle_ends(responses, time.monotonic() - started):
                    break
        finally:
            self.idling = False
            client.idle_done()  # raises on a dead connection, which sends us to reconnect

    # -- connection ----------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = self.open_store()  # opened in the thread that uses it
        return self._store

    def _connected(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> IMAPClient:
        box = self.mailbox
        client = IMAPClient(
            box.host,
            box.port,
            ssl=box.tls == "ssl",
            ssl_context=self.ssl_context,
            timeout=SOCKET_TIMEOUT,
        )
        try:
            if box.tls == "starttls":
                client.starttls(self.ssl_context)
            self._login(client)
            self._ensure_processed_folder(client)
        except BaseException:
            hang_up(client)
            raise
        self.log.info("imap.connected", tls=box.tls)
        return client

    def _login(self, client: IMAPClient) -> None:
        box = self.mailbox
        if box.oauth2_token_command:
            self._login_oauth2(client)
        elif box.password_file:
            client.login(box.username, read_secret_file(box.password_file))
        elif box.password_command:
            client.login(box.username, run_secret_command(box.password_command))
        else:
            raise SecretUnavailable("no password_file, password_command or oauth2_token_command")

    def _login_oauth2(self, client: IMAPClient) -> None:
        """Tokens are kept between logins; a refused one is thrown away so that the command
        runs again. A kept token that is refused most likely just expired: one immediate try
        with a fresh token, rather than a backoff and perhaps an alert."""
        fresh = self._token is None
        if fresh:
            self._token = run_secret_command(self.mailbox.oauth2_token_command)
        try:
            client.oauth2_login(self.mailbox.username, self._token)
        except LoginError:
            self._token = None
            if fresh:
                raise
            self.log.info("imap.token_refused", action="fetching a fresh token")
            self._login_oauth2(client)

    def _ensure_processed_folder(self, client: IMAPClient) -> None:
        folder = self.mailbox.processed_folder
        if folder and not client.folder_exists(folder):
            client.create_folder(folder)
            self.log.info("imap.folder_created", folder=folder)

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the connection is being dropped because it may be broken
            hang_up(client)


def untagged(client: IMAPClient) -> dict:
    """What the server said in passing during earlier commands, which imaplib keeps aside
    until a new SELECT. imapclient has no public accessor for it."""
    return client._imap.untagged_responses


def idle_ends(responses: list, elapsed: float) -> bool:
    """New mail or the server leaving ends an IDLE. An empty answer well before the timeout
    means the socket was readable but held no line: the server closed the connection."""
    if not responses:
        return elapsed < IDLE_SLICE / 2
    return any(b"EXISTS" in r or b"BYE" in r for r in responses if isinstance(r, tuple))


def hang_up(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # closing a socket that is already gone is no news
        client.shutdown()


def summary_of(fetched: dict) -> str:
    """From, Subject, Date and Message-ID of a message, from its header fields alone."""
    head = next((v for k, v in fetched.items() if k.startswith(b"BODY[HEADER")), b"")
    fields = email.message_from_bytes(head or b"", policy=email.policy.default)
    return "; ".join(
        f"{k}: {fields[k]}" for k in ("From", "Subject", "Date", "Message-ID") if fields[k]
    )


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
