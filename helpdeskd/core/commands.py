"""Engineers' '#' command lines at the top of a reply -> changes to the case, or errors.

The command block is the top of the body: leading blank lines, then lines starting with '#',
with blank lines allowed between them. It ends at the first line that is neither blank nor
starts with '#'; from there on everything is text, '#' lines included.

So that a typo never reaches a customer, every '#' line inside the block must be a command:
"#prioirty P1" is an unknown command, and "# priority P1", "#1 thing" or a line of only '#'
characters, whose first word after '#' is not a letter-word, are errors too rather than text
that would be forwarded. A reply that has to begin with such a line cannot be sent this way:
the error says so, and the engineer can put a line of text above it.

Names and arguments are case-insensitive ("#Priority p1", "#ASSIGN Me"). A command given
twice with the same effect counts once; two commands setting the same thing differently
(#resolve and #reopen, #priority P1 and #priority P2) are an error. When there is any error
the result holds no changes at all: the mail applies nothing and is not forwarded (SPEC §5).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Change:
    kind: str  # "priority", "assign", "status", "escalate", "note", "allow", "due", "tier",
    # "plan", "workaround", "cc", "merge", "unmerge", "split", "category", "remind" or "time"
    value: str | None = None  # "P1".."P4", an address, a status, "add ADDRESS", "CLOCK WHEN",
    # "2", the text of a plan or workaround, "ADDRESS WHEN", minutes; None for others


@dataclass(frozen=True)
class CommandError:
    line: str  # as written, without its line ending
    line_number: int  # 1-based, counted in the whole body
    reason: str  # what is wrong, and what would have been accepted


@dataclass(frozen=True)
class CommandResult:
    changes: tuple[Change, ...]  # empty whenever there are errors
    errors: tuple[CommandError, ...]
    body: str  # the text without the command block


@dataclass(frozen=True)
class Command:
    name: str  # as typed after '#', in lower case
    usage: str  # the argument as shown to engineers; "" when the command takes none
    description: str
    kind: str
    value: str | None = None  # the change's value, for commands without argument


COMMANDS: tuple[Command, ...] = (
    Command("priority", "P1..P4", "set the priority; SLA deadlines are recomputed", "priority"),
    Command("assign", "ADDRESS|me", "make that engineer, or yourself, the owner", "assign"),
    Command("waiting", "", "wait on the customer; starts the closing-warning clock", "status",
            "waiting"),
    Command("resolve", "", "mark the case resolved", "status", "resolved"),
    Command("close", "", "close the case", "status", "closed"),
    Command("reopen", "", "open the case again", "status", "open"),
    Command("escalate", "", "raise the escalation level by one and notify that level",
            "escalate"),
    Command("note", "", "the whole message is an internal note, never sent to the customer",
            "note"),
    Command("allow", "add ADDRESS|remove ADDRESS|domain DOMAIN",
            "on a case of the customer's primary contact: change who may open cases", "allow"),
    Command("due", "[CLOCK] DATE|DATE HH:MM|5d",
            "agree a deadline with the customer (resolution unless a clock is named); they are "
            "told the date", "due"),
    Command("tier", "1..3", "hand the case to that tier; its engineers are told", "tier"),
    Command("plan", "TEXT", "record the action plan; the customer gets it unless #note is given",
            "plan"),
    Command("workaround", "TEXT", "record the patch or workaround given", "workaround"),
    Command("cc", "add ADDRESS|remove ADDRESS",
            "change the case's participants, who get your replies in Cc", "cc"),
    Command("merge", "REFERENCE",
            "fold this case into that one; the customers are told which reference to use",
            "merge"),
    Command("unmerge", "", "undo the last merge into this case (within 30 days)", "unmerge"),
    Command("split", "",
            "make the customer's message you answer a case of its own, with its acknowledgement",
            "split"),
    Command("category", "NAME", "file the case under a category; one not covered stops its "
            "clocks and tells the customer", "category"),
    Command("remind", "[ADDRESS] DATE HH:MM|2d",
            "mail yourself (or that engineer) the case's summary then, once", "remind"),
    Command("time", "45m|1h30m", "add the time you spent on the case", "time"),
    Command("ack", "", "answer a page: you have the case (any reply answers it too)", "ack"),
)  # fmt: skip

PRIORITIES = ("P1", "P2", "P3", "P4")

_BY_NAME = {command.name: command for command in COMMANDS}
_COMMAND_LINE = re.compile(r"#(?P<name>\S*)\s*(?P<argument>.*)")
_LETTER_WORD = re.compile(r"[^\W\d_]+")
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+")


def syntax(command: Command) -> str:
    """How an engineer writes the command: "#priority P1..P4"."""
    return f"#{command.name} {command.usage}".rstrip()


def accepted() -> str:
    """Every command's syntax on one line, as error messages end."""
    return "accepted: " + ", ".join(syntax(command) for command in COMMANDS)


