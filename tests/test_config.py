"""The configuration: the example loads, and a bad file lists every problem by key path."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from helpdeskd import config as configuration
from helpdeskd.config import ConfigError
from tests.support import ROOT, cli, write_config


def test_the_example_configuration_loads():
    config = configuration.load(ROOT / "config.example.toml")
    assert config.helpdesk.address == "support@example.com"
    assert set(config.plans) == {"standard", "priority", "enterprise"}
    assert config.plans["standard"].calendar_for("P1") == "around-the-clock"
    assert config.plans["standard"].calendar_for("P2") == "us-business"
    assert config.helpdesk.database == ROOT / "var" / "helpdesk.db"


def test_test_configuration_loads(tmp_path: Path):
    config = configuration.load(write_config(tmp_path))
    assert [c.name for c in config.customers] == ["Acme", "Globex"]
    assert config.engineer("ALICE@helpdesk.test").name == "Alice Engineer"


BAD = """
[helpdesk]
addresses = ["not-an-address"]
reference_prefix = "hd"
timezone = "Mars/Olympus"
colour = "blue"

[smtp]
port = 70000

[calendars.business]
timezone = "America/Chicago"
mon = "17:00-08:00"

[plans.gold]
calendar = "nowhere"
first_response = { P1 = "2h", P2 = "4x", P3 = "1d", P4 = "1d", P5 = "1h" }
resolution = { P1 = "1d", P2 = "1d", P3 = "1d" }
warn_at = 1.5

[[customers]]
name = "Acme"
domains = ["acme.test"]
plan = "platinum"

[[engineers]]
name = "Al"
email = "al@"

[escalation]
levels = [{ notify = [], on = "sometimes" }]

[policy]
unknown_sender = "welcome"
default_priority = "P0"
close_warning_after = "soon"
"""

EXPECTED = {
    "helpdesk.addresses[0]",
    "helpdesk.reference_prefix",
    "helpdesk.timezone",
    "helpdesk.colour",
    "smtp.port",
    "plans.gold.calendar",
    "plans.gold.first_response.P2",
    "plans.gold.first_response.P5",
    "plans.gold.resolution.P4",
    "plans.gold.warn_at",
    "customers[0].plan",
    "engineers[0].email",
    "escalation.levels[0].notify",
    "escalation.levels[0].on",
    "policy.unknown_sender",
    "policy.default_priority",
    "policy.close_warning_after",
}


def test_a_bad_file_lists_every_problem_with_its_key_path(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    keys = {key for key, _ in caught.value.problems}
    assert keys >= EXPECTED, EXPECTED - keys
    assert any(k.startswith("calendars.business.") for k in keys)


def test_check_config_exits_78_and_prints_every_problem(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    result = cli(path, "check-config")
    assert result.returncode == 78  # EX_CONFIG
    err = result.stderr.decode()
    for key in EXPECTED:
        assert key in err


def test_check_config_accepts_the_example():
    result = cli(ROOT / "config.example.toml", "check-config")
    assert result.returncode == 0, result.stderr.decode()


def test_invalid_toml_is_one_clear_problem(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("[helpdesk\nname=")
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    assert caught.value.problems[0][0] == "(file)"


def _refused(tmp_path: Path, text: str) -> dict[str, str]:
    """The problems of a configuration file, by key path."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    return dict(caught.value.problems)


