"""The priority a new message's words give it: the policy's keywords fire as a person reads
them, not when negated close before them nor in the earlier mail a message quotes."""

from __future__ import annotations

import pytest

from helpdeskd.core.urgency import priority_of

KEYWORDS = {"P1": ("outage", "down", "not operational"), "P2": ("urgent", "slow")}

# (subject, body, priority)
TABLE = [
    ("Site down", "Nobody can log in.", "P1"),
    ("Question", "We are not down, just curious about exports.", "P3"),
    ("Question", "There is no outage, only a question.", "P3"),
    ("Question", "We aren't down at all.", "P3"),
    ("Question", "We weren't down last night, the report is wrong.", "P3"),
    ("Question", "The portal isn't really down, it only looks odd.", "P3"),
    ("Question", "It's never down, but the logo is blurry.", "P3"),
    ("Question", "Nothing is down; how do I add a user?", "P3"),
    ("Question", "We had no real outage yesterday.", "P3"),
    ("Outage", "Since 9:00 every page fails.", "P1"),
    ("Help", "Not sure why, but the site is down.", "P1"),
    ("Help", "It is not slow, it is down!", "P1"),
    ("Help", "The API is down and not responding.", "P1"),
    ("Help", "Production is down. Not a drill.", "P1"),
    ("Help", "We cannot work: the ERP is down.", "P1"),
    ("Help", "The line card is down again, no workaround.", "P1"),
    ("Help", "Our business is not operational since the upgrade.", "P1"),
    ("Help", "This is not urgent, whenever you can.", "P3"),
    ("Help", "No urgent matter, just a note.", "P3"),
    ("Help", "Urgent: invoices fail to print.", "P2"),
    ("Help", "The dashboard is slow since Monday.", "P2"),
    ("Help", "The dashboard is not slow any more.", "P3"),
    ("Help", "The dashboard was never slow before today, now it is slow.", "P2"),
    ("Help", "Without any outage, a user asks for a new report.", "P3"),
    ("Help", "We don't have an outage; the colours are wrong.", "P3"),
    ("Help", "It doesn't look down from here.", "P3"),
    ("Help", "Neither down nor slow, but a typo on the login page.", "P3"),
    ("Re: outage", "Thanks, it works again.", "P1"),  # the subject still says it
    (
        "Thanks",
        "All good now.\n\nOn Mon, Alice wrote:\n> Is the system down?\n",
        "P3",
    ),
    (
        "Thanks",
        "Works again.\n\n-----Original Message-----\nFrom: Alice\n\nWe have an outage.\n",
        "P3",
    ),
    ("Form", "A chart is off.\n\nPriority: P2", "P2"),
    ("Form", "Everything is down.\n\nPriority: P4", "P4"),
    ("Help", "The server went down at noon, the network did not.", "P1"),
    ("Help", "It hardly seems down, but users complain.", "P3"),
]


@pytest.mark.parametrize(("subject", "body", "expected"), TABLE)
def test_each_sentence_gets_its_priority(subject: str, body: str, expected: str):
    assert priority_of(subject, body, KEYWORDS, "P3")[0] == expected


def test_the_table_is_at_least_thirty_sentences():
    assert len(TABLE) >= 30


def test_the_reason_names_what_decided():
    assert priority_of("x", "It is down.", KEYWORDS, "P3") == ("P1", "keyword 'down'")
    assert priority_of("x", "Fine.\n\nPriority: P2", KEYWORDS, "P3") == (
        "P2",
        "chosen on the new-case form",
    )
    assert priority_of("x", "We are not down.", KEYWORDS, "P3") == ("P3", "default")
