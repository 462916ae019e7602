"""A person's data on request (`helpdeskd person export|erase`), end to end through `ingest
--now` on a real SQLite file and a real PostgreSQL database (the `database` fixture): Jane Roe
opened a case with an attachment and rated it, was Cc'd on a colleague's case, may sign in to
the status page and is on Acme's allow-list."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import structlog.testing

from helpdeskd import allowlist, exits
from helpdeskd import config as configuration
from helpdeskd.adapters.store import Sessions, SignIns, persons
from helpdeskd.adapters.store.persons import Person
from tests.support import mail
from tests.test_customer import (
    MON,
    call,
    customer,
    customer_config,
    engineer,
    ingest,
    run,
    store_of,
)

JANE = "Jane Roe <jane@acme.test>"
TRACES = (b"jane@acme.test", b"jane roe")


@pytest.fixture
def config(tmp_path, database):
    return customer_config(tmp_path)


def jane_and_a_colleague(config) -> None:
    first = mail(JANE, "Reports are empty", "Help, the reports are empty.\n\nJane Roe, Acme")
    first.add_attachment(
        b"quarterly-figures", maintype="application", subtype="octet-stream", filename="q.bin"
    )
    ingest(config, first, MON)
    engineer(
        config, "HD-2026-00001", "#assign me\n#resolve\n\nHi Jane Roe, fixed.", "2026-04-20T11:00Z"
    )
    customer(config, "HD-2026-00001", "4\nQuick, thanks.", "2026-04-20T12:00Z", sender=JANE)
    colleague = mail("joe@acme.test", "Printer", "The printer jams.", headers={"Cc": JANE})
    ingest(config, colleague, "2026-04-20T13:00Z")
    engineer(config, "HD-2026-00002", "Looking into it.", "2026-04-20T14:00Z")
    allowlist.change(configuration.load(config), "Acme", ("add jane@acme.test",))
    store = store_of(config)
    now = datetime(2026, 4, 20, 15, tzinfo=UTC)
    SignIns(store).issue("link-hash", "jane@acme.test", now, now + timedelta(minutes=15))
    Sessions(store).start("nonce-hash", "jane@acme.test", "contact", now, now + timedelta(days=1))
    store.close()


def figures(config) -> list:
    return [
        json.loads(run(config, "report", "--format", "json", "--part", part))
        for part in ("sla", "satisfaction")
    ]


def traces(config) -> list[str]:
    """Every table and column still holding Jane's address or name; on SQLite the file's
    bytes too (the WAL copied in first)."""
    store = store_of(config)
    found = [
        f"{table}.{column}"
        for table in store.tables()
        for row in store.rows(f"SELECT * FROM {table}")
        for column, value in row.items()
        if any(t in _bytes(value).lower() for t in TRACES)
    ]
    if store.dialect.name == "sqlite":
        store.truncate_wal()
        data = store.path.read_bytes().lower()
        found += [f"the file holds {t!r}" for t in TRACES if t in data]
    store.close()
    return found


def _bytes(value) -> bytes:
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    return str(value).encode()


def test_export_then_erase_leaves_figures_and_others_words_and_no_trace(config, tmp_path):
    jane_and_a_colleague(config)
    before = figures(config)

    archive = tmp_path / "jane.zip"
    out = run(config, "person", "export", "JANE@acme.test", "--output", str(archive))
    assert "2 cases" in out, out
    with zipfile.ZipFile(archive) as opened:
        held = json.loads(opened.read("person.json"))
        names = opened.namelist()
        attachment = next(n for n in names if n.endswith("q.bin"))
        assert opened.read(attachment) == b"quarterly-figures"
    assert held["names"] == ["Jane Roe"]
    assert [c["reference"] for c in held["cases"]] == ["HD-2026-00001", "HD-2026-00002"]
    assert any(m["from_addr"] == "jane@acme.test" for m in held["messages"])
    assert any("jane@acme.test" in m["to_addrs"] and m["case_id"] == 2 for m in held["messages"])
    assert [(r["reference"], r["score"]) for r in held["ratings"]] == [("HD-2026-00001", 4)]
    assert len(held["sign_ins"]) == 1 and held["sessions"][0]["role"] == "contact"
    assert held["allow_list"] == [{"customer": "Acme", "list": "addresses"}]
    assert any(n.startswith("mail/inbound-") for n in names)
    assert any(n.startswith("mail/outbound-") for n in names)

    dry = run(config, "person", "erase", "jane@acme.test", "--dry-run")
    assert "would become erased-" in dry and "ratings: 1 rows" in dry, dry
    assert "allow-list: would be taken out of Acme" in dry
    assert "still named" not in dry  # the allow-list file is helpdeskd's to change, not the admin's
    assert traces(config)  # nothing changed yet

    done = run(config, "person", "erase", "jane@acme.test")
    pseudonym = done.split()[3]
    assert pseudonym.startswith("erased-") and pseudonym.endswith("@invalid"), done
    assert traces(config) == []
    assert figures(config) == before
    assert "jane" not in (config.parent / "allow.toml").read_text()

    store = store_of(config)
    bodies = [r["body"] for r in store.rows("SELECT body FROM messages ORDER BY id")]
    assert "The printer jams.\n" in bodies and "Looking into it." in bodies
    assert any(b and b.startswith("Hi erased-") for b in bodies)  # the engineer's words stay
    opener = store.row("SELECT opener FROM cases WHERE reference = 'HD-2026-00001'")["opener"]
    assert opener == pseudonym
    store.close()
    # the same address gives the same pseudonym: a second request finds nothing left
    again = run(config, "person", "erase", "jane@acme.test")
    assert pseudonym in again and "rows" not in again


def test_a_person_is_erased_after_retention_emptied_their_mail(config):
    """Purged raw mail is empty; SQLite reads the head of an empty blob as NULL."""
    jane_and_a_colleague(config)
    engineer(config, "HD-2026-00001", "#close\n", "2026-04-20T16:00Z")
    assert "raw mail" in run(config, "purge", "--older-than", "1d")
    done = run(config, "person", "erase", "jane@acme.test")
    assert "is now erased-" in done and "messages: " in done, done


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("mary.jane@acme.test wrote", True),  # another address ending in Jane's
        ("see jane@acme.test.example", True),  # another domain beginning with hers
        ("Jane Roes are many", True),  # another word beginning with her name
        ("Write to JANE@Acme.test.", False),
        ("<jane@acme.test>", False),
        ('["jane@acme.test"]', False),
        ("Thanks, jane roe!", False),
    ],
)
def test_only_her_address_and_name_are_replaced(text, kept):
    jane = Person.of("jane@acme.test", ("Jane Roe",))
    assert (jane.masked(text) == text) is kept
    assert (jane.masked_bytes(text.encode()) == text.encode()) is kept
    assert jane.mentioned(text) is not kept


def test_both_are_audited_by_pseudonym_and_the_admins_file_is_named_not_rewritten(config):
    """Acme's primary contact is in the admin's own file: erasure says so and leaves it."""
    ingest(config, mail("it@acme.test", "Backups", "Are they running?"), MON)
    admins_file = config.read_text()
    with structlog.testing.capture_logs() as logged:
        run(config, "person", "export", "it@acme.test", "--output", str(config.parent / "it.zip"))
        done = run(config, "person", "erase", "it@acme.test")
    assert f"still named in {config} (customers[0].primary_contact)" in done, done
    assert config.read_text() == admins_file
    pseudonym = Person.of("it@acme.test").pseudonym
    audit = [(e["action"], e["person"]) for e in logged if e["event"] == "audit"]
    assert audit == [("person.export", pseudonym), ("person.erase", pseudonym)]
    assert "it@acme.test" not in repr(logged)


def test_an_export_never_replaces_a_file_unasked(config):
    ingest(config, mail("joe@acme.test", "Printer", "The printer jams."), MON)
    archive = config.parent / "kept.zip"
    archive.write_bytes(b"an earlier export")
    code, _, err = call(config, "person", "export", "jane@acme.test", "--output", str(archive))
    assert code == exits.CANTCREAT and "--force" in err, err
    assert archive.read_bytes() == b"an earlier export"
    run(config, "person", "export", "jane@acme.test", "--output", str(archive), "--force")
    assert json.loads(zipfile.ZipFile(archive).read("person.json"))["cases"] == []


def test_every_table_has_its_step_or_is_declared_free_of_personal_data(store):
    """A table added without a step of its own (or a place in NO_PERSONAL_DATA) fails here."""
    covered = {t for holding in persons.HOLDINGS for t in holding.tables}
    assert set(store.tables()) == covered | persons.NO_PERSONAL_DATA


def test_before_any_mail_there_is_nothing_to_export_and_no_database_is_made(tmp_path):
    config = customer_config(tmp_path)
    code, _, err = call(
        config, "person", "export", "jane@acme.test", "--output", str(tmp_path / "x.zip")
    )
    assert code == exits.NOINPUT and "no database yet" in err, err
    assert not (tmp_path / "helpdesk.db").exists()