def _example(replace: dict[str, str]) -> str:
    """The example configuration with some of its text replaced, e.g. a key's whole line."""
    text = (ROOT / "config.example.toml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


HOLIDAYS = 'holidays = ["2026-12-24", "2026-12-31"]'


def test_holidays_of_the_wrong_type_are_a_problem_not_a_crash(tmp_path: Path):
    problems = _refused(tmp_path, _example({HOLIDAYS: "holidays = 5"}))
    assert list(problems) == ["calendars.us-business.holidays"]


def test_every_holiday_must_be_a_date_or_an_iso_date_string(tmp_path: Path):
    line = 'holidays = [2026-12-24, "2026-12-31", 7, "christmas", 2026-12-25T10:00:00]'
    problems = _refused(tmp_path, _example({HOLIDAYS: line}))
    in_calendars = {key for key in problems if key.startswith("calendars.")}
    assert in_calendars == {f"calendars.us-business.holidays[{i}]" for i in (2, 3, 4)}


def test_holidays_may_be_toml_dates(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(_example({HOLIDAYS: "holidays = [2026-12-24, 2026-12-31]"}))
    calendar = configuration.load(path).calendars["us-business"]
    assert date(2026, 12, 24) in calendar.holidays


# -- no value of the wrong type crashes the loader ---------------------------------------------

# Keys the example leaves commented out, so that every section's reading is exercised too.
EXTRA = {
    "helpdesk": {"templates": "templates"},
    "smtp": {"tls_cert": "cert.pem", "tls_key": "key.pem"},
    "outbound": {"host": "mail.example.com", "username": "u", "password_file": "secret"},
    "imap": [
        {
            "name": "inbox",
            "host": "imap.example.com",
            "port": 993,
            "tls": "ssl",
            "username": "support@example.com",
            "password_file": "secret",
            "processed_folder": "done",
            "idle": True,
            "poll_interval": 60,
            "alert_after": "15m",
            "ca_file": "ca.pem",
        }
    ],
    "policy": {"trusted_authserv_id": "mx.example.com"},
}
WRONG = [
    {"x": 1},
    [1],
    [],
    7,
    -1,
    0.5,
    "x",
    "",
    "a\0b",
    "99999999999999999d",
    True,
    date(2026, 1, 1),
    datetime(2026, 1, 1, 9, 30),
]


def _toml(value: Any) -> str:
    """A value as TOML, tables inline: enough to write back what tomllib read."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)  # JSON's numbers and escaped strings are valid TOML
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _dumps(document: dict) -> str:
    return "".join(f"{json.dumps(key)} = {_toml(value)}\n" for key, value in document.items())


def _values(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every value in the document with its path of keys and indexes, containers included."""
    if path:
        yield path, value
    if isinstance(value, dict | list):
        for key, inner in value.items() if isinstance(value, dict) else enumerate(value):
            yield from _values(inner, (*path, key))


def _replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def _example_document() -> dict:
    document = tomllib.loads((ROOT / "config.example.toml").read_text())
    for section, keys in EXTRA.items():
        if isinstance(keys, dict):
            document[section] = {**document.get(section, {}), **keys}
        else:
            document[section] = keys
    return document


def test_the_toml_writer_gives_back_what_it_was_given():
    document = _example_document()
    assert tomllib.loads(_dumps(document)) == document


def test_no_value_of_the_wrong_type_crashes_the_loader(tmp_path: Path):
    document, path, crashes = _example_document(), tmp_path / "config.toml", []
    for where, value in _values(document):
        for new in (w for w in WRONG if not (type(w) is type(value) and w == value)):
            path.write_text(_dumps(_replaced(document, where, new)))
            try:
                configuration.load(path)
            except ConfigError:
                pass
            except Exception as exc:  # any other exception is what this test looks for
                crashes.append(f"{'.'.join(map(str, where))} = {new!r}: {exc!r}")
    assert not crashes, "\n".join(crashes)


def test_what_the_loader_once_crashed_on_is_a_listed_problem(tmp_path: Path):
    problems = _refused(
        tmp_path,
        _example(
            {
                'database = "var/helpdesk.db"': r'database = "var/\u0000.db"',
                'reopen_window = "10d"': 'reopen_window = "99999999999d"',
                'calendars = { P1 = "around-the-clock" }': "calendars = { P1 = [] }",
            }
        ),
    )
    assert set(problems) == {
        "helpdesk.database",
        "policy.reopen_window",
        "plans.standard.calendars.P1",
        "plans.priority.calendars.P1",
    }


# -- templates, TLS files, outbound --------------------------------------------------------------

TEMPLATES = '# templates = "templates"'


def test_a_templates_folder_that_does_not_exist_is_refused(tmp_path: Path):
    problems = _refused(tmp_path, _example({TEMPLATES: 'templates = "nope"'}))
    assert list(problems) == ["helpdesk.templates"]


def test_a_templates_folder_must_hold_every_template_the_daemon_renders(tmp_path: Path):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("acknowledgement.txt", "closed.txt"):
        (mine / name).write_text("Hello\n")
    problems = _refused(tmp_path, _example({TEMPLATES: 'templates = "mine"'}))
    why = problems.pop("helpdesk.templates")
    assert not problems
    assert "_omitted_attachments.txt" in why and "notification.txt" in why
    assert "acknowledgement.txt" not in why


def test_a_templates_folder_with_every_template_is_accepted(tmp_path: Path):
    shutil.copytree(configuration.PACKAGED_TEMPLATES, tmp_path / "mine")
    path = tmp_path / "config.toml"
    path.write_text(_example({TEMPLATES: 'templates = "mine"'}))
    assert configuration.load(path).helpdesk.templates == tmp_path / "mine"


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made with openssl."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", key, "-out", cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _with_tls(cert: Path | str, key: Path | str) -> str:
    return _example(
        {
            '# tls_cert = "/etc/helpdeskd/tls/cert.pem"': f'tls_cert = "{cert}"',
            '# tls_key = "/etc/helpdeskd/tls/key.pem"': f'tls_key = "{key}"',
        }
    )


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def test_tls_files_that_are_missing_are_refused(tmp_path: Path):
    problems = _refused(tmp_path, _with_tls("missing.crt", tmp_path))
    assert set(problems) == {"smtp.tls_cert", "smtp.tls_key"}  # a folder is not a key file


@needs_openssl
def test_a_certificate_and_a_key_that_do_not_belong_together_are_refused(tmp_path: Path):
    (cert, _), (_, other_key) = _certificate(tmp_path, "a"), _certificate(tmp_path, "b")
    problems = _refused(tmp_path, _with_tls(cert, other_key))
    assert list(problems) == ["smtp.tls_cert"]
    assert "do not load" in problems["smtp.tls_cert"]


@needs_openssl
def test_an_encrypted_key_is_refused_without_asking_for_its_passphrase(tmp_path: Path):
    cert, key = _certificate(tmp_path, "a")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "ec", "-in", key, "-aes256", "-passout", "pass:secret", "-out", encrypted],
        check=True,
        capture_output=True,
    )
    problems = _refused(tmp_path, _with_tls(cert, encrypted))
    assert "encrypted" in problems.pop("smtp.tls_cert")
    assert not problems


