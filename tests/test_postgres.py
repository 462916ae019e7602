"""What only a PostgreSQL store has: a URL in the configuration (never a path, its password never
shown), its migrations, a server that drops connections, `backup` pointing to pg_dump, and
`migrate --to` moving a helpdesk from SQLite, checked row by row. Against the test run's own
throwaway cluster (tests/postgres.py); the rest of the store's tests run on both stores through
the `database` fixture."""

from __future__ import annotations

import json
import smtplib
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import (
    Cases,
    Deliveries,
    Heartbeats,
    Incidents,
    Leases,
    MailboxState,
    Merges,
    Nodes,
    OutboxQueue,
    Ratings,
    SearchIndex,
    SentOnce,
    Sessions,
    SignIns,
    Store,
    Tokens,
    iso,
    migrations,
    open_store,
)
from helpdeskd.core.survey import Rating
from helpdeskd.database_url import DatabaseUrl, masked
from helpdeskd.migrate import key_order
from helpdeskd.model import Case
from tests.support import Daemon, cli, free_port, mail, send, write_config
from tests.support import call_in_process as call
from tests.support import run_in_process as run

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
SECRET = "s3cret-Pa55"


def with_database(config: Path, value: str, extra: str = "") -> Path:
    """The configuration with `[helpdesk] database = value` (and more keys after it)."""
    text = config.read_text()
    start = text.index("database = ")
    end = text.index("\n", start)
    config.write_text(text[:start] + f'database = "{value}"{extra}' + text[end:])
    return config


@pytest.fixture
def empty_url(postgres):
    """A database with nothing in it, not even the schema: what `migrate --to` expects."""
    name = postgres.database(migrated=False)
    yield postgres.url(name)
    postgres.drop(name)


# -- the URL in the configuration ---------------------------------------------------------


def test_a_url_is_never_taken_for_a_path(tmp_path: Path, postgres_url: str):
    config = with_database(write_config(tmp_path), postgres_url)
    assert cli(config, "check-config").returncode == 0
    assert json.loads(cli(config, "cases", "--json").stdout) == []
    status = cli(config, "status", "--json")  # unhealthy: no daemon listens
    assert status.returncode == 1 and json.loads(status.stdout)["spool"]["waiting"] == 0
    assert not (tmp_path / "postgresql:").exists()
    assert not any(p.suffix == ".db" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("mysql://help@db.example/helpdesk", "is a mysql:// URL"),
        ("sqlite:///var/lib/helpdesk.db", "is a sqlite:// URL"),
        (
            "postgresql://help@db.example/helpdesk?colour=blue",
            'invalid URI query parameter: "colour"',
        ),
        ("postgresql://help@db.example:fivefour/helpdesk", "the port is not a number"),
    ],
)
def test_check_config_lists_a_bad_url_with_its_key(tmp_path: Path, value: str, why: str):
    config = with_database(write_config(tmp_path), value)
    done = cli(config, "check-config")
    assert done.returncode == 78
    line = next(x for x in done.stderr.decode().splitlines() if "helpdesk.database" in x)
    assert why in line, line
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(":")]


def test_the_password_comes_from_its_file_and_is_never_shown(
    tmp_path: Path, postgres, postgres_url: str
):
    postgres.password_role("clerk", SECRET)
    url = postgres_url.replace("postgres@", "clerk@")
    secret = tmp_path / "db-password"
    secret.write_text(SECRET + "\n")
    config = with_database(write_config(tmp_path), url, f'\ndatabase_password_file = "{secret}"')
    assert json.loads(run(config, "cases", "--json")) == []

    (tmp_path / "wrong").mkdir()
    wrong_url = url.replace("clerk@", f"clerk:not-{SECRET}@")
    wrong = with_database(write_config(tmp_path / "wrong"), wrong_url)
    code, out, err = call(wrong, "cases")
    assert code == 75 and err.count("\n") == 1, err  # one line, and the MTA would retry
    assert "password authentication failed" in err and "clerk:***@" in err
    assert SECRET not in out + err
    check = cli(wrong, "check-config")
    assert "database_password_file" in check.stderr.decode()  # the warning
    assert SECRET not in (check.stdout + check.stderr).decode()


def test_the_url_is_shown_masked_wherever_it_is_printed():
    url = DatabaseUrl(f"postgresql://clerk:{SECRET}@db.example/helpdesk?password={SECRET}")
    assert SECRET not in str(url) and SECRET not in repr(url) and SECRET not in f"{url!s}"
    assert str(url) == "postgresql://clerk:***@db.example/helpdesk?password=***"
    assert masked("postgresql://clerk@db.example/helpdesk") == (
        "postgresql://clerk@db.example/helpdesk"
    )


