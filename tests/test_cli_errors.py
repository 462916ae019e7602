"""The command line's one error path: every expected failure of every command is one line on
stderr with its sysexits code, never a traceback or an internal name; `--version`; where the
configuration comes from; `ingest` refusing a message over the size limit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpdeskd import __version__, logs
from helpdeskd import config as configuration
from helpdeskd.adapters.store import Store
from helpdeskd.cli import main, parser
from helpdeskd.exits import CANTCREAT, CONFIG, DATAERR, NOINPUT, SOFTWARE, UNAVAILABLE, USAGE
from tests.support import ROOT, cli, mail, write_config

# what an admin should never read: Python's names for things
INTERNAL = ("Traceback", "_instant", "fromisoformat", "isoformat", "Errno", "Error", "sqlite3")


@pytest.fixture(autouse=True)
def session_logging(monkeypatch):
    """`main` in this process keeps the session's logging: configured here, structlog would
    cache loggers writing to this test's captured stderr, closed once the test ends."""
    monkeypatch.setattr(logs, "configure", lambda level="INFO": None)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    """A configuration with one case, and beside it the broken files the table names."""
    folder = tmp_path_factory.mktemp("errors")
    config = write_config(folder)
    message = folder / "one.eml"
    message.write_bytes(mail("jane@acme.test", "Help", "x").as_bytes())
    with pytest.MonkeyPatch.context() as patch:  # as `session_logging`, a scope wider
        patch.setattr(logs, "configure", lambda level="INFO": None)
        assert main(["--config", str(config), "ingest", str(message)]) == 0
    text = config.read_text()
    database = f'database = "{folder / "helpdesk.db"}"'
    (folder / "config-folder.toml").mkdir()
    (folder / "not-a-db.txt").write_text("hello\n" * 1000)
    variants = {
        "db-under-a-file": f'database = "{message}/helpdesk.db"',
        "db-is-a-folder": f'database = "{folder}"',
        "db-not-a-db": f'database = "{folder / "not-a-db.txt"}"',
    }
    for name, line in variants.items():
        (folder / f"{name}.toml").write_text(text.replace(database, line))
    return folder


