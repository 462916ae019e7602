"""One log stream: structlog and every library's stdlib logging (aiosmtpd, APScheduler,
imapclient, uvicorn, asyncio, warnings) leave as one JSON object per line with `level`, `logger`
and `event`.

Under systemd the lines go to the journal's native socket with a PRIORITY that follows the level,
so `journalctl -p err` works; elsewhere they are written to stderr (stdout stays for the output of
commands such as `cases --json`). On a terminal a person reads them: structlog's console
rendering, levels coloured, times in the helpdesk's zone; files and pipes keep JSON in UTC.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

import structlog

if TYPE_CHECKING:
    from helpdeskd.config import Config

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "helpdeskd"
PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
# Libraries that speak at INFO once per SMTP command or scheduler tick: their INFO is our DEBUG.
CHATTY = ("mail.log", "apscheduler")
# Values that name a person's mailbox: at INFO only the domain is written (enough to tell which
# customer), the full address at DEBUG and in warnings an admin must act on.
ADDRESS_KEYS = frozenset({"mail_from", "to", "from_addr", "recipients", "sender", "dropped"})
# Libraries that speak for a part of helpdeskd: their lines go under its name. uvicorn's
# "Started server process" is the status page's, not an error ("uvicorn.error" is its main logger).
OWN_NAMES = {"uvicorn": "helpdeskd.web"}


def configure(
    level: str = "INFO",
    output: str = "auto",
    *,
    stream: TextIO | None = None,
    journal_socket: str = JOURNAL_SOCKET,
    timezone: str | None = None,
    announce: bool = True,
) -> None:
    """Route structlog and stdlib logging into one handler; call again to change the level.
    `timezone`: the helpdesk's, for the times a terminal shows (None: the machine's).
    `announce`: False in the node's child processes, whose main process says it once."""
    stream = stream or sys.stderr
    threshold = logging.getLevelName(level.upper())
    debug = threshold <= logging.DEBUG
    handler = _handler(output, stream, journal_socket)
    console = _on_terminal(handler)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        own_names,
        LocalTime(timezone) if console else structlog.processors.TimeStamper("iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([] if debug else [mask_addresses]),
            *_rendering(console),
        ],
    )
    handler.setFormatter(formatter)
    handler.set_name(IDENTIFIER)
    root = logging.getLogger()
    for old in root.handlers[:]:
        # ours from an earlier call, or basicConfig's: a second one would print lines twice
        if old.get_name() == IDENTIFIER or type(old) is logging.StreamHandler:
            root.removeHandler(old)
            old.close()
    handler.addFilter(Demote(threshold))
    root.addHandler(handler)
    was_debug = logging.NOTSET < root.level <= logging.DEBUG
    root.setLevel(threshold)
    if debug and not was_debug and announce:
        structlog.get_logger("helpdeskd.logs").warning(
            "level DEBUG: personal data is logged (whole addresses, SMTP commands)"
        )
    # off and on: a second call alone is a no-op, even after someone else took the hook back
    logging.captureWarnings(False)
    logging.captureWarnings(True)


def configure_for(config: Config, *, announce: bool = True) -> None:
    """`configure` as the configuration's `[logging]` and zone say: the daemon's processes,
    at their start and at each reload."""
    configure(
        config.logging.level,
        config.logging.output,
        timezone=config.helpdesk.timezone,
        announce=announce,
    )


def _on_terminal(handler: logging.Handler) -> bool:
    """A person reads the stream: a terminal, and not the journal (which gets the native
    socket, or JSON when that is missing)."""
    if not isinstance(handler, logging.StreamHandler):
        return False
    stream = handler.stream
    try:
        return stream.isatty() and not stream_is_journal(stream)
    except (OSError, ValueError, AttributeError):
        return False


def _rendering(console: bool) -> list:
    if console:  # it lays out tracebacks itself
        return [structlog.dev.ConsoleRenderer(colors=True)]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(sort_keys=True)]


class LocalTime:
    """`timestamp` as a person in the helpdesk reads it: `2026-11-18 09:00:00 CST`."""

    def __init__(self, timezone: str | None):
        self.zone = ZoneInfo(timezone) if timezone else None

    def __call__(self, logger: Any, method: str, event: dict) -> dict:
        now = datetime.now(self.zone) if self.zone else datetime.now().astimezone()
        event["timestamp"] = f"{now:%Y-%m-%d %H:%M:%S} {now.tzname()}"
        return event


def own_names(logger: Any, method: str, event: dict) -> dict:
    """A library's logger name replaced by the part of helpdeskd it speaks for (OWN_NAMES)."""
    name = event.get("logger") or ""
    for library, ours in OWN_NAMES.items():
        if name == library or name.startswith(library + "."):
            event["logger"] = ours
    return event


class Demote(logging.Filter):
    """INFO of a chatty library (or any of its child loggers) becomes DEBUG, shown only when
    the level is DEBUG. On the handler: a logger's own filters never see its children's lines."""

    def __init__(self, threshold: int):
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        chatty = any(record.name == n or record.name.startswith(n + ".") for n in CHATTY)
        if chatty and record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.threshold


def mask_addresses(logger: Any, method: str, event: dict) -> dict:
    """At INFO, `jane@acme.example` is logged as `@acme.example` (unless the level is DEBUG,
    where every address is whole)."""
    if event.get("level") != "info":
        return event
    for key in ADDRESS_KEYS & event.keys():
        event[key] = _domains(event[key])
    return event


def _domains(value: Any) -> Any:
    if isinstance(value, str):
        return "@" + value.rpartition("@")[2] if "@" in value else value
    if isinstance(value, list | tuple):
        return [_domains(v) for v in value]
    return value


def _handler(output: str, stream: TextIO, journal_socket: str) -> logging.Handler:
    wanted = output == "journal" or (output == "auto" and stream_is_journal(stream))
    if wanted and os.path.exists(journal_socket):
        return JournalHandler(journal_socket, fallback=stream)
    return logging.StreamHandler(stream)


def stream_is_journal(stream: TextIO) -> bool:
    """systemd sets JOURNAL_STREAM to the device:inode of the stream it connected to the
    journal; only when ours is that one do the native fields reach the same place."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{found.st_dev}:{found.st_ino}"


class JournalHandler(logging.Handler):
    """The journal's native protocol: one datagram of FIELD=value lines per record."""

    def __init__(self, path: str, fallback: TextIO):
        super().__init__()
        self.path, self.fallback = path, fallback
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        try:
            fields = {
                "MESSAGE": line,
                "PRIORITY": str(PRIORITY.get(record.levelname.lower(), 6)),
                "SYSLOG_IDENTIFIER": IDENTIFIER,
                "LOGGER": record.name,
            }
            self.sock.sendto(journal_datagram(fields), self.path)
        except OSError:
            # the journal gone (restarting, or a message too large): never lose the line
            self.fallback.write(line + "\n")
            self.fallback.flush()

    def close(self) -> None:
        self.sock.close()
        super().close()


def journal_datagram(fields: dict[str, str]) -> bytes:
    """KEY=value lines; a value holding a newline goes as KEY, newline, 64-bit length, bytes."""
    parts = []
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            parts.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode() + b"=" + data + b"\n")
    return b"".join(parts)
