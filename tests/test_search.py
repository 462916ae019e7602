"""`helpdeskd search` end to end (`ingest --now`, the CLI), on SQLite and on PostgreSQL: words
in an attached log, a Japanese word, an engineer's note, the filters, the ranking, the snippet,
and `purge` taking purged attachments out of the index."""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import SQLITE, SearchIndex, Store, open_store
from helpdeskd.core import search
from helpdeskd.service import SEARCH_SLICE, Service
from tests.support import cli, mail, write_config
from tests.support import run_in_process as run

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)

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


# -- SQLite's index catches up after the commit (SearchIndex.catch_up); search reads the rest --


def catch_up(database, limit: int = 200) -> int:
    """What the daemon's worker does when idle: one slice indexed; how many texts it took."""
    store = open_store(database)
    try:
        return SearchIndex(store).catch_up(limit)
    finally:
        store.close()


def assert_index_sound(database) -> None:
    """Every text indexed, then FTS5's own check of the index against search_texts (an FTS5
    'delete' of a text it never indexed would fail it). PostgreSQL's index is the server's."""
    while catch_up(database):
        pass
    if isinstance(database, Path):
        store = open_store(database)
        try:
            store.execute(
                "INSERT INTO search_index (search_index, rank) VALUES ('integrity-check', 1)"
            )
        finally:
            store.close()


def lagging(database) -> int:
    """How many texts the SQLite index has yet to take (0 on PostgreSQL: its index follows)."""
    if not isinstance(database, Path):
        return 0
    store = open_store(database)
    try:
        upto = store.row("SELECT upto FROM search_indexed")["upto"]
        return store.count("search_texts", "id > ?", [upto])
    finally:
        store.close()


SEARCHES = [
    ("invalid", "session"),
    ("ログイン",),
    ("strips", "cookies"),
    ("session", "--customer", "globex.test"),
    ("session", "--since", "2026-11-15"),
    ("session", "--status", "new"),
    ("session", "--status", "closed"),
]


def test_mail_applied_but_not_yet_indexed_is_found_with_every_filter(helpdesk, database):
    config, cases = helpdesk
    if isinstance(database, Path):
        assert lagging(database) == 5  # the mail's commit left the index as it was
    expected = {
        ("invalid", "session"): [cases["Invalid session after upgrade"], cases["Sign-in fails"]],
        ("ログイン",): [cases["ログインできません"]],
        ("strips", "cookies"): [cases["Sign-in fails"]],
        ("session", "--customer", "globex.test"): [cases["Sign-in fails"]],
        ("session", "--since", "2026-11-15"): [cases["Invalid session after upgrade"]],
        ("session", "--status", "new"): [
            cases["Invalid session after upgrade"],
            cases["Sign-in fails"],
        ],
        ("session", "--status", "closed"): [],
    }
    before = {args: found(config, *args) for args in SEARCHES}
    assert {args: [r["reference"] for r in rows] for args, rows in before.items()} == expected
    while catch_up(database, limit=2):  # part indexed, part read directly, then all indexed
        assert {args: found(config, *args) for args in SEARCHES} == before
    assert lagging(database) == 0
    assert {args: found(config, *args) for args in SEARCHES} == before


def test_catch_up_indexes_in_slices_and_says_0_once_done(store):
    add_case(store, 1)
    for i in range(1, 6):
        SearchIndex(store).add(1, None, [("message", f"printer jam number {i}")])
    index = SearchIndex(store)
    newest_three = ["printer jam number 5", "printer jam number 4", "printer jam number 3"]
    slices = [2, 2, 1, 0, 0] if store.dialect is SQLITE else [0]
    for expected in slices:
        # whatever is indexed yet: the newest texts first, and no more than asked for
        assert [r["body"] for r in index.matching(["jam"], limit=3)] == newest_three
        assert len(index.matching(["printer", "number"])) == 5
        assert index.catch_up(limit=2) == expected
    assert index.matching(["nowhere"]) == []