# (arguments after --config, exit code, words the line must hold); {folder} and {config} are
# filled in. Every subcommand is here at least once.
TABLE = [
    (["--bogus", "cases"], USAGE, "--bogus"),
    ([], USAGE, "COMMAND"),
    (["nosuch"], USAGE, "nosuch"),
    (["check-config", "--now", "x"], USAGE, "--now"),
    (["run", "extra"], USAGE, "extra"),
    (["ingest", "/nonexistent.eml"], NOINPUT, "/nonexistent.eml: no such file"),
    (["ingest", "{folder}"], NOINPUT, "is a folder"),
    (["ingest", "--now", "yesterday", "-"], USAGE, "'yesterday' is not a date and time"),
    (["ingest", "--now", "2026-11-18T25:00", "-"], USAGE, "not a time of day"),
    (["sweep", "--now", "yesterday"], USAGE, "write it as 2026-11-18T09:00"),
    (["sweep", "--now", "2026-02-30T10:00"], USAGE, "February 2026 has 28 days"),
    (["sweep", "--now", "2026-11-18T10:00+25:00"], USAGE, "not a time zone offset"),
    (["cases", "--status", "opne"], USAGE, "'opne' is not a status (known: new, open"),
    (["cases", "--priority", "P9"], USAGE, "'P9' is not a priority"),
    (["cases", "--plan", "platinum"], USAGE, "known: standard, gold"),
    (["cases", "--customer", "initech"], USAGE, "known: Acme (acme.test), Globex"),
    (["cases", "--customer", "glob"], USAGE, "did you mean Globex?"),
    (["show", "HD-2026-99999"], NOINPUT, "no case HD-2026-99999"),
    (["show", "foo"], USAGE, "'foo' is not a case reference: write it as HD-2026-00042"),
    (["show"], USAGE, "reference"),
    (["show", "HD-2026-00001", "--now", "soon"], USAGE, "'soon' is not a date and time"),
    (["report", "--since", "2026-13-01"], USAGE, "there is no month 13"),
    (["report", "--until", "2026-11-31"], USAGE, "November 2026 has 30 days"),
    (["report", "--since", "18.11.2026"], USAGE, "write it as YYYY-MM-DD"),
    (["report", "--since", "2026-11-20", "--until", "2026-11-10"], USAGE, "is not after"),
    (["report", "--format", "xml"], USAGE, "xml"),
    (["oncall"], CONFIG, "has no [oncall] rota"),
    (["oncall", "--now", "soon"], USAGE, "'soon' is not a date and time"),
    (["search"], USAGE, "WORD"),
    (["search", "%"], USAGE, "nothing to search for"),
    (["search", "x", "--since", "soon"], USAGE, "write it as YYYY-MM-DD"),
    (["search", "x", "--status", "gone"], USAGE, "'gone' is not a status"),
    (["search", "x", "--limit", "0"], USAGE, "'0' is not a positive whole number"),
    (["search", "x", "--customer", "nobody.test"], USAGE, "nobody.test"),
    (["requeue"], USAGE, "or --all"),
    (["requeue", "1", "--all"], USAGE, "not both"),
    (["requeue", "abc"], USAGE, "'abc' is not a message id"),
    (["requeue", "99999"], NOINPUT, "no quarantined message 99999"),
    (["outbox", "--retry", "99999"], NOINPUT, "no unsent mail 99999"),
    (["outbox", "--drop", "99999"], NOINPUT, "no unsent mail 99999"),
    (["outbox", "--retry", "x"], USAGE, "'x' is not an outbox id"),
    (["completion", "fish"], USAGE, "fish"),
    (["status", "extra"], USAGE, "extra"),
    (["backup"], USAGE, "dest"),
    (["backup", "{folder}/missing/copy.db"], CANTCREAT, "no such file or directory"),
    (["migrate"], USAGE, "--to"),
    (["migrate", "--to", "{folder}/other.db"], USAGE, "not a postgresql:// URL"),
    (["migrate", "--to", "mysql://help@db.example/helpdesk"], USAGE, "is a mysql:// URL"),
    (["migrate", "--to", "postgresql://help:pw@127.0.0.1:1/x"], 75, "help:***@127.0.0.1:1"),
    (["purge", "--older-than", "a year"], USAGE, "not a number of days"),
    (["purge"], USAGE, "--older-than"),
    (["announce", "--subject", "S"], USAGE, "--body"),
    (["web", "sign-in", "jane@acme.test"], USAGE, "sign-in"),
    (["web", "sign-out"], USAGE, "address"),
    (["person", "forget", "jane@acme.test"], USAGE, "forget"),
    (["person", "erase", "jane"], USAGE, "not an address"),
    (["person", "export", "jane@acme.test"], USAGE, "--output"),
    (["announce", "--subject", "S", "--body", "{folder}/none.txt"], NOINPUT, "cannot read"),
    (["open", "--subject", "S"], USAGE, "--for"),
    (["open", "--for", "jane@acme.test", "--subject", "S", "--at", "soon"], USAGE, "'soon'"),
    (["open", "--for", "jane@acme.test", "--subject", "S", "--channel", "fax"], USAGE, "fax"),
    (
        ["open", "--for", "a@acme.test", "--subject", "S", "--body-file", "{folder}/none.txt"],
        NOINPUT,
        "none.txt: no such file",
    ),
    (["webhooks", "--drop", "first"], USAGE, "not a delivery id"),
    (["token", "create"], USAGE, "name the token"),
    (["token", "mint", "crm"], USAGE, "invalid choice"),
    (["token", "create", "crm", "--customer", "Nobody"], USAGE, "Nobody"),
    (["token", "revoke", "crm", "--customer", "Acme"], USAGE, "no --customer"),
    (["token", "revoke", "nobody"], NOINPUT, "no live token named 'nobody'"),
]
CONFIG_TABLE = [
    ("missing.toml", ["cases"], CONFIG, "cannot read {folder}/missing.toml"),
    ("missing.toml", ["check-config"], CONFIG, "cannot read {folder}/missing.toml"),
    ("config-folder.toml", ["show", "HD-2026-00001"], CONFIG, "is a folder"),
    ("db-under-a-file.toml", ["cases"], CANTCREAT, "one.eml is not a folder"),
    ("db-is-a-folder.toml", ["sweep"], CANTCREAT, "is a folder"),
    ("db-not-a-db.toml", ["report"], DATAERR, "is not a helpdeskd database"),
    ("db-under-a-file.toml", ["run"], CANTCREAT, "check [helpdesk] database in"),
    ("db-under-a-file.toml", ["ingest", "/dev/null"], 75, "not stored: cannot create"),
]


def one_line(capsys, code: int, expected: int, words: str) -> None:
    out, err = capsys.readouterr()
    assert code == expected, err
    assert err.startswith("helpdeskd") and err.endswith("\n") and err.count("\n") == 1, err
    assert words in err, err
    assert not [name for name in INTERNAL if name in err], err
    assert out == ""


@pytest.mark.parametrize(("args", "code", "words"), TABLE, ids=[" ".join(t[0]) for t in TABLE])
def test_a_bad_input_is_one_line_and_its_exit_code(setup, capsys, args, code, words):
    config = setup / "helpdeskd.toml"
    filled = [a.format(folder=setup) for a in args]
    one_line(capsys, main(["--config", str(config), *filled]), code, words.format(folder=setup))


