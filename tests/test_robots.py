"""Two robots talk through the running daemon: a customer's mailbox and an engineer's, each
answering every mail with "Re:" and a quote and no loop header. The loop breaker ends it."""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import queue
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support import Daemon, Sink, cli, free_port, mail, run_in_process, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CUSTOMER_ROBOT, ENGINEER_ROBOT = "robot@acme.test", "alice@helpdesk.test"
CUSTOMER_TEXT = "Thank you for your message. We have received it and will get back to you."
ENGINEER_TEXT = "I am out of the office until Monday with no access to my mail."
QUIET = 6  # seconds without any new mail: the exchange has stopped
LONGEST = 120  # seconds: far beyond where it must have stopped


class Robots:
    """The daemon's outgoing relay: mail to a robot is answered, everything else is kept."""

    def __init__(self, listener_port: int):
        self.listener_port = listener_port
        self.received: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.answers: queue.Queue[EmailMessage | None] = queue.Queue()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.sender = threading.Thread(target=self.send_answers, daemon=True)

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(msg)
        for recipient in envelope.rcpt_tos:
            text = {CUSTOMER_ROBOT: CUSTOMER_TEXT, ENGINEER_ROBOT: ENGINEER_TEXT}.get(recipient)
            if text:
                self.answers.put(answer(msg, recipient, text))
        return "250 OK"

    def send_answers(self) -> None:
        """Apart from the relay's event loop, as a robot's own mail server would."""
        while (msg := self.answers.get()) is not None:
            send(self.listener_port, msg)

    def count(self, predicate=lambda m: True) -> int:
        with self.lock:
            return sum(1 for m in self.received if predicate(m))

    def __enter__(self) -> Robots:
        self.controller.start()
        self.sender.start()
        return self

    def __exit__(self, *exc) -> None:
        self.answers.put(None)
        self.sender.join(10)
        self.controller.stop()


def answer(msg: EmailMessage, robot: str, text: str) -> EmailMessage:
    """A plain reply with the whole mail quoted, as many out-of-office robots write it."""
    subject = str(msg["Subject"])
    quoted = "\n".join(f"> {line}" for line in msg.get_body(("plain",)).get_content().splitlines())
    wrote = f"On {msg['Date']}, {msg['From']} wrote:"
    reply = mail(
        robot,
        subject if subject.lower().startswith("re:") else f"Re: {subject}",
        f"{text}\n\n{wrote}\n{quoted}\n",
        in_reply_to=msg["Message-ID"],
    )
    return reply


def wait_until_quiet(robots: Robots) -> float:
    """Seconds until no mail has reached the relay for QUIET seconds (bounded by LONGEST)."""
    started = time.monotonic()
    last, last_change = -1, started
    while time.monotonic() - started < LONGEST:
        now, count = time.monotonic(), robots.count()
        if count != last:
            last, last_change = count, now
        elif now - last_change >= QUIET:
            return last_change - started
        time.sleep(0.2)
    pytest.fail(f"still talking after {LONGEST} s: {robots.count()} mails")


def show(config: Path, reference: str) -> dict:
    result = cli(config, "show", reference, "--json")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def only_case(config: Path) -> str:
    [case] = json.loads(run_in_process(config, "cases", "--json"))
    return case["reference"]


@pytest.fixture
def talking(tmp_path: Path):
    port = free_port()
    with Robots(port) as robots:
        config = write_config(tmp_path, smtp_port=port, relay_port=robots.controller.port)
        with Daemon(config, port) as daemon:
            yield daemon, robots


def test_two_robots_stop_talking_through_the_helpdesk_by_themselves(talking):
    daemon, robots = talking
    send(daemon.port, mail(CUSTOMER_ROBOT, "Invoice portal is slow", "Since this morning."))
    took = wait_until_quiet(robots)
    to_customer = robots.count(lambda m: CUSTOMER_ROBOT in str(m["To"]))
    to_engineer = robots.count(lambda m: ENGINEER_ROBOT in str(m["To"]))
    relayed = robots.count(
        lambda m: CUSTOMER_ROBOT in str(m["To"]) and "out of the office" in m.get_content()
    )
    print(f"robots exchanged {robots.count()} mails in {took:.1f} s; {relayed} relayed")
    reference = only_case(daemon.config)
    detail = show(daemon.config, reference)
    inbound = [m["from"] for m in detail["messages"] if m["direction"] == "in"]
    # below the configured bound (loop_messages, 10 by default) on each side
    assert inbound.count(CUSTOMER_ROBOT) <= 10 and inbound.count(ENGINEER_ROBOT) <= 10
    assert to_customer + to_engineer <= 20
    assert relayed <= 2  # at most the first one or two of the out-of-office texts
    [paused] = [e for e in detail["events"] if e["kind"] == "loop"]
    assert "paused until an engineer acts" in paused["detail"]
    assert "loop" in run_in_process(daemon.config, "show", reference)
    notices = robots.count(lambda m: "Loop suspected" in str(m["Subject"]))
    assert notices == 1


def test_an_engineers_out_of_office_known_by_its_subject_never_reaches_the_customer(
    tmp_path: Path,
):
    with Sink() as sink:
        port = free_port()
        config = write_config(tmp_path, smtp_port=port, relay_port=sink.port)
        with Daemon(config, port) as daemon:
            send(daemon.port, mail("jane@acme.test", "Printer jam", "Tray 2 is stuck."))
            assert sink.wait_for(lambda m: "jane@acme.test" in str(m["To"]))
            reference = only_case(config)
            away = mail(
                ENGINEER_ROBOT,
                f"Automatic reply: [{reference}] Printer jam",
                "I am away until Monday.",
            )
            send(daemon.port, away)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                detail = show(config, reference)
                if len(detail["messages"]) >= 4:  # in, acknowledgement, notification, away
                    break
                time.sleep(0.2)
            [kept] = [m for m in detail["messages"] if m["from"] == ENGINEER_ROBOT]
            assert kept["kind"] == "note"
            [first_response] = [c for c in detail["clocks"] if c["name"] == "first_response"]
            assert first_response["met"] is None and detail["status"] == "new"
            assert [str(m["Subject"]) for m in sink.to("jane@acme.test")] == [
                f"[{reference}] Printer jam"
            ]  # the acknowledgement only