def test_a_server_that_cannot_be_reached_is_exit_75_for_ingest(tmp_path: Path):
    config = with_database(write_config(tmp_path), f"postgresql://x@127.0.0.1:{free_port()}/x")
    done = cli(config, "ingest", "-", stdin=mail("jane@acme.test", "x", "y").as_bytes())
    assert done.returncode == 75
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("helpdeskd: not stored: cannot use the database postgresql://x@")


# -- the schema -----------------------------------------------------------------------------


def test_an_older_postgres_database_upgrades_in_place(empty_url: str):
    store = open_store(empty_url, migrate=False)
    store.migrate(stop_before=migrations._migrations[2].name)
    store.spool(mail("jane@acme.test", "old", "kept").as_bytes(), source="smtp", now=NOW)
    assert "outbox" not in store.tables()
    store.close()
    upgraded = open_store(empty_url)
    assert "outbox" in upgraded.tables()
    applied = upgraded.rows("SELECT name FROM schema_migrations ORDER BY applied_at")
    assert [r["name"] for r in applied] == [m.name for m in migrations._migrations]
    assert upgraded.pending()[0].raw.startswith(b"From: jane@acme.test")
    assert upgraded.row("SELECT next_due FROM cases LIMIT 1") is None  # the column is there


def test_both_schemas_have_the_same_tables_and_columns(tmp_path: Path, postgres_url: str):
    sqlite, server = open_store(tmp_path / "x.db"), open_store(postgres_url)
    assert sqlite.tables() == server.tables()
    for table in sqlite.tables():
        mine = [c[0] for c in sqlite.execute(f"SELECT * FROM {table} LIMIT 0").description]
        theirs = [c[0] for c in server.execute(f"SELECT * FROM {table} LIMIT 0").description]
        assert mine == theirs, table


# -- a dropped connection -------------------------------------------------------------------


def test_a_dropped_connection_costs_one_451_at_most(tmp_path: Path, postgres, postgres_url):
    """A server restart or a fail-over drops every connection; the sender of the mail that
    found out is asked to retry, the next mail goes through on a new connection."""
    port = free_port()
    config = with_database(write_config(tmp_path, smtp_port=port), postgres_url)
    with Daemon(config, port):
        send(port, mail("jane@acme.test", "Before", "x"))
        postgres.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid != pg_backend_pid()",
            (postgres_url.rpartition("/")[2],),
        )
        refused = 0
        for _ in range(2):
            try:
                send(port, mail("jane@acme.test", "After", "x", message_id="<after@acme.test>"))
                break
            except smtplib.SMTPDataError as exc:
                assert exc.smtp_code == 451
                refused += 1
        assert refused <= 1
    store = open_store(postgres_url)
    assert store.count("spool", "message_id = ?", ["after@acme.test"]) == 1


# -- backup -------------------------------------------------------------------------------


def test_backup_on_postgres_says_pg_dump_is_the_tool(tmp_path: Path, postgres_url: str):
    config = with_database(write_config(tmp_path), postgres_url)
    done = cli(config, "backup", str(tmp_path / "copy.db"))
    assert done.returncode == 69
    [line] = done.stderr.decode().splitlines()
    assert "pg_dump" in line and not (tmp_path / "copy.db").exists()


# -- migrate --to ---------------------------------------------------------------------------


def with_attachment(message: EmailMessage, name: str) -> EmailMessage:
    message.add_attachment(
        bytes(range(256)) * 8, maintype="application", subtype="octet-stream", filename=name
    )
    return message


def ingest(config: Path, message: EmailMessage | bytes, now: datetime) -> str:
    path = config.parent / "in.eml"
    path.write_bytes(bytes(message))
    return run(config, "ingest", "--now", now.isoformat(), str(path))


