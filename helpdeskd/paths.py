"""The places a configuration writes to, checked for the user who runs `check-config`.

Loading the file already checks what is read (templates, certificates, password files); what
is written can only be judged by the user the daemon runs as, so `check-config` run as that
user (the unit's ExecStartPre) catches a database folder it cannot write before `run` dies.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpdeskd.config import Config


def problems(config: Config) -> list[tuple[str, str]]:
    found = []
    database = config.helpdesk.database
    if not isinstance(database, Path):
        pass  # a PostgreSQL server: nothing of it is written on this host
    elif why := _unwritable_folder(database.parent):  # Store makes it
        found.append(("helpdesk.database", f"{database}: {why}"))
    elif database.exists() and not os.access(database, os.R_OK | os.W_OK):
        found.append(("helpdesk.database", f"{database}: cannot be read and written"))
    outbound = config.outbound
    maildir = outbound.path if outbound.transport == "maildir" else None
    if maildir and (why := _unwritable_folder(maildir)):
        found.append(("outbound.path", f"{outbound.path}: {why}"))
    return found


def _unwritable_folder(folder: Path) -> str | None:
    """Why the daemon could not write files in `folder`, or None when it can. A folder not
    there yet is created, so its nearest existing parent must be writable instead."""
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            return f"the folder does not exist and {parent} is not writable"
        return None
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable by this user"
    return None