def test_deleting_texts_indexed_or_not_keeps_the_index_sound(helpdesk, database):
    """Retention's purge and a person's erasure delete texts on either side of what the index
    has taken so far, and erasure writes texts back under their own ids."""
    config, cases = helpdesk
    reference = cases["Sign-in fails"]
    note = "#note\n\nCalled boss@globex.test about the proxy."
    ingest(config, engineer(reference, note), "2026-11-02T11:00:00-06:00")  # text 6
    again = mail("boss@globex.test", f"Re: [{reference}] Sign-in fails", "Another log.")
    again.add_attachment(b"auth: token expired\n", maintype="text", subtype="plain")
    ingest(config, again, "2026-11-02T12:00:00-06:00")  # texts 7, 8 (the log)
    ingest(config, engineer(reference, note), "2026-11-02T13:00:00-06:00")  # text 9
    if isinstance(database, Path):
        assert catch_up(database, limit=6) == 6  # 1-6 indexed: a log, a note naming boss
        assert lagging(database) == 3  # 7-9: a log, boss's mail, a note naming boss
    ingest(config, engineer(reference, "#close\n"), "2026-11-03T10:00:00-06:00")
    assert "2 attachment(s) out of search" in run(config, "purge", "--older-than", "1d")
    assert found(config, "token") == []
    erased = run(config, "person", "erase", "boss@globex.test")
    alias = erased.split("erased-", 1)[1][:16]
    assert found(config, "boss@globex") == [] and found(config, "another", "log") == []
    (hit,) = found(config, alias, "proxy")
    assert hit["reference"] == reference
    assert found(config, "strips", "cookies")[0]["reference"] == reference
    assert_index_sound(database)
    assert [r["reference"] for r in found(config, alias, "proxy")] == [reference]


def test_an_index_behind_the_newest_texts_takes_a_reused_id(store):
    """SQLite gives the next text the highest id + 1: once the newest indexed text is gone, a
    new text takes its id, below what the index has taken, and the index takes it at once."""
    add_case(store, 1)
    index = SearchIndex(store)
    index.add(1, None, [("message", "first printer"), ("message", "second printer")])
    while index.catch_up():
        pass
    store.execute("DELETE FROM search_texts WHERE body = 'second printer'")
    index.add(1, None, [("message", "third printer")])
    assert [r["body"] for r in index.matching(["printer"])] == ["third printer", "first printer"]
    if store.dialect is SQLITE:
        assert index.catch_up() == 0
        store.execute("INSERT INTO search_index (search_index, rank) VALUES ('integrity-check', 1)")


def test_a_database_from_before_keeps_finding_its_texts(tmp_path: Path):
    old = Store(tmp_path / "helpdesk.db")
    old.migrate(stop_before="m026_search_catches_up")
    add_case(old, 1)
    SearchIndex(old).add(1, None, [("message", "indexed as it came"), ("message", "as well")])
    old.close()
    store = open_store(tmp_path / "helpdesk.db")  # start-up runs the migration
    index = SearchIndex(store)
    assert store.row("SELECT upto FROM search_indexed")["upto"] == 2
    assert index.catch_up() == 0  # all was indexed by the trigger of old
    index.add(1, None, [("message", "came after the upgrade")])
    assert [r["body"] for r in index.matching(["came"])] == [
        "came after the upgrade",
        "indexed as it came",
    ]
    store.execute("DELETE FROM search_texts")
    assert index.matching(["came"]) == []
    store.execute("INSERT INTO search_index (search_index, rank) VALUES ('integrity-check', 1)")


def add_case(store, case_id: int) -> None:
    at = "2026-11-02T15:00:00+00:00"
    store.execute(
        "INSERT INTO cases (id, reference, status, priority, plan, subject, opener, contacts, "
        "opened_at, updated_at) VALUES (?, ?, 'open', 'P3', 'standard', 'Printer', "
        "'x@acme.test', '[]', ?, ?)",
        [case_id, f"HD-2026-{case_id:05d}", at, at],
    )


def engineer(reference: str, body: str):
    return mail(
        "alice@helpdesk.test",
        f"Re: [{reference}] Sign-in fails",
        body,
        message_id=email.utils.make_msgid(domain="helpdesk.test"),
    )


def test_the_worker_indexes_what_it_applied_once_no_mail_waits(tmp_path: Path):
    """The daemon's worker applies the mail first, then, idle, brings the index up to date
    in slices, each between two looks at the spool."""
    service = Service(configuration.load(write_config(tmp_path)), clock=lambda: NOW)
    for n in range(SEARCH_SLICE + 5):
        raw = mail(f"joe{n}@acme.test", f"Printer jam {n}", "The tray sticks.").as_bytes()
        service.store.spool(raw, source="smtp", now=NOW)
    assert service.work()  # the mail
    assert lagging(tmp_path / "helpdesk.db") == SEARCH_SLICE + 5
    assert service.work()  # no mail: a first slice of its texts
    assert lagging(tmp_path / "helpdesk.db") == 5
    while service.work():
        pass
    assert lagging(tmp_path / "helpdesk.db") == 0
    assert len(SearchIndex(service.store).matching(["tray", "sticks"])) == SEARCH_SLICE + 5
