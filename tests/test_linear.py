"""The cost of parsing and quote-splitting grows with the message, never with its square:
hostile shapes at a size that took minutes when it was quadratic must take well under seconds."""

from __future__ import annotations

import contextlib
import time

import pytest

from helpdeskd.core.parse import ParseError, parse
from helpdeskd.core.quotes import split_reply

HEAD = b"From: a@acme.test\r\nTo: support@helpdesk.test\r\nSubject: x\r\n"


def cpu_seconds(work) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def header_lines(count: int, *, loose_every: int) -> bytes:
    """Short unfolded lines: every `loose_every`-th one is no header field at all."""
    lines = (b"zz%d\r\n" % i if i % loose_every == 0 else b"X%d: y\r\n" % i for i in range(count))
    return HEAD + b"".join(lines) + b"Received: x\r\n\r\nbody\r\n"


def parse_or_refuse(raw: bytes) -> None:
    with contextlib.suppress(ParseError):  # too many header fields: refusing quickly is fine
        parse(raw)


@pytest.mark.parametrize("loose_every", [1, 2])
def test_a_200000_line_header_block_is_parsed_in_linear_time(loose_every):
    # it took about 190 s when loose lines were looked up in a list
    assert cpu_seconds(lambda: parse_or_refuse(header_lines(200_000, loose_every=loose_every))) < 10


def test_doubling_the_header_lines_at_most_about_doubles_the_time():
    small, large = header_lines(20_000, loose_every=1), header_lines(40_000, loose_every=1)
    small_time = min(cpu_seconds(lambda: parse_or_refuse(small)) for _ in range(3))
    large_time = min(cpu_seconds(lambda: parse_or_refuse(large)) for _ in range(3))
    assert large_time < 3.5 * small_time + 0.05  # quadratic would be 4x and more


@pytest.mark.parametrize(
    "text",
    [
        "1" * 200_000,
        ("1" * 79 + "\n") * 2_500,
        (("a@b.c " * 166)[:999] + "\n") * 200,
        ("On 2024 " + "x " * 40 + "\n") * 2_000,
        "> hello there\n" * 15_000,
        "text\n\n" * 30_000,
        ("text\nOn Mon, 1 Jan 2024 at 10:00, Alice <a@example.com> wrote:\n") * 3_000,
        "From: x y\nhello\n" * 12_000,
        "```\n" * 50_000,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_quote_splitting_of_200k_hostile_text_is_quick(text):
    assert cpu_seconds(lambda: split_reply(text)) < 5
