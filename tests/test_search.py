"""`helpdeskd search` end to end (`ingest --now`, the CLI), on SQLite and on PostgreSQL: words
in an attached log, a Japanese word, an engineer's note, the filters, the ranking, the snippet,
and `purge` taking purged attachments out of the index."""

from __future__ import annotations

import email.utils
import json
from pathlib import Path

import pytest

from helpdeskd.core import search
from tests.support import cli, mail, write_config
from tests.support import run_in_process as run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


JAPANESE = "本日からログインできません。認証エラーが出ます。"


def ingest(config: Path, message, now: str) -> None:
    run(config, "ingest", "--now", now, "-", stdin=message.as_bytes())


def found(config: Path, *args: str) -> list[dict]:
    return json.loads(run(config, "search", *args, "--json"))


@pytest.fixture
def helpdesk(tmp_path: Path, database) -> tuple[Path, dict[str, str]]:
    config = write_config(tmp_path)
    with_log = mail("boss@globex.test", "Sign-in fails", "Please see the attached log.")
    with_log.add_attachment(
        b"12:00:01 auth: invalid session token for user 42\n",
        maintype="text",
        subtype="plain",
        filename="server.log",
    )
    ingest(config, with_log, "2026-11-02T09:00:00-06:00")
    ingest(
        config,
        mail(
            "yamada@acme.test",
            "ログインできません",
            JAPANESE,
        ),
        "2026-11-03T09:00:00-06:00",
    )
    ingest(
        config,
        mail("ops@acme.test", "Invalid session after upgrade", "Invalid session, invalid session."),
        "2026-12-01T09:00:00-06:00",
    )
    cases = {c["subject"]: c["reference"] for c in json.loads(run(config, "cases", "--json"))}
    note = mail(
        "alice@helpdesk.test",
        f"Re: [{cases['Sign-in fails']}] Sign-in fails",
        "#note\n\nThe customer's proxy strips cookies.",
        message_id=email.utils.make_msgid(domain="helpdesk.test"),
    )
    ingest(config, note, "2026-11-02T10:00:00-06:00")
    return config, cases


def test_a_word_in_an_attachment_finds_its_case_ranked_with_a_snippet(helpdesk):
    config, cases = helpdesk
    results = found(config, "invalid", "SESSION")
    # the case whose subject says it comes first; the log's case after it
    assert [r["reference"] for r in results] == [
        cases["Invalid session after upgrade"],
        cases["Sign-in fails"],
    ]
    log = results[1]
    assert log["snippet"] == "server.log 12:00:01 auth: [invalid] [session] token for user 42"
    assert log["customer"] == "Globex" and log["status"] == "new"
    text = run(config, "search", "invalid", "session")
    assert cases["Sign-in fails"] in text and "[invalid] [session]" in text


def test_a_japanese_word_and_a_note_are_found(helpdesk):
    config, cases = helpdesk
    (hit,) = found(config, "ログイン")
    assert hit["reference"] == cases["ログインできません"]
    assert "[ログイン]" in hit["snippet"]
    assert [r["reference"] for r in found(config, "認証エラー")] == [hit["reference"]]
    assert [r["reference"] for r in found(config, "strips", "cookies")] == [cases["Sign-in fails"]]


def test_the_filters_narrow_the_search(helpdesk):
    config, cases = helpdesk
    assert [r["reference"] for r in found(config, "session", "--customer", "globex.test")] == [
        cases["Sign-in fails"]
    ]
    assert [r["reference"] for r in found(config, "session", "--since", "2026-11-15")] == [
        cases["Invalid session after upgrade"]
    ]
    assert found(config, "session", "--status", "closed") == []
    assert found(config, "nowhere-to-be-found") == []
    assert "no case holds" in run(config, "search", "nowhere")
    refused = cli(config, "search", "%", "_")
    assert refused.returncode == 64 and b"nothing to search for" in refused.stderr


def test_purge_takes_purged_attachments_out_of_the_index(helpdesk):
    config, cases = helpdesk
    reference = cases["Sign-in fails"]
    closing = mail(
        "alice@helpdesk.test",
        f"Re: [{reference}] Sign-in fails",
        "#close\n",
        message_id=email.utils.make_msgid(domain="helpdesk.test"),
    )
    ingest(config, closing, "2026-11-03T10:00:00-06:00")
    purged = run(config, "purge", "--older-than", "1d")
    assert "1 attachment(s) out of search" in purged
    assert [r["reference"] for r in found(config, "token", "user")] == []
    assert [r["reference"] for r in found(config, "strips")] == [reference]  # the note stays


def test_words_are_what_the_index_can_find():
    assert search.words("Invalid  SESSION invalid") == ["invalid", "session"]
    assert search.words("100% _done_") == ["100", "done"]
