"""A person's data: everything held about an address written to one archive, or erased.

The database's part is the store's (adapters/store/persons.py: one step per module that holds
personal data); here the allow-list file, the archive and the audit line are added to it."""

from __future__ import annotations

import io
import json
import tomllib
import zipfile
from datetime import datetime
from pathlib import Path

import structlog

from helpdeskd import allowlist, files
from helpdeskd.adapters.store import Store, iso, persons
from helpdeskd.config import Config
from helpdeskd.core.parse import ParseError, parse

log = structlog.get_logger("helpdeskd.audit")


def export(
    store: Store, config: Config, address: str, output: Path, now: datetime, *, overwrite: bool
) -> dict[str, int]:
    """Write the archive (person.json, the raw mail, their attachments); what it holds, by
    kind. FileExistsError when `output` exists and may not be replaced."""
    person = persons.find(store, address)
    found = persons.export(store, person)
    found.records["allow_list"] = allowlist.entries(config, person.address)
    found.files.update(_attachments(found.files))
    document = {
        "address": person.address,
        "names": list(person.names),
        "exported_at": iso(now),
        **found.records,
        "files": sorted(found.files),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("person.json", json.dumps(document, indent=2, default=str))
        for name, data in sorted(found.files.items()):
            archive.writestr(name, data)
    if not files.write_private(output, buffer.getvalue(), overwrite=overwrite):
        raise FileExistsError(output)
    held = {kind: len(rows) for kind, rows in found.records.items()}
    held["files"] = len(found.files)
    log.warning("audit", action="person.export", person=person.pseudonym, held=held)
    return held


def _attachments(mail: dict[str, bytes]) -> dict[str, bytes]:
    """Each attachment of the raw mail as a file of its own, under the mail's name."""
    found = {}
    for name, raw in mail.items():
        try:
            parsed = parse(raw)
        except ParseError:
            continue  # the raw mail itself is in the archive
        for number, part in enumerate(parsed.attachments, 1):
            filename = Path(part.filename or f"part-{number}").name
            found[f"attachments/{Path(name).stem}/{number}-{filename}"] = part.data
    return found


def erase(
    store: Store, config: Config, address: str, *, dry_run: bool, names: tuple[str, ...] = ()
) -> tuple[persons.Person, dict[str, int], list[str]]:
    """Erase (or, with `dry_run`, count) the person's data: (the person, rows changed by
    table, allow-list customers they were taken from)."""
    person = persons.find(store, address, names)
    done = persons.erase(store, person, dry_run=dry_run)
    listed = [e["customer"] for e in allowlist.entries(config, person.address)]
    if not dry_run:
        with store.transaction():
            store.exclusive("allowlist")  # as an engineer's #allow does: one writer at a time
            listed = allowlist.forget(config, person.address)
    action = "person.erase.dry-run" if dry_run else "person.erase"
    log.warning("audit", action=action, person=person.pseudonym, changed=done)
    return person, done, listed


def named_in_config(path: Path, address: str) -> list[str]:
    """Where the admin's own file names the address (helpdeskd never rewrites it), read
    without the allow-list file merged in."""
    return _places(tomllib.loads(path.read_text(encoding="utf-8")), address, "")


def _places(value: object, address: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [where] if value.strip().lower() == address else []
    if isinstance(value, dict):
        keyed = [(f"{where}.{k}" if where else k, v) for k, v in value.items()]
    elif isinstance(value, list):
        keyed = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return []
    return [place for key, v in keyed for place in _places(v, address, key)]