@needs_openssl
def test_a_certificate_with_its_key_is_accepted(tmp_path: Path):
    cert, key = _certificate(tmp_path, "a")
    path = tmp_path / "config.toml"
    path.write_text(_with_tls(cert, key))
    smtp = configuration.load(path).smtp
    assert (smtp.tls_cert, smtp.tls_key) == (cert, key)


RELAY = 'transport = "maildir"\npath = "var/outbox-maildir"\n# host = "127.0.0.1"'


def _relay(*lines: str) -> str:
    return _example({RELAY: "\n".join(('transport = "smtp"', *lines))})


def test_a_relay_password_file_must_be_readable(tmp_path: Path):
    problems = _refused(tmp_path, _relay('username = "helpdeskd"', 'password_file = "missing"'))
    assert list(problems) == ["outbound.password_file"]


def test_a_relay_username_and_password_file_go_together(tmp_path: Path):
    (tmp_path / "secret").write_text("s3cret\n")
    assert list(_refused(tmp_path, _relay('username = "helpdeskd"'))) == ["outbound.password_file"]
    assert list(_refused(tmp_path, _relay('password_file = "secret"'))) == ["outbound.username"]
    path = tmp_path / "config.toml"
    path.write_text(_relay('username = "helpdeskd"', 'password_file = "secret"'))
    assert configuration.load(path).outbound.password_file == tmp_path / "secret"


def test_a_relay_needs_a_host(tmp_path: Path):
    assert list(_refused(tmp_path, _relay('host = " "'))) == ["outbound.host"]


def test_the_keys_of_the_other_transport_are_left_alone(tmp_path: Path):
    (tmp_path / "secret").write_text("s3cret\n")
    relay = _relay('host = "mail.example.com"', 'path = "var/unused"')
    # unused by a Maildir, so not checked: a half-made relay set-up may wait there
    maildir = _example({'# password_file = "/etc/helpdeskd/smtp-password"': 'password_file = "no"'})
    for text in (relay, maildir):
        path = tmp_path / "config.toml"
        path.write_text(text)
        configuration.load(path)


