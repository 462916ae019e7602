"""`helpdeskd [--config PATH] COMMAND`: parse the arguments, then run the command's function.

Each command's function is named in COMMANDS and imported only when that command runs, so
`--version`, `--help` and `completion` start without loading the library. Every expected failure
is raised as `exits.Failure` and printed by `main` as one line with its sysexits code; anything
else is a bug, shown in one line too unless `--debug` asks for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from helpdeskd import __version__, arguments, exits
from helpdeskd.exits import Failure
from helpdeskd.files import make_private
from helpdeskd.names import CHANNELS, PRIORITIES, REPORT_FORMATS, REPORT_PARTS, STATUSES

if TYPE_CHECKING:
    from helpdeskd.config import Config

# command -> "module:function" that runs it, given (config, args); one line per command
COMMANDS = {
    "run": "helpdeskd.commands.daemon:cmd_run",
    "check-config": "helpdeskd.commands.daemon:cmd_check_config",
    "ingest": "helpdeskd.commands.mail:cmd_ingest",
    "open": "helpdeskd.commands.mail:cmd_open",
    "sweep": "helpdeskd.commands.mail:cmd_sweep",
    "cases": "helpdeskd.commands.cases:cmd_cases",
    "show": "helpdeskd.commands.cases:cmd_show",
    "report": "helpdeskd.commands.cases:cmd_report",
    "search": "helpdeskd.commands.search:cmd_search",
    "oncall": "helpdeskd.commands.oncall:cmd_oncall",
    "outbox": "helpdeskd.commands.mail:cmd_outbox",
    "requeue": "helpdeskd.commands.mail:cmd_requeue",
    "completion": "helpdeskd.cli:cmd_completion",
    "status": "helpdeskd.commands.daemon:cmd_status",
    "backup": "helpdeskd.commands.daemon:cmd_backup",
    "migrate": "helpdeskd.commands.daemon:cmd_migrate",
    "purge": "helpdeskd.commands.daemon:cmd_purge",
    "announce": "helpdeskd.commands.mail:cmd_announce",
    "web": "helpdeskd.commands.daemon:cmd_web",
    "person": "helpdeskd.commands.person:cmd_person",
    "webhooks": "helpdeskd.commands.integrations:cmd_webhooks",
    "token": "helpdeskd.commands.integrations:cmd_token",
}
NO_CONFIG = {"completion"}  # commands that run without reading the configuration
# shtab's file completion, named here so the parser is built without importing shtab
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}


class Parser(argparse.ArgumentParser):
    """A usage mistake is one line and exit 64, not argparse's usage block and exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]  # "cases"; "" for helpdeskd itself
        message = message.removeprefix("argument ")
        if command:
            message = f"{command} {message}" if message.startswith("-") else f"{command}: {message}"
        raise Failure(f"{message}; see `{self.prog} --help`", exits.USAGE)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="helpdeskd", description="An email-driven helpdesk daemon.")
    p.add_argument(
        "--config",
        type=Path,
        help="the TOML file (default: $HELPDESKD_CONFIG, else /etc/helpdeskd/helpdeskd.toml, "
        "else ./config.example.toml)",
    ).complete = FILE
    p.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    p.add_argument("--version", action="version", version=f"helpdeskd {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="the daemon: listeners, pollers, scheduler, outbox delivery")
    sub.add_parser("check-config", help="validate the configuration, print every problem")
    ingest = sub.add_parser("ingest", help="one raw message through the whole flow")
    ingest.add_argument(
        "file", nargs="?", default="-", help="the message file, or - for stdin"
    ).complete = FILE
    _clock_options(ingest, "how it would be classified and routed, writing nothing")
    _open_options(sub.add_parser("open", help="open a case on a customer's behalf"))
    sw = sub.add_parser("sweep", help="one scheduler pass: warnings, escalations, closings")
    _clock_options(sw, "only list what is due")
    sw.add_argument("--json", action="store_true", help="machine-readable output")
    cases = sub.add_parser("cases", help="list cases")
    _status_option(cases)
    cases.add_argument(
        "--priority",
        type=arguments.priority,
        choices=PRIORITIES,
        metavar="P",
        help="only cases of this priority",
    )
    cases.add_argument("--plan", help="only cases on this plan")
    cases.add_argument(
        "--customer", help="only this customer's cases: its name (any case) or a domain"
    )
    cases.add_argument("--json", action="store_true", help="machine-readable output")
    cases.add_argument(
        "--unrouted",
        action="store_true",
        help="list the messages kept without a case (auto-generated, ignored)",
    )
    cases.add_argument(
        "--quarantined",
        action="store_true",
        help="list the messages that could not be processed, with the reason",
    )
    show = sub.add_parser("show", help="one case: history, routing reasons, SLA clocks")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--full", action="store_true", help="include quoted text and signatures")
    show.add_argument("--now", type=arguments.instant, help="measure the clocks at this time")
    rep = sub.add_parser("report", help="SLA compliance per plan, priority and customer")
    rep.add_argument("--since", type=arguments.day, help="cases opened on or after DATE")
    rep.add_argument("--until", type=arguments.day, help="cases opened before DATE")
    rep.add_argument("--format", choices=REPORT_FORMATS, default="table", help="default: table")
    rep.add_argument("--now", type=arguments.instant, help="judge the clocks at this time")
    rep.add_argument("--part", choices=REPORT_PARTS, help="only this part (csv, json: default sla)")
    rep.add_argument(
        "--time",
        action="store_true",
        help="time spent (#time) in the period, per customer, plan and priority",
    )
    find = sub.add_parser("search", help="cases whose mail, notes or attachments hold the words")
    find.add_argument("words", nargs="+", metavar="WORD", help="every word must be found")
    find.add_argument("--customer", help="only this customer's cases: its name or a domain")
    _status_option(find)
    find.add_argument("--since", type=arguments.day, help="only cases opened on or after DATE")
    find.add_argument(
        "--limit",
        type=arguments.positive,
        default=20,
        help="at most this many cases (default 20)",
    )
    find.add_argument("--json", action="store_true", help="machine-readable output")
    duty = sub.add_parser("oncall", help="who is on call now, and who takes over next")
    duty.add_argument("--now", type=arguments.instant, help="as at this time")
    duty.add_argument("--json", action="store_true", help="machine-readable output")
    requeue = sub.add_parser("requeue", help="give quarantined messages another try")
    requeue.add_argument(
        "ids",
        nargs="*",
        type=arguments.number("a message", "helpdeskd cases --quarantined"),
        metavar="ID",
        help="spool ids, as `cases --quarantined` lists them",
    )
    requeue.add_argument("--all", action="store_true", help="every quarantined message")
    box = sub.add_parser("outbox", help="what waits to be sent")
    box.add_argument("--flush", action="store_true", help="deliver what is due now")
    box.add_argument(
        "--retry-now",
        action="store_true",
        help="try at once what waits out a back-off after a failed try (implies --flush)",
    )
    outbox_id = arguments.number("an outbox", "helpdeskd outbox")
    box.add_argument(
        "--retry",
        nargs="+",
        type=outbox_id,
        metavar="ID",
        help="try these again now, given up on or not (then flush)",
    )
    box.add_argument(
        "--drop", nargs="+", type=outbox_id, metavar="ID", help="remove unsent mail for good"
    )
    box.add_argument("--json", action="store_true", help="machine-readable output")
    _announce_options(sub.add_parser("announce", help="a notice to customers' contacts"))
    _ops_commands(sub)
    web = sub.add_parser("web", help="the status page: end an address's sessions")
    web.add_argument("action", choices=("sign-out",), help="sign-out: end every session")
    web.add_argument("address", help="whose sessions")
    _person_command(sub)
    _integration_commands(sub)
    comp = sub.add_parser("completion", help="print the shell completion script")
    comp.add_argument("shell", choices=("bash", "zsh"), help="bash or zsh")
    return p


def _ops_commands(sub) -> None:
    status = sub.add_parser("status", help="health: listener, mailboxes, backlogs, last sweep")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    copy = sub.add_parser("backup", help="a consistent copy of the live database")
    copy.add_argument(
        "dest", help="the copy's file name, or a folder (one that exists, or DIR/) for a dated one"
    ).complete = FILE
    copy.add_argument("--force", action="store_true", help="replace an earlier backup")
    move = sub.add_parser("migrate", help="copy the helpdesk from SQLite into PostgreSQL")
    move.add_argument(
        "--to", required=True, metavar="URL", help="an empty database: postgresql://USER@HOST/DB"
    )
    purge = sub.add_parser("purge", help="remove raw mail of cases closed long ago")
    purge.add_argument(
        "--older-than",
        required=True,
        type=_days,
        metavar="DAYS",
        help='cases closed more than this long ago, in days ("365d" or 365)',
    )


def _person_command(sub) -> None:
    who = sub.add_parser("person", help="a person's data: export it to one archive, or erase it")
    who.add_argument("action", choices=("export", "erase"), help="export or erase")
    who.add_argument("address", help="the person's email address")
    who.add_argument("--output", type=Path, help="export: the archive (a ZIP file) to write")
    who.add_argument("--force", action="store_true", help="export: replace an existing file")
    who.add_argument("--dry-run", action="store_true", help="erase: say what it would do")
    who.add_argument(
        "--name", action="append", help="erase: a name of theirs to replace too (repeatable)"
    )


def _integration_commands(sub) -> None:
    hooks = sub.add_parser("webhooks", help="webhook deliveries and their states")
    delivery_id = arguments.number("a delivery", "helpdeskd webhooks")
    hooks.add_argument(
        "--retry", nargs="+", type=delivery_id, metavar="ID", help="deliver these again now"
    )
    hooks.add_argument(
        "--drop", nargs="+", type=delivery_id, metavar="ID", help="remove undelivered ones"
    )
    hooks.add_argument("--json", action="store_true", help="machine-readable output")
    token = sub.add_parser("token", help="the read API's bearer tokens: create, revoke, list")
    token.add_argument("action", choices=("create", "revoke", "list"), help="what to do")
    token.add_argument("name", nargs="?", help="the token's name (create, revoke)")
    token.add_argument("--customer", help="create: a token that sees this customer's cases only")


def _announce_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", required=True, help="the subject of the mail")
    p.add_argument("--body", required=True, type=Path, help="a file with the text of the mail")
    p.add_argument("--customers", nargs="+", metavar="C", help="these customers (name or domain)")
    p.add_argument("--plans", nargs="+", metavar="P", help="the customers on these plans")
    p.add_argument("--dry-run", action="store_true", help="list the recipients, send nothing")


def _open_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--for", dest="for_address", required=True, metavar="ADDRESS", help="the customer"
    )
    p.add_argument("--subject", required=True, help="what the case is about")
    p.add_argument(
        "--priority", type=arguments.priority, choices=PRIORITIES, metavar="P",
        help="the priority (default: as the customer's own mail would get)",
    )  # fmt: skip
    p.add_argument(
        "--channel", choices=CHANNELS, default="phone",
        help="how the customer told us (default: phone)",
    )  # fmt: skip
    p.add_argument(
        "--at", type=arguments.instant, help="when the customer told us: the clocks start here"
    )
    p.add_argument(
        "--body-file", type=Path, help="a file with the customer's words"
    ).complete = FILE


