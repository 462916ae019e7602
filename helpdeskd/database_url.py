"""Where the database is when it is not a file: a PostgreSQL URL. A configured value that looks
like a URL is never taken for a path, and the password in one is never shown: whatever is logged
or printed is the masked form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("postgresql", "postgres")
# "scheme://": a value so written is meant as a URL, whatever the scheme
LOOKS_LIKE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
PASSWORD_IN_NETLOC = re.compile(r"(://[^:@/?#]*):[^@/?#]*@")
PASSWORD_IN_QUERY = re.compile(r"([?&]password=)[^&#]*", re.I)


def looks_like_url(text: str) -> bool:
    return bool(LOOKS_LIKE_URL.match(text.strip()))


def masked(url: str) -> str:
    """The URL with any password in it replaced by ***."""
    return PASSWORD_IN_QUERY.sub(r"\1***", PASSWORD_IN_NETLOC.sub(r"\1:***@", url))


def problem(url: str) -> str | None:
    """Why `url` cannot name a helpdeskd database, or None when it can."""
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        return (
            f"{masked(url)!r} is a {scheme}:// URL: give a file path (SQLite) or "
            "postgresql://USER@HOST/DATABASE"
        )
    from psycopg.conninfo import conninfo_to_dict  # only a PostgreSQL set-up needs it

    try:
        parts = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError; libpq's words for what is wrong
        return f"not a usable PostgreSQL URL: {masked(url)!r}: {str(exc).strip()}"
    if not all(port.isdigit() for port in str(parts.get("port", "5432")).split(",")):
        return f"not a usable PostgreSQL URL: {masked(url)!r}: the port is not a number"
    return None


def has_password(url: str) -> bool:
    return masked(url) != url


@dataclass(frozen=True)
class DatabaseUrl:
    """A PostgreSQL database: its URL, and the file its password is read from (else libpq's
    PGPASSFILE or ~/.pgpass). Shown masked, even by repr()."""

    url: str
    password_file: Path | None = None

    def __str__(self) -> str:
        return masked(self.url)

    def __repr__(self) -> str:
        return f"DatabaseUrl({masked(self.url)!r})"

    def connect_options(self) -> dict[str, str]:
        """What psycopg.connect takes beside the URL: the password, read when the process
        first connects (its pool keeps it: a changed password takes effect at the next start)."""
        if self.password_file is None:
            return {}
        return {"password": self.password_file.read_text(encoding="utf-8").strip()}
