"""Charsets repaired by segment, not by part; labels that lie; no control characters."""

from __future__ import annotations

import base64
import re
import urllib.parse

import pytest

from helpdeskd.core.charsets import decode_text, iso2022jp_ms
from helpdeskd.core.parse import decode_header_value, parse

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


def message(*headers: str, body: bytes = b"Hello.\r\n") -> bytes:
    return "\r\n".join([*headers, "", ""]).encode("utf-8") + body


def attachment_mail(disposition: bytes, *, text_charset: str = "utf-8") -> bytes:
    return (
        b"From: a@example.com\r\nSubject: x\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=" + text_charset.encode() + b"\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; " + disposition + b"\r\n\r\nxx\r\n--b--\r\n"
    )


def test_two_bad_bytes_in_a_long_utf8_part_cost_two_characters() -> None:
    phrase = "Привет, мир! Это длинное письмо. "
    text = phrase * 1600  # about 50 KB of Cyrillic
    data, cut = text.encode("utf-8"), len(phrase.encode("utf-8"))
    data = data[: 30 * cut] + b"\xe9" + data[30 * cut : 900 * cut] + b"\xff" + data[900 * cut :]
    inbound = parse(
        message("From: a@example.com", "Content-Type: text/plain; charset=utf-8", body=data)
    )
    assert len(inbound.text) == len(text) + 2
    assert inbound.text.count("Привет, мир!") == 1600
    assert inbound.text[: len(text[:20])] == text[:20]
    assert inbound.text.replace("é", "").replace("ÿ", "") == text


def test_a_shift_jis_header_labelled_iso_2022_jp() -> None:
    word = base64.b64encode("見積もりの件".encode("shift_jis")).decode()
    inbound = parse(message("From: a@example.com", f"Subject: =?ISO-2022-JP?B?{word}?="))
    assert inbound.subject == "見積もりの件"


def test_raw_iso_2022_jp_in_a_header_and_its_microsoft_extensions() -> None:
    raw = b"Subject: \x1b$B'('%-b\x1b(B41 \x1b$B'`'d\x1b(B 28.09.2016"
    inbound = parse(b"From: a@example.com\r\n" + raw + b"\r\n\r\nHi\r\n")
    assert inbound.subject == "ЖД№41 от 28.09.2016"
    assert iso2022jp_ms(b"\x1b$B-!\x1b(B \x1b$B|b\x1b(B \x1b(I6\x1b(B") == "① 髙 ｶ"


def test_an_rfc_2231_iso_2022_jp_file_name_keeps_every_character() -> None:
    # ① (NEC row 13) is ISO-2022-JP as Japanese clients write it, refused by Python's codec
    name = b"\x1b$B-!%F%9%H;qNA\x1b(B.txt"
    first, second = (urllib.parse.quote(x, safe="") for x in (name[:6], name[6:]))
    # the continuation splits テ between its two bytes: the name is decoded once joined
    disposition = f"filename*0*=iso-2022-jp''{first}; filename*1*={second}"
    inbound = parse(attachment_mail(disposition.encode()))
    assert [a.filename for a in inbound.attachments] == ["①テスト資料.txt"]


def test_an_8bit_gb2312_attachment_name() -> None:
    name = "测试文件名.doc".encode("gb2312")
    inbound = parse(attachment_mail(b'filename="' + name + b'"', text_charset="gb2312"))
    assert [a.filename for a in inbound.attachments] == ["测试文件名.doc"]


def test_8bit_header_fields_with_one_bad_byte() -> None:
    head = "From: Юникод запрещен <a@example.com>\r\nSubject: Отчёт".encode() + b"\xf1"
    inbound = parse(head + b"\r\n\r\nHi\r\n")
    assert inbound.from_name == "Юникод запрещен"
    assert inbound.subject == "Отчётñ"


def test_utf8_bytes_under_a_latin1_label_are_utf8() -> None:
    assert decode_header_value("=?iso-8859-1?q?Gr=C3=BC=C3=9Fe?=") == "Grüße"


def test_a_missing_charset_is_detected_not_taken_for_latin1() -> None:
    body = ("Здравствуйте! Не работает принтер в офисе, помогите пожалуйста. " * 20).encode(
        "cp1251"
    )
    inbound = parse(message("From: a@example.com", "Content-Type: text/plain", body=body))
    assert inbound.text.startswith("Здравствуйте! Не работает принтер")