@functools.cache  # the table is fixed, and every mail's template context holds the text
def describe_commands() -> str:
    """One line per command with what it does, for the README and the command-error mail."""
    width = max(len(syntax(command)) for command in COMMANDS)
    return "\n".join(f"{syntax(command):<{width}}  {command.description}" for command in COMMANDS)


# Mail clients put invisible characters before a line (a byte-order mark, zero-width spaces);
# left there, they would hide a command, and a `#note` would reach the customer.
INVISIBLE_LEAD = re.compile(r"^[\ufeff\u200b-\u200d\u2060\u00ad]+", re.M)


def parse_commands(
    text: str, *, sender: str, engineers: Collection[str], ours: Collection[str] = ()
) -> CommandResult:
    """The changes asked for by the '#' lines at the top of an engineer's reply. `ours`: our
    own people besides the engineers (Config.staff), whom `#cc add` refuses too."""
    text = INVISIBLE_LEAD.sub("", text)
    lines = text.splitlines(keepends=True)
    block_end = _block_end(lines)
    engineers = frozenset(e.strip().lower() for e in engineers)
    staff = engineers | {a.strip().lower() for a in ours}
    context = _Context(sender.strip().lower(), engineers, staff)
    applied: list[_Applied] = []
    errors: list[CommandError] = []
    for number, line in enumerate(lines[:block_end], start=1):
        outcome = _parse_line(line.strip(), context) if line.strip() else None
        if isinstance(outcome, Change):
            applied.append(_Applied(line.strip(), number, outcome))
        elif outcome:
            errors.append(CommandError(line.strip(), number, outcome))
    errors += _conflicts(applied)
    changes = () if errors else tuple(dict.fromkeys(a.change for a in applied))
    body = "".join(lines[block_end:]) if block_end else text
    return CommandResult(changes=changes, errors=tuple(errors), body=body)


def command_line(text: str, name: str) -> tuple[str, int]:
    """The first line giving `#name`, and its 1-based number, for an error found later."""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*#{name}\b", line, re.I):
            return line.strip(), number
    return f"#{name}", 1


def usage(name: str) -> str:
    """ "accepted: #due ...": how one command is written, as its errors end."""
    return f"accepted: {syntax(_BY_NAME[name])}"


def customer_asks_close(text: str) -> bool:
    """A customer's reply holds a line "#close" on its own (SPEC §4)."""
    return any(line.strip().lower() == "#close" for line in text.splitlines())


_ESCALATE_LINE = re.compile(r"#escalate(?:\s+(?P<reason>.*))?", re.I)


def customer_asks_escalation(text: str) -> str | None:
    """A customer's line "#escalate", or "#escalate" and a reason: the reason ("" without one),
    None when there is no such line."""
    for line in INVISIBLE_LEAD.sub("", text).splitlines():
        match = _ESCALATE_LINE.fullmatch(line.strip())
        if match:
            return (match["reason"] or "").strip()
    return None


def without_escalation_line(text: str) -> str:
    return "\n".join(
        line
        for line in INVISIBLE_LEAD.sub("", text).splitlines()
        if not _ESCALATE_LINE.fullmatch(line.strip())
    ).strip()


@dataclass(frozen=True)
class _Context:
    sender: str
    engineers: frozenset[str]
    ours: frozenset[str]  # engineers, escalation contacts, service managers, admins


@dataclass(frozen=True)
class _Applied:
    line: str
    line_number: int
    change: Change


def _block_end(lines: list[str]) -> int:
    """Index of the first line after the command block; 0 when there is no command."""
    end = 0
    for index, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        end = index + 1 if line.strip() else end
    return _past_blank_lines(lines, end) if end else 0


