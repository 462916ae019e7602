"""Engineers' '#' commands at the top of a reply."""

from __future__ import annotations

import pytest

from helpdeskd.core.commands import (
    COMMANDS,
    Change,
    CommandError,
    CommandResult,
    accepted,
    customer_asks_close,
    customer_asks_escalation,
    describe_commands,
    parse_commands,
)

ENGINEERS = ("alice@example.com", "Bob@Example.com")
SENDER = "Alice@Example.com"


def parse(text: str) -> CommandResult:
    return parse_commands(text, sender=SENDER, engineers=ENGINEERS)


@pytest.mark.parametrize(
    ("line", "change"),
    [
        ("#priority P1", Change("priority", "P1")),
        ("#priority P4", Change("priority", "P4")),
        ("#assign bob@example.com", Change("assign", "bob@example.com")),
        ("#assign <bob@example.com>", Change("assign", "bob@example.com")),
        ("#assign me", Change("assign", "alice@example.com")),
        ("#waiting", Change("status", "waiting")),
        ("#resolve", Change("status", "resolved")),
        ("#close", Change("status", "closed")),
        ("#reopen", Change("status", "open")),
        ("#escalate", Change("escalate")),
        ("#note", Change("note")),
    ],
)
def test_each_command(line: str, change: Change) -> None:
    assert parse(f"{line}\nHello,\n") == CommandResult((change,), (), "Hello,\n")


def test_several_commands_in_one_mail_with_blank_lines_between() -> None:
    result = parse("\n\n#priority P2\n\n#assign bob@example.com\n#waiting\n\nCould you?\n")
    assert result.changes == (
        Change("priority", "P2"),
        Change("assign", "bob@example.com"),
        Change("status", "waiting"),
    )
    assert result.errors == ()
    assert result.body == "Could you?\n"


def test_names_and_arguments_are_case_insensitive() -> None:
    result = parse("#Priority p1\n#ASSIGN ME\n#Assign BOB@EXAMPLE.COM\n#Escalate\n")
    assert result.errors[0].line == "#Assign BOB@EXAMPLE.COM"  # a second, different owner
    result = parse("#Priority p1\n#ASSIGN Bob@Example.COM\n  #Escalate  \ntext")
    assert result.changes == (
        Change("priority", "P1"),
        Change("assign", "bob@example.com"),
        Change("escalate"),
    )


def test_a_repeated_command_counts_once() -> None:
    assert parse("#escalate\n#escalate\n#assign me\n#assign alice@example.com\n").changes == (
        Change("escalate"),
        Change("assign", "alice@example.com"),
    )


def test_command_lines_and_blank_lines_after_them_leave_the_body() -> None:
    result = parse("#resolve\r\n\r\n\r\nThe fix is deployed.\r\n\r\nRegards\r\n")
    assert result.body == "The fix is deployed.\r\n\r\nRegards\r\n"


def test_a_mail_without_commands_keeps_its_body_unchanged() -> None:
    text = "\n\nHello,\n#priority P1 is not a command here\n"
    assert parse(text) == CommandResult((), (), text)


def test_commands_only_at_the_top() -> None:
    result = parse("#priority P3\nThanks.\n#close\n#escalate\n")
    assert result.changes == (Change("priority", "P3"),)
    assert result.body == "Thanks.\n#close\n#escalate\n"


def test_only_commands_leave_an_empty_body() -> None:
    assert parse("#note\n#escalate\n\n") == CommandResult(
        (Change("note"), Change("escalate")), (), ""
    )


def error_of(text: str) -> CommandError:
    result = parse(text)
    assert result.changes == ()
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def test_unknown_command() -> None:
    error = error_of("#priority P1\n#prioirty P2\nHello")
    assert (error.line, error.line_number) == ("#prioirty P2", 2)
    assert error.reason == f'unknown command "#prioirty"; {accepted()}'
    assert "accepted: #priority P1..P4, #assign ADDRESS|me, #waiting, #resolve" in error.reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#priority P5", '"P5" is not a priority; accepted: #priority P1..P4'),
        ("#priority", "#priority needs an argument; accepted: #priority P1..P4"),
        ("#priority P1 P2", '"P1 P2" is not a priority; accepted: #priority P1..P4'),
        ("#waiting now", '#waiting takes no argument, got "now"; accepted: #waiting'),
        ("#close please", '#close takes no argument, got "please"; accepted: #close'),
        ("#assign", "#assign needs an argument; accepted: #assign ADDRESS|me"),
        ("#assign bob", '"bob" is not an email address; accepted: #assign ADDRESS|me'),
        ("#assign bob@", '"bob@" is not an email address; accepted: #assign ADDRESS|me'),
        ("#assign a b@example.com", '"a b@example.com" is not an email address; accepted: '
         "#assign ADDRESS|me"),
    ],
)  # fmt: skip
def test_bad_arguments(line: str, reason: str) -> None:
    error = error_of(f"\n{line}\nHello")
    assert error == CommandError(line, 2, reason)