def test_a_wrong_single_byte_label_on_a_long_part_is_detected() -> None:
    body = ("Здравствуйте! Не работает принтер в офисе. " * 20).encode("koi8-r")
    defects: list[str] = []
    assert decode_text(body, "utf-8", defects).startswith("Здравствуйте!")
    assert defects


def test_no_control_character_reaches_a_subject_a_name_or_a_file_name() -> None:
    raw = (
        b"From: =?utf-8?q?Eve=07=1B_Bad?= <eve@example.com>\r\n"
        b"Subject: =?utf-8?q?Hi=00=08=C2=85there=C2=9B?=\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?q?a=1Fb.txt?="\r\n\r\nxx\r\n--b--\r\n'
    )
    inbound = parse(raw)
    values = [inbound.subject, inbound.from_name, *(a.filename or "" for a in inbound.attachments)]
    assert not any(CONTROL.search(v) for v in values), values
    assert inbound.from_name == "Eve Bad"


def test_no_control_character_reaches_the_body_text() -> None:
    body = "Line one\x1b[31m red\x07\r\nLine\ttwo\x0cpage two \x85\x9b end\r\n".encode()
    inbound = parse(
        message("From: a@example.com", "Content-Type: text/plain; charset=utf-8", body=body)
    )
    assert inbound.text == "Line one[31m red\nLine\ttwo\npage two  end\n"


def test_the_detector_prefers_the_charsets_mail_is_written_in() -> None:
    french = "Bonjour, la mise à jour a échoué. Très déçu, le problème persiste après l'essai. " * 3
    polish = "Dzień dobry, drukarka nie działa. Proszę o pomoc. Z poważaniem, Łukasz Wróbel. " * 6
    for text, charset in ((french, "cp1252"), (polish, "cp1250")):
        assert decode_text(text.encode(charset), None, []) == text


def test_repairs_cost_linear_time_on_hostile_bytes() -> None:
    import os
    import time

    noise = os.urandom(2_000_000)
    damaged = ("Привет мир " * 200_000).encode()
    damaged = b"".join(damaged[i : i + 49] + b"\xff" for i in range(0, len(damaged), 49))
    started = time.monotonic()
    for data in (noise, damaged):
        decode_text(data, "utf-8", [])
        decode_text(data, "shift_jis", [])
    assert time.monotonic() - started < 10  # generous: about a second on a laptop


# --- header fields in legacy or mixed charsets --------------------------------------------


def test_utf8_and_latin1_in_one_field_each_read_as_it_is() -> None:
    raw = b"From: a@example.com\r\nSubject: " + "Café ✓ ".encode() + "für Jürgen".encode("latin-1")
    assert parse(raw + b"\r\n\r\nHi\r\n").subject == "Café ✓ für Jürgen"


def test_each_raw_header_field_is_decoded_on_its_own() -> None:
    head = "From: Jürgen Müller <j@example.com>\r\n".encode("latin-1")
    head += "Subject: Café ist kaputt ✓\r\n".encode()
    inbound = parse(head + b"\r\nHi\r\n")
    assert inbound.subject == "Café ist kaputt ✓"
    assert inbound.from_name == "Jürgen Müller"


@pytest.mark.parametrize(
    ("subject", "charset"),
    [
        ("見積もりの件", "shift_jis"),
        ("プリンターが壊れました", "shift_jis"),
        ("お願い", "cp932"),  # bytes that windows-1252 reads too
        ("テストメール", "shift_jis"),  # ASCII second bytes: ƒeƒXƒg in windows-1252
        ("【重要】お知らせ", "cp932"),
        ("請求書", "cp932"),
        ("見積もりの件について", "euc_jp"),
        ("发票问题", "gb2312"),
        ("印表機故障", "big5"),
        ("Привет, принтер не работает", "cp1251"),
        ("Καλημέρα σας", "cp1253"),
        ("Drukarka nie działa", "cp1250"),  # not dzia豉: one byte, not Big5 with an ASCII one
        ("Grüße aus Köln", "latin-1"),
        ("Müller", "cp1252"),
        ("¿Qué pasa?", "cp1252"),
    ],
)
def test_a_raw_subject_without_a_label_is_read_by_its_bytes(subject: str, charset: str) -> None:
    raw = b"From: a@example.com\r\nSubject: " + subject.encode(charset) + b"\r\n\r\nHi\r\n"
    assert parse(raw).subject == subject


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("見積もりの件", "shift_jis"),
        ("お願い", "shift_jis"),
        ("プリンターが壊れました", "shift_jis"),
        ("見積もりの件", "utf-8"),
        ("Café ist kaputt ✓", "utf-8"),
    ],
)
def test_an_encoded_word_whose_latin1_label_lies(text: str, charset: str) -> None:
    word = base64.b64encode(text.encode(charset)).decode()
    assert decode_header_value(f"=?iso-8859-1?B?{word}?=") == text