def _past_blank_lines(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def _parse_line(line: str, context: _Context) -> Change | str:
    """The change a command line asks for, or the reason it cannot be applied."""
    match = _COMMAND_LINE.fullmatch(line)
    name, argument = (match["name"], match["argument"]) if match else ("", "")
    if not _LETTER_WORD.fullmatch(name):
        return (
            f'"{line}" is not a command, and a reply cannot begin with a line starting '
            f'with "#" that is not one; {accepted()}'
        )
    command = _BY_NAME.get(name.lower())
    if command is None:
        return f'unknown command "#{name}"; {accepted()}'
    return _ARGUMENT_READERS[command.kind](command, argument, context)


def _no_argument(command: Command, argument: str, context: _Context) -> Change | str:
    if argument:
        return f'#{command.name} takes no argument, got "{argument}"; accepted: {syntax(command)}'
    return Change(command.kind, command.value)


def _priority(command: Command, argument: str, context: _Context) -> Change | str:
    if not argument:
        return f"#{command.name} needs an argument; accepted: {syntax(command)}"
    if argument.upper() not in PRIORITIES:
        return f'"{argument}" is not a priority; accepted: {syntax(command)}'
    return Change(command.kind, argument.upper())


def _assignee(command: Command, argument: str, context: _Context) -> Change | str:
    if not argument:
        return f"#{command.name} needs an argument; accepted: {syntax(command)}"
    address = context.sender if argument.lower() == "me" else argument.strip("<>").lower()
    if not _ADDRESS.fullmatch(address):
        return f'"{argument}" is not an email address; accepted: {syntax(command)}'
    if address not in context.engineers:
        known = ", ".join(sorted(context.engineers)) or "none configured"
        return f'"{address}" is not an engineer (engineers: {known}); accepted: {syntax(command)}'
    return Change(command.kind, address)


_ALLOW_ACTIONS = {"add": "address", "remove": "address or domain", "domain": "domain"}
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}")


def _allow(command: Command, argument: str, context: _Context) -> Change | str:
    """ "add jane@acme.com", "remove jane@acme.com" or "remove acme.de", "domain acme.de"."""
    action, _, target = argument.partition(" ")
    action, target = action.lower(), target.strip().strip("<>").lower()
    wanted = _ALLOW_ACTIONS.get(action)
    if wanted is None or not target or " " in target:
        return f'"{argument}" is not an allow-list change; accepted: {syntax(command)}'
    is_address = bool(_ADDRESS.fullmatch(target))
    is_domain = not is_address and bool(_DOMAIN.fullmatch(target))
    if (wanted == "address" and not is_address) or (wanted == "domain" and not is_domain):
        return f'"{target}" is not an email {wanted}; accepted: {syntax(command)}'
    if not (is_address or is_domain):
        return f'"{target}" is neither an email address nor a domain; accepted: {syntax(command)}'
    return Change(command.kind, f"{action} {target}")


def _cc(command: Command, argument: str, context: _Context) -> Change | str:
    """ "add jane@acme.com" or "remove jane@acme.com"; never one of our own people, whose
    private mailbox a customer's conversation must not reach."""
    action, _, target = argument.partition(" ")
    action, target = action.lower(), target.strip().strip("<>").lower()
    if action not in ("add", "remove") or not _ADDRESS.fullmatch(target):
        return f'"{argument}" is not a participant change; accepted: {syntax(command)}'
    if action == "add" and target in context.ours:
        return (
            f'"{target}" is one of our own people (engineers, escalation contacts, service '
            "managers, admins): they are never copied on a customer's mail"
        )
    return Change(command.kind, f"{action} {target}")


_REFERENCE = re.compile(r"[A-Za-z][A-Za-z0-9]*-\d{4}-\d{5,}")


def _reference(command: Command, argument: str, context: _Context) -> Change | str:
    reference = argument.strip().strip("[]")
    if not _REFERENCE.fullmatch(reference):
        return f'"{argument}" is not a case reference; accepted: {syntax(command)}'
    return Change(command.kind, reference.upper())


_DUE_WHEN = re.compile(r"(\d{4}-\d{2}-\d{2})(?: (\d{1,2}:\d{2}))?|\d+[mhd]")
_CLOCK = re.compile(r"[a-z][a-z0-9_]*")


