"""`#for` forwards read as the customer's own mail (core/behalf.py, pure)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from helpdeskd.core import behalf
from helpdeskd.core.parse import parse


def forward(body: str, subject: str = "Fwd: Printer") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@helpdesk.test>"
    msg["To"] = "support@helpdesk.test"
    msg["Subject"] = subject
    msg["Message-ID"] = "<fwd.1@helpdesk.test>"
    msg.set_content(body)
    return msg


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
        "-----Original Message-----",
        "-------- Original Message --------",
    ],
)
def test_every_common_forward_marker_is_read(marker: str):
    body = (
        f'#for\nUrgent for them.\n\n{marker}\nFrom: "Doe, Jane" <Jane@Acme.test>\n'
        "Sent: Thursday\nTo: alice@helpdesk.test\nCc: pete@acme.test\nSubject: Printer\n\n"
        "It jams.\n"
    )
    found = behalf.unwrap(parse(forward(body).as_bytes()))
    assert isinstance(found, behalf.OnBehalf)
    original = found.original
    assert (original.from_addr, original.from_name) == ("jane@acme.test", "Doe, Jane")
    assert (original.subject, original.text, original.cc) == (
        "Printer",
        "It jams.\n",
        ("pete@acme.test",),
    )
    assert (found.note, found.engineer) == ("Urgent for them.", "alice@helpdesk.test")
    assert original.headers == () and original.in_reply_to == ()


def test_for_asks_only_on_the_first_line():
    assert behalf.asks(parse(forward("\n#for jane@acme.test\n").as_bytes()))
    assert not behalf.asks(parse(forward("Hello\n#for\n").as_bytes()))
    assert not behalf.asks(parse(forward("#format\n").as_bytes()))


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("#for\nJane called.\n", "#for needs a forwarded message"),
        ("#for jane\n\n-----Original Message-----\n\nHi\n", "is not an email address"),
        ("#for\n\n-----Original Message-----\nFrom: Jane\n\nHi\n", "write #for ADDRESS"),
    ],
)
def test_a_forward_that_cannot_be_read_says_why(body: str, why: str):
    found = behalf.unwrap(parse(forward(body).as_bytes()))
    assert isinstance(found, str) and why in found
