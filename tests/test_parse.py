"""parse(): small hand-made messages, one property each."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdeskd.core.parse import Limits, ParseError, decode_header_value, html_to_text, parse


def message(*headers: str, body: str = "Hello.\n", newline: str = "\r\n") -> bytes:
    lines = [*headers, "", *body.replace("\r\n", "\n").split("\n")]
    return newline.join(lines).encode("utf-8")


def test_plain_message_fields() -> None:
    inbound = parse(
        message(
            "From: Alice Example <Alice@Example.COM>",
            "To: support@helpdesk.test, Bob <bob@example.com>",
            "Cc: carol@example.com",
            "Reply-To: replies@example.com",
            "Subject: Printer on fire",
            "Date: Mon, 2 Mar 2026 10:00:00 +0100",
            "Message-ID: <abc@example.com>",
            "In-Reply-To: <parent@example.com>",
            "References: <root@example.com>\r\n <parent@example.com>",
        ),
        envelope_from="Alice@Example.com",
    )
    assert inbound.from_addr == "alice@example.com"
    assert inbound.from_name == "Alice Example"
    assert inbound.to == ("support@helpdesk.test", "bob@example.com")
    assert inbound.cc == ("carol@example.com",)
    assert inbound.reply_to == ("replies@example.com",)
    assert inbound.subject == "Printer on fire"
    assert inbound.message_id == "abc@example.com"
    assert inbound.in_reply_to == ("parent@example.com",)
    assert inbound.references == ("root@example.com", "parent@example.com")
    assert inbound.text == "Hello.\n"
    assert inbound.html is None
    assert inbound.envelope_from == "alice@example.com"
    assert inbound.content_type == "text/plain"
    assert inbound.header("subject") == "Printer on fire"


def test_rfc2047_headers_in_several_charsets() -> None:
    inbound = parse(
        message(
            "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>",
            "Subject: =?UTF-8?B?5L2/44Gj44Gm?= und =?iso-8859-1?Q?Priorit=E4t?=",
        )
    )
    assert inbound.from_name == "Jörg Müller"
    assert inbound.subject == "使って und Priorität"


def test_adjacent_encoded_words_join_without_the_space_between() -> None:
    # "ä" split across two words: bytes must be joined before decoding.
    assert decode_header_value("=?utf-8?B?w6Q=?= =?utf-8?B?w7Y=?=") == "äö"
    assert decode_header_value("=?utf-8?Q?a?=\r\n =?utf-8?Q?b?=") == "ab"
    assert decode_header_value("=?utf-8?Q?=C3?= =?utf-8?Q?=A4?=") == "ä"


def test_broken_charsets_are_repaired_not_raised() -> None:
    defects: list[str] = []
    assert decode_header_value("=?iso-gb2312?B?1tDOxA==?=", defects) == "中文"
    assert decode_header_value("=?unicode-1-1-utf-7?Q?+ANw-ber?=", defects) == "Über"
    assert decode_header_value("=?x-no-such-charset?Q?caf=C3=A9?=", defects) == "café"
    assert decode_header_value("=?base64?Q?abc?=", defects) == "abc"
    assert any("iso-gb2312" in d for d in defects)
    assert any("x-no-such-charset" in d for d in defects)


def test_wrongly_labelled_body_falls_back() -> None:
    latin1_as_utf8 = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xfc\xdfe\r\n"
    )
    inbound = parse(latin1_as_utf8)
    assert inbound.text == "Grüße\n"
    assert inbound.defects


def test_raw_8bit_headers_decoded() -> None:
    raw = "From: Jörg <j@example.de>\r\nSubject: Grüße\r\n\r\nx\r\n".encode()
    inbound = parse(raw)
    assert inbound.from_name == "Jörg"
    assert inbound.subject == "Grüße"
    gb = "Subject: 中文\r\nContent-Type: text/plain; charset=gb2312\r\n\r\nx\r\n".encode("gb2312")
    assert parse(gb).subject == "中文"


@pytest.mark.parametrize(
    "encoded",
    [
        "=?utf-8?Q?Hello=0D=0ABcc:_victim@example.com?=",
        "=?utf-8?B?SGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=",
        "=?utf-8?Q?Hello=0ABcc:_victim@example.com?=",
        "=?utf-8?Q?Hello=E2=80=A8Bcc:_victim@example.com?=",
    ],
)
def test_line_breaks_in_encoded_words_do_not_survive(encoded: str) -> None:
    inbound = parse(
        message("From: =?utf-8?Q?Eve=0D=0AX-Evil:_1?= <eve@example.com>", f"Subject: {encoded}")
    )
    assert inbound.subject == "Hello Bcc: victim@example.com"
    assert "\n" not in inbound.from_name and "\r" not in inbound.from_name
    for name, value in inbound.headers:
        assert not set("\r\n\u2028") & set(name + value)


def test_folded_headers_are_unfolded() -> None:
    inbound = parse(message("From: a@example.com", "Subject: a long\r\n\tsubject line"))
    assert inbound.subject == "a long subject line"  # the tab, a control character, is a space


def test_html_only_body_becomes_text() -> None:
    html = (
        "<html><head><style>p {color: red}</style><script>alert(1)</script></head>"
        "<body><p>Dear&nbsp;team,</p><p>the <a href='https://x.test'>portal</a> is"
        "   down.<br>Since 9:00 &amp; counting.</p>\n\n\n<div>Regards</div></body></html>"
    )
    inbound = parse(
        message("From: a@example.com", "Content-Type: text/html; charset=utf-8", body=html)
    )
    assert inbound.text == "Dear team,\n\nthe portal is down.\nSince 9:00 & counting.\n\nRegards"
    assert inbound.html is not None and "<p>" in inbound.html


def test_html_to_text_keeps_pre_and_collapses_blank_runs() -> None:
    assert html_to_text("<pre>a  b\n  c</pre>") == "a  b\n  c"
    assert html_to_text("<div>a</div><div></div><div></div><div>b</div>") == "a\n\nb"


def test_plain_part_preferred_in_alternative() -> None:
    body = (
        "--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n"
    )
    inbound = parse(
        message(
            "From: a@example.com", 'Content-Type: multipart/alternative; boundary="b"', body=body
        )
    )
    assert inbound.text == "plain version"
    assert inbound.html == "<p>html version</p>"
    # the HTML version is the text's twin: kept with the message, not as an attachment
    assert inbound.attachments == ()


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_line_endings_normalised(newline: str) -> None:
    raw = message("From: a@example.com", "Subject: x", body="one\ntwo\n\nthree", newline=newline)
    inbound = parse(raw)
    assert inbound.subject == "x"
    assert inbound.text == "one\ntwo\n\nthree"


def test_attachments_inline_images_and_reports() -> None:
    body = (
        "--m\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        "--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;"
        ' filename="=?utf-8?Q?Rechnung_M=C3=A4rz.pdf?="\r\nContent-Transfer-Encoding: base64\r\n'
        "\r\nJVBERi0=\r\n"
        '--m\r\nContent-Type: image/png; name="logo.png"\r\nContent-Disposition: inline\r\n'
        "\r\nPNG\r\n"
        "--m\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <orig@example.com>\r\n"
        "Subject: original\r\n\r\noriginal body\r\n"
        "--m--\r\n"
    )
    inbound = parse(
        message("From: a@example.com", 'Content-Type: multipart/mixed; boundary="m"', body=body)
    )
    assert inbound.text == "See attached."
    names = [(a.filename, a.content_type, a.size) for a in inbound.attachments]
    assert names[:2] == [("Rechnung März.pdf", "application/pdf", 5), ("logo.png", "image/png", 3)]
    enclosed = inbound.attachments[2]
    assert enclosed.content_type == "message/rfc822"
    assert b"Message-ID: <orig@example.com>" in enclosed.data
    assert inbound.attachments[0].data == b"%PDF-"


def test_attachment_bytes_beyond_the_limit_are_dropped_but_listed() -> None:
    body = (
        "--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        '--m\r\nContent-Type: application/octet-stream; name="big.bin"\r\n\r\n'
        + "x" * 2000
        + "\r\n--m--\r\n"
    )
    raw = message("From: a@example.com", 'Content-Type: multipart/mixed; boundary="m"', body=body)
    inbound = parse(raw, limits=Limits(max_attachment_bytes=1000))
    (attachment,) = inbound.attachments
    assert attachment.size == 2000 and attachment.data == b""
    assert any("size limit" in d for d in inbound.defects)


def test_too_many_headers_is_a_parse_error() -> None:
    headers = ["From: a@example.com"] + [f"X-Filler-{i}: {i}" for i in range(50)]
    with pytest.raises(ParseError, match="too many header fields"):
        parse(message(*headers), limits=Limits(max_headers=40))


def test_not_a_message_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse(b"")


def test_no_from_gives_empty_sender() -> None:
    inbound = parse(message("Subject: anonymous"))
    assert (inbound.from_addr, inbound.from_name) == ("", "")


def test_null_return_path_is_an_empty_envelope_sender() -> None:
    assert parse(message("Return-Path: <>", "From: a@example.com")).envelope_from == ""
    assert parse(message("From: a@example.com")).envelope_from is None


def test_text_before_the_headers_and_unindented_folds_are_mended() -> None:
    raw = message(
        "---- Original message ----",
        "Received: from a.example.com",
        "by b.example.com with ESMTP",
        "From: a@example.com",
        "Subject: still found",
    )
    inbound = parse(raw)
    assert (inbound.from_addr, inbound.subject) == ("a@example.com", "still found")
    assert len(inbound.defects) == 2


def deeply_nested(depth: int) -> bytes:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    text = "Content-Type: text/plain\r\n\r\n" + "deep text\r\n" * 20000
    return ("From: a@example.com\r\nSubject: nest\r\n" + opening + text + closing).encode()


def test_endless_multipart_nesting_is_bounded() -> None:
    started = time.monotonic()
    inbound = parse(deeply_nested(2000))
    assert time.monotonic() - started < 2
    assert inbound.subject == "nest"
    assert any("nesting" in d for d in inbound.defects)


def test_endless_message_nesting_is_bounded() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: nest\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 5000
    )
    started = time.monotonic()
    inbound = parse(raw + b"\r\nbottom\r\n")
    assert time.monotonic() - started < 2
    assert inbound.subject == "nest"


def test_many_parts_stop_the_walk() -> None:
    parts = "".join(f"--m\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(50))
    raw = message(
        "From: a@example.com", 'Content-Type: multipart/mixed; boundary="m"', body=parts + "--m--"
    )
    inbound = parse(raw, limits=Limits(max_parts=10))
    assert inbound.text.count("part") == 9
    assert any("MIME parts" in d for d in inbound.defects)


TEMPLATE = (
    b"From: =?utf-8?Q?A?= <a@example.com>\r\nSubject: =?x?B?AA==?=\r\n"
    b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain;'
    b" charset=utf-7\r\n\r\n+AGQ-\r\n--m\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Action: failed\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n--m--\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(TEMPLATE)), st.binary(max_size=8)), max_size=12))
def test_mangled_mail_parses_or_raises_parse_error(edits: list[tuple[int, bytes]]) -> None:
    raw = TEMPLATE
    for position, inserted in edits:
        raw = raw[:position] + inserted + raw[position + len(inserted) :]
    try:
        inbound = parse(raw)
    except ParseError as error:
        assert str(error)
        return
    for name, value in inbound.headers:
        assert "\n" not in name + value and "\r" not in name + value


def test_header_lookups_ignore_case_and_keep_the_order_of_repeats() -> None:
    inbound = parse(
        message(
            "From: alice@example.com",
            "X-Loop: first",
            "Subject: Hello",
            "x-loop: Second",
            "X-LOOP: third",
        )
    )
    assert inbound.header("X-Loop") == "first"
    assert inbound.header("x-LOOP") == "first"
    assert inbound.header_all("x-loop") == ["first", "Second", "third"]
    assert inbound.header("X-Absent") is None
    assert inbound.header_all("X-Absent") == []
    found = inbound.header_all("X-Loop")
    found.append("changed by the caller")  # a caller's list is its own
    assert inbound.header_all("X-Loop") == ["first", "Second", "third"]