def a_helpdesk_of_every_kind(config: Path) -> None:
    """Cases new, open, waiting, resolved and closed; messages in and out with attachments;
    sent and queued mail; a rating, sign-ins, an incident, a quarantined message, an
    unrouted one, and the daemon's own records."""
    refs = []
    for n in range(5):
        message = mail(f"user{n}@acme.test", f"Case {n}", f"Help with {n}, 100% broken?")
        out = ingest(config, with_attachment(message, f"log{n}.bin"), NOW + timedelta(minutes=n))
        refs.append(out.split()[1].rstrip(":"))
    reply = mail("alice@helpdesk.test", f"Re: [{refs[1]}] x", "Here is the fix.")
    ingest(config, with_attachment(reply, "fix.bin"), NOW + timedelta(hours=1))
    ingest(config, b"this is not a mail at all\n", NOW)  # quarantined
    robot = mail("mailer@acme.test", "Out of office", "away", headers={"Auto-Submitted": "auto"})
    ingest(config, robot, NOW)
    store = open_store(configuration.load(config).helpdesk.database)
    cases = Cases(store)
    with store.transaction():
        for ref, status in zip(refs[1:], ("open", "waiting", "resolved", "closed"), strict=True):
            case = cases.get(ref)
            closed = NOW + timedelta(days=1) if status == "closed" else None
            cases.save(replace(case, status=status, closed_at=closed), None)
        Ratings(store).record(Rating(cases.get(refs[4]).id, 4, "Thanks", "user4@acme.test", NOW))
        SignIns(store).issue("a" * 64, "user0@acme.test", NOW, NOW + timedelta(minutes=15))
        SignIns(store).note(["client:127.0.0.1", "address:user0@acme.test"], NOW)
        Incidents(store).open("relay-down", "the relay refuses", NOW)
        OutboxQueue(store).enqueue(
            case_id=cases.get(refs[0]).id,
            kind="reply",
            message_id="<queued@helpdesk.test>",
            mail_from="support@helpdesk.test",
            recipients=("user0@acme.test",),
            raw=b"Subject: queued\r\n\r\n\xff\xfe raw bytes",
            automatic=False,
            now=NOW,
        )
        MailboxState(store).set("support", 1234, 99)
        Heartbeats(store).stamp("sweep", NOW)
        SentOnce(store).claim("monthly:2026-10:Acme", NOW)
        several_nodes_and_integrations(store, cases.get(refs[0]), cases.get(refs[2]))
    store.close()


def several_nodes_and_integrations(store: Store, folded: Case, surviving: Case) -> None:
    """The tables of later migrations: a session, a merge, nodes and a lease, a webhook
    delivery, an API token, a reminder, time spent and a page."""
    Sessions(store).start("b" * 64, "user0@acme.test", "contact", NOW, NOW + timedelta(hours=8))
    Merges(store).fold(folded.id, surviving.id, "alice@helpdesk.test", {"contacts": []}, NOW)
    Nodes(store).beat("node-a", 4242, NOW, NOW)
    Leases(store).take("sweep", "node-a", NOW, 30)
    Deliveries(store).enqueue(
        "https://hooks.example/x", "case.opened", folded.reference, b"{}", NOW
    )
    Tokens(store).create("crm", "c" * 64, "Acme", NOW)
    at, engineer = iso(NOW), "alice@helpdesk.test"
    store.insert("reminders", {"case_id": surviving.id, "recipient": engineer, "due_at": at})
    store.insert(
        "time_spent", {"case_id": surviving.id, "engineer": engineer, "minutes": 45, "at": at}
    )
    page = {"case_id": surviving.id, "person": engineer, "step": 1, "paged_at": at, "ack_by": at}
    store.insert("pages", page)


def every_row(store: Store, table: str, order: str) -> list[dict]:
    return store.rows(f"SELECT * FROM {table} ORDER BY {order}")


def test_migrate_copies_a_helpdesk_of_every_kind_row_by_row(tmp_path: Path, empty_url: str):
    config = write_config(tmp_path)
    a_helpdesk_of_every_kind(config)
    listed = run(config, "cases", "--json")
    done = cli(config, "migrate", "--to", empty_url)
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "checked: every table's count, and " in out
    assert f'database = "{empty_url}"' in out and str(config) in out

    source, target = Store(tmp_path / "helpdesk.db"), open_store(empty_url)
    statuses = {r["status"] for r in source.rows("SELECT status FROM cases")}
    assert statuses == {"new", "open", "waiting", "resolved", "closed"}
    tables = source.tables()
    assert tables == target.tables()
    for table in tables:
        rows = every_row(source, table, key_order(source, table))
        assert rows, f"the test's helpdesk has no {table}"
        assert every_row(target, table, key_order(source, table)) == rows, table
    raw = [r["raw"] for r in source.rows("SELECT raw FROM spool")]
    assert any(b'filename="log0.bin"' in r for r in raw) and any(b"fix.bin" in r for r in raw)

    moved = with_database(config, empty_url)
    assert run(moved, "cases", "--json") == listed
    out = ingest(moved, mail("jane@acme.test", "After the move", "x"), NOW + timedelta(days=2))
    assert out.startswith("new HD-2026-00006"), out  # the ids and references go on