@pytest.mark.parametrize("label", ["", "us-ascii", "utf-8"])
def test_an_iso_2022_jp_encoded_word_without_its_label(label: str) -> None:
    word = base64.b64encode("見積もりの件".encode("iso2022_jp")).decode()
    assert decode_header_value(f"=?{label}?B?{word}?=") == "見積もりの件"


def test_an_iso_2022_jp_body_without_a_label() -> None:
    body = "お世話になっております。見積もりの件です。\r\n".encode("iso2022_jp")
    inbound = parse(message("From: a@example.com", "Subject: x", body=body))
    assert inbound.text.strip() == "お世話になっております。見積もりの件です。"


def test_a_raw_subject_in_a_charset_the_message_declares() -> None:
    # EUC-KR, GB2312 and EUC-JP share their byte ranges: a few bytes alone cannot tell them
    raw = (
        b"From: a@example.com\r\nSubject: " + "프린터 문제".encode("euc_kr") + b"\r\n"
        b"Content-Type: text/plain; charset=euc-kr\r\n\r\n" + "안녕하세요".encode("euc_kr")
    )
    inbound = parse(raw)
    assert (inbound.subject, inbound.text) == ("프린터 문제", "안녕하세요")


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_acknowledgement_subjects_read_right_in_a_mail_client(tmp_path) -> None:
    """Raw legacy and mixed header bytes sent to the listener: the acknowledgement's Subject,
    as Python's mail client parses it, is the customer's subject."""
    from tests.support import Daemon, Sink, free_port, send, write_config

    jis = base64.b64encode("見積もりの件".encode("iso2022_jp")).decode()
    sjis = base64.b64encode("お願い".encode("shift_jis")).decode()
    mails = {
        "mixed@acme.test": (
            "From: Jürgen Müller <mixed@acme.test>\r\n".encode("latin-1")
            + "Subject: Café ist kaputt ✓\r\n".encode(),
            "Café ist kaputt ✓",
        ),
        "sjis@acme.test": (
            b"From: sjis@acme.test\r\nSubject: " + "見積もりの件".encode("shift_jis") + b"\r\n",
            "見積もりの件",
        ),
        "latin1@acme.test": (
            f"From: latin1@acme.test\r\nSubject: =?iso-8859-1?B?{sjis}?=\r\n".encode(),
            "お願い",
        ),
        "rawjis@acme.test": (
            b"From: rawjis@acme.test\r\nSubject: " + "見積もりの件".encode("iso2022_jp") + b"\r\n",
            "見積もりの件",
        ),
        "jis@acme.test": (
            f"From: jis@acme.test\r\nSubject: =??B?{jis}?=\r\n".encode(),
            "見積もりの件",
        ),
    }
    with Sink() as sink:
        port = free_port()
        with Daemon(write_config(tmp_path, smtp_port=port, relay_port=sink.port), port):
            for sender, (head, _) in mails.items():
                raw = head + b"To: support@helpdesk.test\r\n\r\nPlease help.\r\n"
                send(port, raw, sender, ["support@helpdesk.test"])
            for sender, (_, subject) in mails.items():
                [ack] = sink.wait_for(lambda m, s=sender: m["To"].addresses[0].addr_spec == s)
                assert str(ack["Subject"]).split("] ", 1)[1] == subject


def test_a_stray_byte_in_a_short_iso_2022_jp_text_is_read_not_raised() -> None:
    # a real file name (mikel-mail attachment_with_encoded_name.eml): one 8-bit byte, and
    # the label's family names a codec of ours (iso2022-jp-ms) among the readings weighed
    defects: list[str] = []
    name = decode_text(b"01 Quien Te Dij\x8aat. Pitbull.mp3", "iso-2022-jp", defects)
    assert name.startswith("01 Quien Te Dij") and name.endswith("t. Pitbull.mp3")
    assert defects