@pytest.mark.parametrize(
    ("file", "args", "code", "words"), CONFIG_TABLE, ids=[f"{t[0]} {t[1][0]}" for t in CONFIG_TABLE]
)
def test_a_bad_configuration_or_database_is_one_line(setup, capsys, file, args, code, words):
    result = main(["--config", str(setup / file), *args])
    one_line(capsys, result, code, words.format(folder=setup))


def test_the_table_tries_every_command():
    commands = set(parser()._subparsers._group_actions[0].choices)
    tried = {args[0] for args, _, _ in TABLE if args and not args[0].startswith("-")}
    tried |= {args[0] for _, args, _, _ in CONFIG_TABLE}
    assert commands <= tried | {"nosuch"}, commands - tried


def test_debug_shows_the_traceback_too(setup, capsys):
    code = main(["--debug", "--config", str(setup / "helpdeskd.toml"), "show", "HD-2026-99999"])
    assert code == NOINPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("`helpdeskd cases` lists them")


def test_a_second_daemon_says_the_port_is_taken_before_starting(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(tmp_path, smtp_port=taken.getsockname()[1])
        result = cli(config, "run")
    err = result.stderr.decode()
    assert result.returncode == UNAVAILABLE, err
    assert err.count("\n") == 1 and "address already in use" in err, err
    assert "is helpdeskd already running?" in err and "Traceback" not in err
    assert b'"started"' not in result.stderr  # no thread was started, no log of it


def test_a_missing_message_file_as_the_real_command(tmp_path: Path):
    result = cli(write_config(tmp_path), "ingest", "/nonexistent.eml")
    assert result.returncode == NOINPUT
    assert result.stderr.decode() == "helpdeskd: /nonexistent.eml: no such file\n"


def test_version():
    result = subprocess.run(
        [sys.executable, "-m", "helpdeskd", "--version"], capture_output=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert result.stdout.decode() == f"helpdeskd {__version__}\n"


# -- where the configuration comes from -----------------------------------------------------


@pytest.fixture
def places(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """Three candidate files in a temporary /etc, current folder and $HELPDESKD_CONFIG."""
    system = tmp_path / "system" / "helpdeskd.toml"
    monkeypatch.setattr(configuration, "SYSTEM_CONFIG", system)
    monkeypatch.delenv("HELPDESKD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    found = {}
    for name in ("env", "etc", "demo"):
        folder = tmp_path / name
        folder.mkdir()
        found[name] = write_config(folder)
    return {**found, "system": system, "cwd": tmp_path}


def used(capsys) -> str:
    assert main(["check-config"]) == 0
    return capsys.readouterr().out.split(": OK")[0]


def test_config_comes_from_the_environment_first(places, monkeypatch, capsys):
    places["system"].parent.mkdir()
    places["system"].write_text(places["etc"].read_text())
    (places["cwd"] / "config.example.toml").write_text(places["demo"].read_text())
    monkeypatch.setenv("HELPDESKD_CONFIG", str(places["env"]))
    assert used(capsys) == str(places["env"])
    monkeypatch.delenv("HELPDESKD_CONFIG")
    assert used(capsys) == str(places["system"])
    places["system"].unlink()
    assert used(capsys) == str(places["cwd"] / "config.example.toml")


def test_no_config_anywhere_names_every_place_it_looked(places, capsys):
    code = main(["cases"])
    err = capsys.readouterr().err
    assert code == CONFIG and err.count("\n") == 1
    assert "HELPDESKD_CONFIG is not set" in err and str(places["system"]) in err
    assert str(places["cwd"] / "config.example.toml") in err and "--config" in err


def test_a_broken_config_names_the_file_used(places, monkeypatch, capsys):
    places["env"].write_text("[helpdesk\n")
    monkeypatch.setenv("HELPDESKD_CONFIG", str(places["env"]))
    assert main(["cases"]) == CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"helpdeskd: {places['env']}: not valid TOML") and err.count("\n") == 1


# -- ingest over the size limit ---------------------------------------------------------------

LIMIT = 1_000_000
# The peak resident size of this process image (VmHWM, KiB): getrusage would also count the
# parent's memory that fork copied before exec.
RSS = (
    "import re, sys\n"
    "from helpdeskd.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])\n"
    "sys.exit(code)\n"
)


def ingest_measured(config: Path, *args: str, stdin=None) -> tuple[int, str, int]:
    result = subprocess.run(
        [sys.executable, "-c", RSS, "--config", str(config), "ingest", *args],
        cwd=ROOT,
        stdin=stdin,
        capture_output=True,
        timeout=120,
    )
    return result.returncode, result.stderr.decode(), int(result.stdout.split()[-1])


@pytest.fixture
def limited(tmp_path: Path) -> Path:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace("[smtp]\n", f"[smtp]\nmax_message_size = {LIMIT}\n")
    )
    return config


def test_ingest_refuses_a_message_over_the_limit_reading_no_more_than_it(limited, tmp_path):
    small = tmp_path / "small.eml"
    small.write_bytes(mail("jane@acme.test", "Fits", "x" * 1000).as_bytes())
    code, err, baseline = ingest_measured(limited, "--dry-run", str(small))
    assert code == 0, err
    huge = tmp_path / "huge.eml"
    head = mail("jane@acme.test", "Huge", "x").as_bytes()
    with huge.open("wb") as out:
        out.write(head)
        for _ in range(52):  # 52 MB: the listener would answer 552
            out.write((b"y" * 1023 + b"\n") * 1024)
    for args, stdin in (([str(huge)], None), (["-"], huge)):
        with stdin.open("rb") if stdin else open(os.devnull, "rb") as given:
            code, err, peak = ingest_measured(limited, *args, stdin=given)
        assert code == DATAERR, err  # EX_DATAERR: an MTA bounces it; 75 would retry forever
        assert err == (
            "helpdeskd: message refused: larger than [smtp] max_message_size "
            "(1,000,000 bytes); nothing was stored\n"
        )
        assert peak - baseline < 20_000, (peak, baseline)  # KiB: far below the 52 MB file
    assert Store.open(tmp_path / "helpdesk.db").count("spool", "1") == 0  # nothing stored
    exactly = tmp_path / "exactly.eml"
    exactly.write_bytes(head + b"z" * (LIMIT - len(head)))
    assert cli(limited, "ingest", str(exactly)).returncode == 0


def test_the_limit_is_the_listeners(tmp_path):
    assert configuration.Smtp().max_message_size == 25 * 1024 * 1024
    assert os.EX_DATAERR == DATAERR == 65  # documented in the README's table
    readme = (ROOT / "README.md").read_text()
    for code in (64, 65, 66, 69, 70, 73, 75, 78):
        assert f"| {code} |" in readme, f"README does not document exit {code}"


# -- shell completion ---------------------------------------------------------------------------


def test_completion_scripts_need_no_configuration(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HELPDESKD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no configuration anywhere: completion does not read one
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "outbox" in script and "--retry-now" in script and "waiting" in script
    (tmp_path / "helpdeskd.bash").write_text(script)
    complete = (
        f"source {tmp_path / 'helpdeskd.bash'}; COMP_WORDS=(helpdeskd cases --status w); "
        "COMP_CWORD=3; COMP_LINE='helpdeskd cases --status w'; COMP_POINT=${#COMP_LINE}; "
        '_shtab_helpdeskd; echo "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", complete], capture_output=True, timeout=30)
    assert done.stdout.decode().split() == ["waiting"], done.stderr.decode()
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef helpdeskd")


def test_a_bug_is_one_line_too_and_debug_shows_where(setup, capsys, monkeypatch):
    from helpdeskd.commands import cases

    def broken(config, args):
        raise RuntimeError("something impossible")

    monkeypatch.setattr(cases, "cmd_cases", broken)
    assert main(["--config", str(setup / "helpdeskd.toml"), "cases"]) == SOFTWARE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "something impossible" in err and "--debug" in err
    with pytest.raises(RuntimeError):
        main(["--debug", "--config", str(setup / "helpdeskd.toml"), "cases"])


# -- read-only commands on a fresh configuration ------------------------------------------------

READ_ONLY = [
    (["cases"], 0, ""),
    (["cases", "--json"], 0, "[]\n"),
    (["cases", "--quarantined"], 0, ""),
    (["report", "--format", "json"], 0, "[]\n"),
    (["outbox"], 0, "outbox empty\n"),
    (["show", "HD-2026-00001"], NOINPUT, ""),
    (["status", "--json"], 1, None),
]


@pytest.mark.parametrize(
    ("args", "code", "out"), READ_ONLY, ids=[" ".join(r[0]) for r in READ_ONLY]
)
def test_a_read_only_command_says_there_is_no_database_and_creates_none(
    tmp_path, capsys, args, code, out
):
    config = write_config(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert main(["--config", str(config), *args]) == code
    printed, err = capsys.readouterr()
    assert sorted(tmp_path.rglob("*")) == before
    assert f"no database yet: {tmp_path / 'helpdesk.db'} is made when" in err
    assert err.count("\n") == 1, err
    if out is not None:
        assert printed == out


def test_a_mistaken_filter_is_the_one_line_without_a_database(tmp_path, capsys):
    config = write_config(tmp_path)
    code = main(["--config", str(config), "cases", "--customer", "initech"])
    one_line(capsys, code, USAGE, "no customer 'initech'")
    assert not (tmp_path / "helpdesk.db").exists()