def test_migrate_leaves_the_planner_knowing_what_it_copied(tmp_path: Path, empty_url: str):
    """Tables filled in one go are planned as empty until analyzed: a common word's search
    then took every match through the trigram index and sorted them all (0.8 s at 100,000
    cases, bench/README.md), where the newest texts read backwards stop at the page's rows."""
    config = write_config(tmp_path)
    a_helpdesk_of_every_kind(config)
    done = cli(config, "migrate", "--to", empty_url)
    assert done.returncode == 0, done.stderr.decode()
    target = open_store(empty_url)
    for table in ("search_texts", "cases", "messages"):
        known = target.row("SELECT reltuples FROM pg_class WHERE relname = ?", [table])
        counted = target.row(f"SELECT count(*) AS n FROM {table}")
        assert known["reltuples"] == counted["n"] > 0, table


def test_each_search_is_planned_for_its_own_words(postgres_url: str):
    """The daemon searches (for the status page) on one connection, where psycopg prepares a
    statement at its fifth run and PostgreSQL may then plan it once for any word: a plan made
    for a common word read every text for a word found nowhere (0.5 s at 100,000 cases)."""
    store = open_store(postgres_url)
    at = iso(NOW)
    with store.transaction():
        for i in range(1, 61):
            store.execute(
                "INSERT INTO cases (id, reference, status, priority, plan, subject, opener, "
                "contacts, opened_at, updated_at) VALUES (?, ?, 'open', 'P3', 'standard', ?, "
                "'x@acme.test', '[]', ?, ?)",
                [i, f"HD-2026-{i:05d}", f"case {i}", at, at],
            )
            SearchIndex(store).add(i, None, [("message", f"invoice {i} printer")])
    for word in ["invoice", "printer", "kerberos", "zyxwvut"] * 4:
        SearchIndex(store).matching([word])
    plans = store.row(
        "SELECT coalesce(sum(generic_plans), 0) AS generic, count(*) AS prepared "
        "FROM pg_prepared_statements WHERE statement LIKE 'SELECT s.body%'"
    )
    assert plans["prepared"] == 1  # psycopg did prepare it: the case this is about
    assert plans["generic"] == 0


def test_migrate_refuses_a_database_that_holds_a_helpdesk(tmp_path: Path, postgres_url: str):
    config = write_config(tmp_path)
    ingest(config, mail("jane@acme.test", "Mine", "x"), NOW)
    (tmp_path / "other").mkdir()
    elsewhere = write_config(tmp_path / "other")
    ingest(with_database(elsewhere, postgres_url), mail("joe@acme.test", "Theirs", "y"), NOW)
    done = cli(config, "migrate", "--to", postgres_url)
    assert done.returncode == 73
    assert "already holds a helpdesk" in done.stderr.decode()
    assert open_store(postgres_url).count("cases", "1 = 1") == 1  # theirs alone


def test_migrate_refuses_while_the_daemon_runs(tmp_path: Path, empty_url: str):
    port = free_port()
    config = write_config(tmp_path, smtp_port=port)
    with socket.create_server(("127.0.0.1", port)):  # the listener's port is taken
        done = cli(config, "migrate", "--to", empty_url)
    assert done.returncode == 75 and "stop it first" in done.stderr.decode()
    assert open_store(empty_url, migrate=False).tables() == []


def test_migrate_wants_a_postgresql_url(tmp_path: Path):
    config = write_config(tmp_path)
    done = cli(config, "migrate", "--to", str(tmp_path / "other.db"))
    assert done.returncode == 64 and "postgresql://" in done.stderr.decode()


# -- transactions that must not run side by side ------------------------------------------


def test_an_exclusive_transaction_waits_for_the_one_before(postgres_url: str):
    """PostgreSQL runs writers side by side; what must not (the allow-list file's writers)
    asks for a name, and the second asker waits for the first one's commit."""
    first, second = open_store(postgres_url), open_store(postgres_url, migrate=False)
    order: list[str] = []

    def later() -> None:
        with second.transaction():
            second.exclusive("allowlist")
            order.append("second")

    with first.transaction():
        first.exclusive("allowlist")
        thread = threading.Thread(target=later)
        thread.start()
        waiting_for_the_name(first)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]


def waiting_for_the_name(store: Store) -> None:
    """Until another connection waits for an advisory lock (the server's own view of it)."""
    for _ in range(200):
        if store.row("SELECT 1 AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
            return
        time.sleep(0.05)
    raise AssertionError("nobody waits for the name")


def test_an_sqlite_store_refuses_a_url(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is a URL"):
        Store(f"postgresql://clerk:{SECRET}@db.example/helpdesk")
    assert list(tmp_path.iterdir()) == []
