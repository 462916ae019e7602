"""The best body: plain text unless it is a stub; nothing a customer sent is dropped, and the
HTML twin of the text stays with the message, never an attachment."""

from __future__ import annotations

import pytest

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


PLAIN = "Our printer on floor 3 is on fire again. Details follow." * 3


def test_a_real_plain_part_wins_and_its_html_twin_stays_with_the_message() -> None:
    body = (
        f"--alt\r\nContent-Type: text/plain\r\n\r\n{PLAIN}\r\n"
        f"--alt\r\nContent-Type: text/html\r\n\r\n{REAL}\r\n--alt--\r\n"
    )
    inbound = parse(mail('multipart/alternative; boundary="alt"', body))
    assert inbound.text == PLAIN
    assert inbound.attachments == ()  # the twin is no attachment
    assert inbound.html == REAL


def test_a_twin_with_inline_images_keeps_the_images_as_attachments() -> None:
    body = (
        f"--alt\r\nContent-Type: text/plain\r\n\r\n{PLAIN}\r\n"
        '--alt\r\nContent-Type: multipart/related; boundary="rel"\r\n\r\n'
        f'--rel\r\nContent-Type: text/html\r\n\r\n{REAL}<img src="cid:shot">\r\n'
        "--rel\r\nContent-Type: image/png; name=screenshot.png\r\nContent-ID: <shot>\r\n\r\n"
        "PNG\r\n--rel--\r\n--alt--\r\n"
    )
    inbound = parse(mail('multipart/alternative; boundary="alt"', body))
    assert inbound.text == PLAIN
    assert [a.filename for a in inbound.attachments] == ["screenshot.png"]
    assert inbound.html == f'{REAL}<img src="cid:shot">'


def test_an_html_file_the_customer_attached_stays_an_attachment() -> None:
    body = (
        '--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        f"--alt\r\nContent-Type: text/plain\r\n\r\n{PLAIN}\r\n"
        f"--alt\r\nContent-Type: text/html\r\n\r\n{REAL}\r\n--alt--\r\n"
        "--mix\r\nContent-Type: text/html\r\n"
        'Content-Disposition: attachment; filename="report.html"\r\n\r\n'
        "<table><tr><td>42</td></tr></table>\r\n"
        "--mix\r\nContent-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n"
        "<p>export</p>\r\n--mix--\r\n"
    )
    inbound = parse(mail('multipart/mixed; boundary="mix"', body))
    assert inbound.text == PLAIN
    kept = [(a.filename, a.content_type, a.data) for a in inbound.attachments]
    assert kept == [
        ("report.html", "text/html", b"<table><tr><td>42</td></tr></table>"),
        (None, "text/html", b"<p>export</p>"),
    ]
    assert inbound.html == REAL  # the twin only, not the files


def test_a_named_html_part_inside_the_alternative_is_a_file() -> None:
    body = (
        f"--alt\r\nContent-Type: text/plain\r\n\r\n{PLAIN}\r\n"
        f"--alt\r\nContent-Type: text/html; name=invoice.html\r\n\r\n{REAL}\r\n--alt--\r\n"
    )
    inbound = parse(mail('multipart/alternative; boundary="alt"', body))
    assert [a.filename for a in inbound.attachments] == ["invoice.html"]


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
    assert inbound.html is None  # outside an alternative: no twin, a file


def test_html_alone_is_the_text_and_not_an_attachment() -> None:
    inbound = parse(mail("text/html", REAL))
    assert inbound.text.startswith("Our printer") and inbound.attachments == ()
    assert inbound.html == REAL


def test_what_makes_a_plain_part_weaker() -> None:
    long_html = "word " * 100
    assert weaker_than_html("", "x")
    assert weaker_than_html("Your mail client does not support HTML.", long_html)
    assert weaker_than_html("See below.", long_html)
    assert not weaker_than_html("Thanks, works now.", "Thanks, works now. -- Sent from Outlook")
    assert not weaker_than_html("x" * 200, long_html)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_the_engineers_notification_carries_the_customers_files_not_the_twin(tmp_path) -> None:
    from tests.support import Daemon, Sink, free_port, send, write_config
    from tests.support import mail as customer_mail

    sent = customer_mail("jane@acme.test", "Report export broken", PLAIN)
    sent.add_alternative(REAL, subtype="html")
    sent.add_attachment(b"<table></table>", maintype="text", subtype="html", filename="out.html")
    with Sink() as sink:
        port = free_port()
        with Daemon(write_config(tmp_path, smtp_port=port, relay_port=sink.port), port):
            send(port, sent)
            found = sink.wait_for(lambda m: "New case" in str(m["Subject"]))
    assert found, [str(m["Subject"]) for m in sink.received]
    files = [(a.get_content_type(), a.get_filename()) for a in found[0].iter_attachments()]
    assert files == [("text/html", "out.html")]