def test_assign_to_someone_not_an_engineer() -> None:
    error = error_of("#assign carol@example.com")
    assert error.line_number == 1
    assert error.reason.startswith('"carol@example.com" is not an engineer')
    assert "alice@example.com, bob@example.com" in error.reason


def test_assign_me_from_a_sender_not_an_engineer() -> None:
    result = parse_commands("#assign me", sender="carol@example.com", engineers=ENGINEERS)
    assert result.errors[0].reason.startswith('"carol@example.com" is not an engineer')


@pytest.mark.parametrize("line", ["#1 thing", "# priority P1", "###", "#", "#priority:P1x"])
def test_hash_lines_that_are_not_commands_are_errors_not_text(line: str) -> None:
    error = error_of(f"#priority P1\n{line}\nHello")
    assert (error.line, error.line_number) == (line, 2)
    assert error.reason.endswith(accepted())


def test_conflicting_status_commands() -> None:
    error = error_of("#resolve\n#reopen\nBack to work.")
    assert error == CommandError(
        "#reopen", 2, '"#reopen" conflicts with "#resolve" on line 1; give one status per mail'
    )


def test_conflicting_priorities() -> None:
    assert error_of("#priority P1\n#priority p2").line_number == 2


def test_every_error_is_reported_and_nothing_applies() -> None:
    result = parse("#priority P9\n#escalate\n#waiting x\n#close\n#reopen\nHi")
    assert [e.line_number for e in result.errors] == [1, 3, 5]
    assert result.changes == ()
    assert result.body == "Hi"


def test_describe_commands_lists_every_command_once() -> None:
    lines = describe_commands().splitlines()
    assert len(lines) == len(COMMANDS)
    for line, command in zip(lines, COMMANDS, strict=True):
        assert line.startswith(f"#{command.name}")
        assert line.endswith(command.description)
        assert f"#{command.name}" in accepted()


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("#close", True),
        ("Thanks, all good.\n\n  #CLOSE  \r\nBye", True),
        ("Thanks\n#close please\n", False),
        ("Please do not #close yet", False),
        ("", False),
    ],
)
def test_customer_asks_close(text: str, asks: bool) -> None:
    assert customer_asks_close(text) is asks


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b", "\u200b\u200d", "\u2060"])
def test_invisible_characters_do_not_hide_a_command(invisible: str) -> None:
    result = parse_commands(
        f"{invisible}#note\ninternal only",
        sender="alice@example.com",
        engineers=["alice@example.com"],
    )
    assert [c.kind for c in result.changes] == ["note"]
    assert result.body == "internal only"


# -- #allow, and a customer's #escalate ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("#allow add Jane@Acme.com", "add jane@acme.com"),
        ("#allow add <jane@acme.com>", "add jane@acme.com"),
        ("#allow remove jane@acme.com", "remove jane@acme.com"),
        ("#allow remove acme.de", "remove acme.de"),
        ("#allow domain ACME.de", "domain acme.de"),
    ],
)
def test_allow(line: str, value: str) -> None:
    assert parse(f"{line}\nDone.").changes == (Change("allow", value),)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("#allow", "is not an allow-list change"),
        ("#allow add", "is not an allow-list change"),
        ("#allow grant jane@acme.com", "is not an allow-list change"),
        ("#allow add acme.com", '"acme.com" is not an email address'),
        ("#allow domain jane@acme.com", '"jane@acme.com" is not an email domain'),
        ("#allow remove jane", '"jane" is neither an email address nor a domain'),
        ("#allow add a@b.com c@d.com", "is not an allow-list change"),
    ],
)
def test_bad_allow_changes(line: str, why: str) -> None:
    error = error_of(line)
    assert why in error.reason and "accepted: #allow add ADDRESS|remove" in error.reason


def test_several_allow_changes_go_together() -> None:
    found = parse("#allow add a@acme.com\n#allow add b@acme.com\n#allow domain acme.de\n")
    assert [c.value for c in found.changes] == [
        "add a@acme.com",
        "add b@acme.com",
        "domain acme.de",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("#escalate", ""),
        ("Hello\n  #Escalate  nobody answers  \nBye", "nobody answers"),
        ("\u200b#escalate", ""),
        ("Please #escalate this", None),
        ("#escalated", None),
        ("no", None),
    ],
)
def test_customer_asks_escalation(text: str, reason: str | None) -> None:
    assert customer_asks_escalation(text) == reason
