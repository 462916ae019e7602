"""Reply trimming: the new text of a reply, measured on real replies and on small cases."""

from __future__ import annotations

import time
from pathlib import Path

from helpdeskd.core.quotes import Reply, split_reply

# The share of corpus replies trimmed exactly as expected; raise it when the trimming improves.
EXPECTED_SHARE = 1.00


def normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def test_corpus_replies_are_trimmed_to_their_new_text(corpus: Path) -> None:
    folder = corpus / "email_reply_trimmer"
    emails = sorted((folder / "emails").glob("*.txt"))
    misses = [
        email.stem
        for email in emails
        if normalise(split_reply(email.read_text(encoding="utf-8")).new)
        != normalise((folder / "trimmed" / email.name).read_text(encoding="utf-8"))
    ]
    share = (len(emails) - len(misses)) / len(emails)
    summary = f"{len(emails) - len(misses)}/{len(emails)} = {share:.1%} matched; misses: {misses}"
    print(summary)
    assert len(emails) >= 60
    assert share >= max(EXPECTED_SHARE, 0.90), summary


def test_outlook_original_message_block_is_cut() -> None:
    text = (
        "Yes, please go ahead.\r\n"
        "\r\n"
        "-----Original Message-----\r\n"
        "From: Support <support@example.com>\r\n"
        "Sent: Monday, March 4, 2024 10:12 AM\r\n"
        "To: Alice <alice@example.org>\r\n"
        "Subject: [#1042] Printer offline\r\n"
        "\r\n"
        "Shall we replace the toner?\r\n"
    )
    reply = split_reply(text)
    assert reply.new == "Yes, please go ahead."
    assert reply.elided.startswith("-----Original Message-----")
    assert "Shall we replace the toner?" in reply.elided


def test_outlook_header_block_without_marker_is_cut() -> None:
    text = (
        "Thanks, that fixed it.\n\n"
        "From: Support <support@example.com>\n"
        "Sent: Monday, March 4, 2024 10:12 AM\n"
        "To: Alice <alice@example.org>\n"
        "Subject: Printer offline\n\n"
        "Please restart the printer.\n"
    )
    assert split_reply(text).new == "Thanks, that fixed it."


def test_german_quote_header_and_quote_are_cut() -> None:
    text = (
        "Danke, das hat geholfen.\n\n"
        "Am 04.03.2024 um 10:12 schrieb Support <support@example.com>:\n"
        "> Bitte starten Sie den Drucker neu.\n"
    )
    reply = split_reply(text)
    assert reply.new == "Danke, das hat geholfen."
    assert reply.elided == (
        "Am 04.03.2024 um 10:12 schrieb Support <support@example.com>:\n"
        "> Bitte starten Sie den Drucker neu."
    )


def test_quote_header_wrapped_over_two_lines_is_cut() -> None:
    text = (
        "Sounds good.\n\n"
        "On Mon, Mar 4, 2024 at 10:12 AM Support <support@example.com>\n"
        "wrote:\n\n"
        "> Shall we go ahead?\n"
    )
    assert split_reply(text).new == "Sounds good."


def test_trailing_quote_is_cut_and_text_between_quotes_kept() -> None:
    text = "> Is the printer on?\n\nYes it is.\n\n> And the cable?\n> Plugged in?\n"
    assert split_reply(text).new == "> Is the printer on?\n\nYes it is."


def test_signature_after_dash_dash_is_cut() -> None:
    text = "See you tomorrow.\n\n-- \nAlice Example\nACME Ltd, +44 20 7946 0000\n"
    reply = split_reply(text)
    assert reply.new == "See you tomorrow."
    assert reply.elided == "-- \nAlice Example\nACME Ltd, +44 20 7946 0000"


def test_mobile_signature_line_is_cut() -> None:
    assert split_reply("Done, thanks!\n\nSent from my iPhone\n").new == "Done, thanks!"


def test_forwarded_message_is_cut() -> None:
    text = (
        "See below.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Bob <bob@example.org>\n"
        "Date: Mon, 4 Mar 2024 at 10:12\n"
        "Subject: Outage\n"
        "To: Alice <alice@example.org>\n\n"
        "The site is down.\n"
    )
    assert split_reply(text).new == "See below."


def test_text_without_quote_is_returned_unchanged() -> None:
    text = "Hello,\n\nOn Monday the printer said nothing at all.\n\n    indented line\nBye"
    assert split_reply(text) == Reply(new=text, elided="")


def test_code_block_with_hash_lines_is_text() -> None:
    text = "Try this:\n\n```\n# comment\n####\n```\n\nThen restart."
    assert split_reply(text).new == text


def test_empty_and_blank_input() -> None:
    assert split_reply("") == Reply(new="", elided="")
    assert split_reply(" \r\n\n\t\n") == Reply(new="", elided="")


def test_line_endings_are_normalised() -> None:
    assert split_reply("one\r\ntwo\rthree\n").new == "one\ntwo\nthree"


def test_huge_pathological_body_takes_bounded_time() -> None:
    lines = ["x via y " * 2_000, "On 1 Jan 2024 Bob wrote:", "text", "> q"] * 100
    started = time.perf_counter()
    split_reply("\n".join(lines))
    assert time.perf_counter() - started < 10


def test_quoted_lines_resembling_headers_are_not_earlier_mails(corpus: Path) -> None:
    sample = corpus / "email_reply_trimmer" / "matchers" / "does_not_contain_embedded_email.txt"
    text = sample.read_text(encoding="utf-8")
    assert split_reply(text).new == text.strip()


def test_markers_in_any_case_wrapped_or_behind_initials_still_end_the_new_text() -> None:
    """What the per-line shortcuts must not change: a case-insensitive signature, a quote
    behind initials and a link, a case-sensitive header wrapped over two lines."""
    shouting = split_reply("It works now.\n\nSENT FROM MY IPHONE\n")
    assert shouting.new == "It works now."
    initials = split_reply("Done, see [the log](https://x.test/log).\n\nJD> old text\nJD> more\n")
    assert initials.new == "Done, see [the log](https://x.test/log)."
    wrapped = split_reply(
        "Thanks, fixed.\n\nMax Mustermann <max@example.com> schrieb am Fr., 28. Apr. 2017\n"
        "um 11:53 Uhr:\n> the question\n"
    )
    assert wrapped.new == "Thanks, fixed."
    assert "schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:" in wrapped.elided