def test_a_maildir_has_a_path_by_default(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(_example({'path = "var/outbox-maildir"': ""}))
    assert configuration.load(path).outbound.path == tmp_path / "var" / "outbox-maildir"


# -- IMAP mailboxes, policy ----------------------------------------------------------------------

MAILBOX = """
[[imap]]
name = "inbox"
host = "imap.example.com"
username = "support@example.com"
password_file = "secret"
ca_file = "ca.pem"
"""


def test_a_mailbox_may_name_a_ca_file(tmp_path: Path):
    (tmp_path / "secret").write_text("s3cret\n")
    (tmp_path / "ca.pem").write_text("")
    path = tmp_path / "config.toml"
    path.write_text(_example({}) + MAILBOX)
    assert configuration.load(path).imap[0].ca_file == tmp_path / "ca.pem"


def test_the_trusted_authserv_id_is_kept_as_written(tmp_path: Path):
    # the comparison with Authentication-Results, case-insensitive, belongs to the classifier
    authserv = '# trusted_authserv_id = "mx.example.com"'
    path = tmp_path / "config.toml"
    path.write_text(_example({authserv: 'trusted_authserv_id = "MX.Example.COM"'}))
    assert configuration.load(path).policy.trusted_authserv_id == "MX.Example.COM"


def test_check_config_lists_the_reviewed_problems_together(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(
        _example(
            {
                TEMPLATES: 'templates = "nope"',
                '# tls_cert = "/etc/helpdeskd/tls/cert.pem"': 'tls_cert = "missing.crt"',
                '# tls_key = "/etc/helpdeskd/tls/key.pem"': 'tls_key = "missing.key"',
                RELAY: 'transport = "smtp"\nusername = "u"\npassword_file = "missing"',
                HOLIDAYS: "holidays = 5",
            }
        )
    )
    result = cli(path, "check-config")
    assert result.returncode == 78  # EX_CONFIG
    err = result.stderr.decode()
    for key in (
        "helpdesk.templates",
        "smtp.tls_cert",
        "smtp.tls_key",
        "outbound.password_file",
        "calendars.us-business.holidays",
    ):
        assert f"{key}:" in err


def test_the_bounds_on_work_and_mail_have_defaults(tmp_path: Path):
    policy = configuration.load(write_config(tmp_path)).policy
    assert policy.processing_budget == 5.0
    assert (policy.mails_per_hour_per_recipient, policy.loop_messages, policy.loop_repeats) == (
        30,
        10,
        3,
    )
    assert str(policy.loop_window) == "1h"


def test_the_bounds_on_work_and_mail_are_read_and_checked(tmp_path: Path):
    line = 'processing_budget = "5s"'
    read = tmp_path / "read.toml"
    read.write_text(
        _example({line: 'processing_budget = "2m"', "loop_repeats = 3": "loop_repeats = 4"})
    )
    policy = configuration.load(read).policy
    assert (policy.processing_budget, policy.loop_repeats) == (120.0, 4)
    problems = _refused(
        tmp_path,
        _example(
            {
                line: 'processing_budget = "0s"',
                "loop_messages = 10": "loop_messages = 0",
                'loop_window = "1h"': 'loop_window = "soon"',
                "mails_per_hour_per_recipient = 30": 'mails_per_hour_per_recipient = "many"',
            }
        ),
    )
    assert "1s" in problems["policy.processing_budget"]
    assert "policy.loop_messages" in problems and "policy.loop_window" in problems
    assert "policy.mails_per_hour_per_recipient" in problems


def test_listener_limits_have_defaults_and_must_be_positive(tmp_path: Path):
    smtp = configuration.load(ROOT / "config.example.toml").smtp
    assert (smtp.max_connections, smtp.max_connections_per_client) == (200, 20)
    assert smtp.greeting_timeout < smtp.command_timeout < smtp.session_timeout
    path = tmp_path / "limits.toml"
    zero, minutes = "max_connections = 0\n", 'session_timeout = "15m"'
    path.write_text(_example({"max_connections = 200\n": zero, "session_timeout = 900": minutes}))
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    assert {k for k, _ in caught.value.problems} == {"smtp.max_connections", "smtp.session_timeout"}


def test_relay_connections_are_a_small_positive_number(tmp_path: Path):
    assert configuration.load(ROOT / "config.example.toml").outbound.connections == 1
    path = tmp_path / "connections.toml"
    for bad in ("0", "17", '"two"'):
        path.write_text(_example({"connections = 1 ": f"connections = {bad} "}))
        with pytest.raises(ConfigError) as caught:
            configuration.load(path)
        assert [k for k, _ in caught.value.problems] == ["outbound.connections"], bad


def test_alert_routes_are_checked(tmp_path: Path):
    path = write_config(
        tmp_path,
        extra='\n[alerts]\nmaildir = "alerts"\ncommand = ["no-such-program-here"]\n'
        "relay = { port = 2525, tls = true }\n",
    )
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    keys = {k for k, _ in caught.value.problems}
    assert keys == {"alerts.command", "alerts.relay.host", "alerts.relay.tls"}
    good = write_config(tmp_path, extra='\n[alerts]\ncommand = ["cat"]\nrelay = { host = "mx2" }\n')
    routes = configuration.load(good).alerts
    assert (routes.command, routes.relay.host, routes.relay.port) == (("cat",), "mx2", 25)
    assert not configuration.load(write_config(tmp_path)).alerts  # none: only the outbound


# -- sender authentication -------------------------------------------------------------------


def _auth_config(tmp_path: Path, old: str, new: str, extra: str = ""):
    path = write_config(tmp_path, extra=extra)
    path.write_text(path.read_text().replace(old, new))
    return path


def test_the_listener_is_the_first_hop_unless_told_otherwise(tmp_path: Path):
    example = configuration.load(ROOT / "config.example.toml")
    assert example.smtp.first_hop and example.first_hop("smtp")
    assert example.authentication.authserv_id == "example.com"  # the helpdesk's domain
    assert example.authentication.dns_servers == () and example.authentication.dns_timeout == 5
    assert not example.first_hop("ingest") and not example.first_hop("imap:support-inbox")
    # a new config that says nothing: customers are known by address, wherever mail comes in
    path = _auth_config(tmp_path, "first_hop = false\n", "")
    path.write_text(path.read_text().replace("trust_unauthenticated_engineers = true", ""))
    config = configuration.load(path)
    assert config.smtp.first_hop and not config.policy.require_dmarc_pass
    assert config.authentication.authserv_id == "helpdesk.test"
    assert not config.policy.trust_unauthenticated_engineers
    behind = configuration.load(write_config(tmp_path))
    assert not behind.smtp.first_hop and not behind.policy.require_dmarc_pass


def test_first_hop_per_mailbox_and_for_ingest(tmp_path: Path):
    (tmp_path / "secret").write_text("x")
    extra = (
        '\n[authentication]\nauthserv_id = "hd.helpdesk.test"\ningest_first_hop = true\n'
        '\n[[imap]]\nname = "bare"\nhost = "127.0.0.1"\nusername = "u"\n'
        'password_file = "secret"\nfirst_hop = true\n'
        '\n[[imap]]\nname = "gmail"\nhost = "127.0.0.1"\nusername = "u"\n'
        'password_file = "secret"\n'
    )
    path = _auth_config(
        tmp_path,
        "trust_unauthenticated_engineers = true",
        'trusted_authserv_id = "mx.google.com"',
        extra,
    )
    config = configuration.load(path)
    assert config.first_hop("imap:bare") and config.first_hop("ingest")
    assert not config.first_hop("imap:gmail") and not config.first_hop("smtp")
    assert config.authentication.authserv_id == "hd.helpdesk.test"


def test_bad_authentication_settings_are_listed_by_key(tmp_path: Path):
    extra = (
        '\n[authentication]\nauthserv_id = "bad id;"\ndns_servers = ["127.0.0.1", "resolver"]\n'
        'dns_port = 70000\ndns_timeout = 0\ningest_first_hop = "yes"\nsurprise = 1\n'
    )
    path = _auth_config(tmp_path, "first_hop = false", 'first_hop = "no"', extra)
    problems = dict(_problems(path))
    assert set(problems) >= {
        "authentication.authserv_id",
        "authentication.dns_servers[1]",
        "authentication.dns_port",
        "authentication.dns_timeout",
        "authentication.ingest_first_hop",
        "authentication.surprise",
        "smtp.first_hop",
    }


def _problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    return caught.value.problems


def test_behind_an_mta_require_dmarc_pass_still_needs_its_authserv_id(tmp_path: Path):
    path = _auth_config(tmp_path, "reopen_window", "require_dmarc_pass = true\nreopen_window")
    assert "policy.trusted_authserv_id" in dict(_problems(path))


def test_check_config_warns_about_trusting_engineers_blindly(tmp_path: Path):
    result = cli(ROOT / "config.example.toml", "check-config")
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "warning: policy.trust_unauthenticated_engineers" in err
    strict = _auth_config(tmp_path, "trust_unauthenticated_engineers = true", "")
    quiet = cli(strict, "check-config")
    assert quiet.returncode == 0 and "trust_unauthenticated_engineers" not in quiet.stderr.decode()
    # behind an MTA with no authserv-id trusted, nobody can ever be proven
    assert "warning: policy.trusted_authserv_id" in quiet.stderr.decode()


def test_check_config_warns_about_lmtp_at_the_first_hop(tmp_path: Path):
    """LMTP is spoken by an MTA in front: its mail is not first-hop mail, and helpdeskd's own
    SPF check would judge the MTA's address rather than the sender's."""
    lmtp = _auth_config(tmp_path, "first_hop = false", "lmtp = true\nfirst_hop = true")
    err = cli(lmtp, "check-config").stderr.decode()
    assert "warning: smtp.first_hop: lmtp = true" in err
    behind = _auth_config(tmp_path, "first_hop = false", "lmtp = true\nfirst_hop = false")
    assert "warning: smtp.first_hop" not in cli(behind, "check-config").stderr.decode()


def test_the_production_configuration_reads_its_mtas_results(tmp_path: Path):
    """Postfix over LMTP: the MTA is the first hop, and its authserv-id is the one trusted."""
    config = configuration.load(ROOT / "config.production.toml")
    assert config.smtp.lmtp and not config.smtp.first_hop
    assert config.policy.trusted_authserv_id and not config.policy.require_dmarc_pass
    keys = [key for key, _ in configuration.warnings(config)]
    assert "smtp.first_hop" not in keys and "policy.trusted_authserv_id" not in keys


def test_the_customer_service_keys_have_defaults(tmp_path: Path):
    config = configuration.load(write_config(tmp_path))
    policy = config.policy
    assert (policy.unauthorized, policy.unauthorized_open_keywords) == ("forward", ())
    assert policy.escalation_request_interval.describe() == "1 working day"
    assert (policy.survey_after_auto_close, policy.fair_use_multiple) == (False, 3.0)
    assert (policy.announce_to, policy.monthly_report) == ("contacts", True)
    assert config.helpdesk.allowlist is None
    assert (config.plans["gold"].survey, config.plans["gold"].fair_use_cap) == (False, None)
    assert config.customers[0].stand_in_contacts == ()
    assert config.escalation[0].name is None


def test_the_customer_service_keys_are_checked(tmp_path: Path):
    problems = _refused(
        tmp_path,
        _example(
            {
                'stand_in_contacts = ["it-deputy@acme.example"]': 'stand_in_contacts = ["deputy"]',
                'unauthorized = "forward"': 'unauthorized = "shrug"',
                "fair_use_multiple = 3.0": "fair_use_multiple = 0.5",
                'escalation_request_interval = "1d"': 'escalation_request_interval = "soon"',
                'name = "Team lead"': "name = 5",
                "survey = true": 'survey = "yes"',
                "# fair_use_cap = 200": "fair_use_cap = -1",
                'announce_to = "contacts"': 'announce_to = "everyone"',
            }
        ),
    )
    assert set(problems) == {
        "customers[0].stand_in_contacts[0]",
        "policy.unauthorized",
        "policy.fair_use_multiple",
        "policy.escalation_request_interval",
        "escalation.levels[0].name",
        "plans.enterprise.survey",
        "plans.standard.fair_use_cap",
        "policy.announce_to",
    }


def test_the_allowlist_file_is_merged_into_the_customers(tmp_path: Path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "allowlist.toml").write_text(
        '[customers."Globex"]\n'
        'addresses = ["jane@globex.example"]\n'
        'removed = ["helpdesk@globex.example"]\n'
        'domains = ["globex.de"]\n'
    )
    path = tmp_path / "config.toml"
    path.write_text(_example({}))
    globex = configuration.load(path).customers[1]
    assert globex.addresses == ("cio@globex.example", "jane@globex.example")
    assert globex.domains == ("globex.example", "globex.de")


def test_a_bad_allowlist_file_is_listed_by_key_path(tmp_path: Path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "allowlist.toml").write_text(
        '[customers."Nobody"]\naddresses = ["x@y.example"]\n'
        '[customers."Globex"]\naddresses = ["not an address"]\ncolour = 1\n'
    )
    problems = _refused(tmp_path, _example({}))
    assert set(problems) == {
        "allowlist.customers.Nobody",
        "allowlist.customers.Globex.addresses[0]",
        "allowlist.customers.Globex.colour",
    }
    (tmp_path / "var" / "allowlist.toml").write_text("[customers\n")
    assert set(_refused(tmp_path, _example({}))) == {"helpdesk.allowlist"}


# -- named clocks, tiers and a plan's own ladder (issue 21) ---------------------------------


def test_the_ipcelerate_plan_loads_as_written(tmp_path: Path):
    from tests.ipcelerate import IPCELERATE

    config = configuration.load(write_config(tmp_path, extra=IPCELERATE))
    plan = config.plans["ipcelerate"]
    assert [r.name for r in plan.rules] == ["level_one", "level_two", "action_plan", "workaround"]
    level_two, workaround = plan.rule("level_two"), plan.rule("workaround")
    assert (level_two.starts, level_two.stops, level_two.calendar) == (
        "tier 2",
        "reply",
        "around-the-clock",
    )
    assert str(workaround.targets["P1"]) == "10d"
    assert workaround.targets["P3"] == "next release"
    assert config.tiers[2].calendar == "tier-two"
    assert [lv.notify for lv in plan.escalation] == [("executive@helpdesk.test",)]
    assert config.calendars["around-the-clock"].always_open
    # the shorthand plans keep their two clocks
    assert [r.name for r in config.plans["gold"].rules] == ["first_response", "resolution"]


CLOCK = """
[plans.gold.clocks.patch]
starts = "{starts}"
stops = "{stops}"
targets = {targets}
"""


def test_check_config_refuses_unknown_events_bad_targets_and_missing_priorities(tmp_path: Path):
    text = CLOCK.format(
        starts="tier 9", stops="#fix", targets='{ P1 = 5, P2 = "", P3 = "4x", P5 = "1d" }'
    )
    problems = _refused(tmp_path, write_config(tmp_path, extra=text).read_text())
    assert "unknown event 'tier 9'" in problems["plans.gold.clocks.patch.starts"]
    assert "unknown event '#fix'" in problems["plans.gold.clocks.patch.stops"]
    assert "not 5" in problems["plans.gold.clocks.patch.targets.P1"]
    assert "not ''" in problems["plans.gold.clocks.patch.targets.P2"]
    assert "unknown unit" in problems["plans.gold.clocks.patch.targets.P3"]
    assert "is required" in problems["plans.gold.clocks.patch.targets.P4"]
    assert "unknown priority" in problems["plans.gold.clocks.patch.targets.P5"]


def test_a_clock_given_twice_and_an_unknown_tier_are_refused(tmp_path: Path):
    extra = CLOCK.format(
        starts="opened", stops="resolved", targets='{ P1 = "1d", P2 = "1d", P3 = "1d", P4 = "1d" }'
    ).replace("clocks.patch", "clocks.resolution")
    extra += '\n[tiers.7]\ncalendar = "business"\n[tiers.2]\ncalendar = "nowhere"\n'
    problems = _refused(tmp_path, write_config(tmp_path, extra=extra).read_text())
    assert "given twice" in problems["plans.gold.clocks.resolution"]
    assert "unknown tier" in problems["tiers.7"]
    assert "unknown calendar" in problems["tiers.2.calendar"]


def test_the_examples_commented_ipcelerate_plan_loads_once_uncommented(tmp_path: Path):
    text = (ROOT / "config.example.toml").read_text()
    start = text.index("# [calendars.central]")
    end = text.index("\n\n", text.index("# [plans.ipcelerate.escalation]"))
    block = "\n".join(
        line.removeprefix("#").removeprefix(" ") for line in text[start:end].split("\n")
    )
    path = tmp_path / "example.toml"
    path.write_text(text[:start] + block + text[end:])
    plan = configuration.load(path).plans["ipcelerate"]
    assert [r.name for r in plan.rules] == ["level_one", "level_two", "action_plan", "workaround"]
    assert plan.escalation[0].name == "Executive"
