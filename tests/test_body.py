"""The best body: plain text unless it is a stub; nothing a customer sent is dropped."""

from __future__ import annotations

from helpdeskd.core.parse import parse, weaker_than_html

REAL = "<p>Our printer on floor 3 is on fire again.</p>" + "<p>Details follow. </p>" * 12


def mail(content_type: str, body: str) -> bytes:
    head = f"From: a@example.com\r\nSubject: x\r\nContent-Type: {content_type}\r\n\r\n"
    return (head + body).encode()


def test_a_stub_text_part_with_the_content_in_a_nested_related_html_part() -> None:
    body = (
        "--alt\r\nContent-Type: text/plain\r\n\r\n"
        "This is an HTML message. Please use an HTML capable mail program to read it.\r\n"
        '--alt\r\nContent-Type: multipart/related; boundary="rel"\r\n\r\n'
        f"--rel\r\nContent-Type: text/html\r\n\r\n<html><body>{REAL}</body></html>\r\n"
        "--rel\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n\r\nPNG\r\n--rel--\r\n"
        "--alt--\r\n"
    )
    inbound = parse(mail('multipart/alternative; boundary="alt"', body))
    assert inbound.text.startswith("Our printer on floor 3 is on fire again.")
    assert [a.content_type for a in inbound.attachments] == ["image/png"]
    assert any("stub" in d for d in inbound.defects)


def test_a_plain_part_clearly_shorter_than_its_html_twin() -> None:
    body = (
        "--alt\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        f"--alt\r\nContent-Type: text/html\r\n\r\n{REAL}\r\n--alt--\r\n"
    )
    inbound = parse(mail('multipart/alternative; boundary="alt"', body))
    assert inbound.text.startswith("Our printer")
    assert inbound.attachments == ()


def test_a_real_plain_part_wins_and_its_html_twin_is_kept() -> None:
    plain = "Our printer on floor 3 is on fire again. Details follow." * 3
    body = (
        f"--alt\r\nContent-Type: text/plain\r\n\r\n{plain}\r\n"
        f"--alt\r\nContent-Type: text/html\r\n\r\n{REAL}\r\n--alt--\r\n"
    )
    inbound = parse(mail('multipart/alternative; boundary="alt"', body))
    assert inbound.text == plain
    assert [a.content_type for a in inbound.attachments] == ["text/html"]


def test_an_html_part_beside_the_text_in_a_mixed_message_is_kept() -> None:
    body = (
        "--mix\r\nContent-Type: text/plain\r\n\r\nSee the report.\r\n"
        "--mix\r\nContent-Type: text/html\r\n\r\n<table><tr><td>42</td></tr></table>\r\n--mix--\r\n"
    )
    inbound = parse(mail('multipart/mixed; boundary="mix"', body))
    assert inbound.text == "See the report."
    assert [(a.content_type, a.data) for a in inbound.attachments] == [
        ("text/html", b"<table><tr><td>42</td></tr></table>")
    ]


def test_html_alone_is_the_text_and_not_an_attachment() -> None:
    inbound = parse(mail("text/html", REAL))
    assert inbound.text.startswith("Our printer") and inbound.attachments == ()


def test_what_makes_a_plain_part_weaker() -> None:
    long_html = "word " * 100
    assert weaker_than_html("", "x")
    assert weaker_than_html("Your mail client does not support HTML.", long_html)
    assert weaker_than_html("See below.", long_html)
    assert not weaker_than_html("Thanks, works now.", "Thanks, works now. -- Sent from Outlook")
    assert not weaker_than_html("x" * 200, long_html)