def _due(command: Command, argument: str, context: _Context) -> Change | str:
    """ "2026-12-20", "2026-12-20 15:00", "5d", each optionally after a clock's name."""
    words = argument.lower().split()
    clock = words.pop(0) if words and _CLOCK.fullmatch(words[0]) else "resolution"
    when = " ".join(words)
    if not _DUE_WHEN.fullmatch(when) or not _real_date(when):
        return f'"{argument}" is not a deadline; accepted: {syntax(command)}'
    return Change(command.kind, f"{clock} {when}")


def _real_date(when: str) -> bool:
    """No 2026-02-30 and no 25:00; a duration ("5d") is always fine."""
    try:
        if "-" in when:
            datetime.strptime(when, "%Y-%m-%d %H:%M" if " " in when else "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _tier(command: Command, argument: str, context: _Context) -> Change | str:
    if argument.strip() not in ("1", "2", "3"):
        return f'"{argument}" is not a tier; accepted: {syntax(command)}'
    return Change(command.kind, argument.strip())


def _text(command: Command, argument: str, context: _Context) -> Change | str:
    if not argument.strip():
        return f"#{command.name} needs its text on the same line; accepted: {syntax(command)}"
    return Change(command.kind, argument.strip())


def _category(command: Command, argument: str, context: _Context) -> Change | str:
    """A category's name; whether it is configured is checked against the configuration."""
    name = argument.strip().lower()
    if not _CLOCK.fullmatch(name):
        return f'"{argument}" is not a category\'s name; accepted: {syntax(command)}'
    return Change(command.kind, name)


def _remind(command: Command, argument: str, context: _Context) -> Change | str:
    """ "2026-12-10 09:00", "2d", or an engineer's address before either: "ADDRESS WHEN"."""
    first, _, rest = argument.partition(" ")
    if "@" not in first:
        first, rest = "me", argument
    who = _assignee(command, first, context)
    if isinstance(who, str):
        return who
    when = " ".join(rest.lower().split())
    if not _DUE_WHEN.fullmatch(when) or not _real_date(when):
        return f'"{argument}" is not a moment; accepted: {syntax(command)}'
    return Change(command.kind, f"{who.value} {when}")


_SPENT = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?")


def minutes_spent(text: str) -> int:
    """ "1h30m" -> 90, "45m" -> 45, "2h" -> 120; 0 for anything else."""
    match = _SPENT.fullmatch(text.strip().lower())
    return int(match[1] or 0) * 60 + int(match[2] or 0) if match else 0


def _time(command: Command, argument: str, context: _Context) -> Change | str:
    minutes = minutes_spent(argument)
    if not 0 < minutes <= 24 * 60:
        return f'"{argument}" is not a time spent (up to 24h); accepted: {syntax(command)}'
    return Change(command.kind, str(minutes))


_ARGUMENT_READERS: dict[str, Callable[[Command, str, _Context], Change | str]] = {
    "priority": _priority,
    "assign": _assignee,
    "status": _no_argument,
    "escalate": _no_argument,
    "note": _no_argument,
    "allow": _allow,
    "due": _due,
    "tier": _tier,
    "plan": _text,
    "workaround": _text,
    "cc": _cc,
    "merge": _reference,
    "unmerge": _no_argument,
    "split": _no_argument,
    "category": _category,
    "remind": _remind,
    "time": _time,
    "ack": _no_argument,
}


def _sets(change: Change) -> str:
    """What a change sets: one deadline per clock, one of everything else."""
    if change.kind == "due":
        return "due " + (change.value or "").split()[0]
    return change.kind


def _conflicts(applied: list[_Applied]) -> list[CommandError]:
    """A later command that sets what an earlier one set, to something else."""
    first: dict[str, _Applied] = {}
    errors = []
    for later in applied:
        if later.change.kind in ("allow", "cc", "remind"):  # several of these go together
            continue
        earlier = first.setdefault(_sets(later.change), later)
        if earlier.change != later.change:
            reason = (
                f'"{later.line}" conflicts with "{earlier.line}" on line '
                f"{earlier.line_number}; give one {later.change.kind} per mail"
            )
            errors.append(CommandError(later.line, later.line_number, reason))
    return errors