def _status_option(p: argparse.ArgumentParser) -> None:
    # choices beside the type: the type's message for a mistake, the list for completion
    p.add_argument(
        "--status",
        type=arguments.status,
        choices=STATUSES,
        metavar="STATUS",
        help="only cases in this status",
    )


def _clock_options(p: argparse.ArgumentParser, dry_help: str) -> None:
    p.add_argument("--now", type=arguments.instant, help="the clock for this command")
    p.add_argument("--dry-run", action="store_true", help=dry_help)


def _days(text: str) -> timedelta:
    from helpdeskd.config import retention_days

    days = retention_days(text if text.rstrip().endswith("d") else f"{text}d")
    if days is None:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}")
    return timedelta(days=days)


def main(argv: list[str] | None = None) -> int:
    make_private()  # before anything is created: customer mail is in those files
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(argv)
    except Failure as exc:
        if "--debug" in argv:
            import traceback

            traceback.print_exc()
        print(f"helpdeskd: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130  # the shell's code for Ctrl-C; the admin knows why
    except BrokenPipeError:  # `helpdeskd cases | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if "--debug" in argv:
            raise
        print(f"helpdeskd: {unexpected(exc)}", file=sys.stderr)
        return exits.TEMPFAIL if exits.busy(exc) else exits.SOFTWARE


def unexpected(exc: Exception) -> str:
    if exits.busy(exc):
        return f"the database is busy or out of reach ({exc}): try again in a moment"
    return (
        f"unexpected error ({type(exc).__name__}: {exc}); "
        "run again with --debug to see where, and please report it"
    )


def dispatch(argv: list[str]) -> int:
    args = parser().parse_args(argv)  # --version and --help end here
    config = None
    if args.command not in NO_CONFIG:
        from helpdeskd import logs
        from helpdeskd.commands.context import load_config

        logs.configure("INFO" if args.command == "run" else "WARNING")
        config = load_config(args.config, args.command)
        arguments.settle(args, config.helpdesk.timezone)
    return command(args.command)(config, args)


def command(name: str) -> Callable[[Config | None, argparse.Namespace], int]:
    """The function that runs `name`, its module imported now."""
    module, _, function = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def cmd_completion(config: None, args: argparse.Namespace) -> int:
    import shtab  # here only: no other command pays for the import

    print(shtab.complete(parser(), shell=args.shell))
    return 0
