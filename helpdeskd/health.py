"""`helpdeskd status`: is the daemon doing its job? For an admin, a monitor or a load balancer.

Every figure comes from the database the daemon writes (and the listener's port), so `status`
runs as a separate process and needs no channel into the daemon. What people read (the text and
the problems) gives times in the helpdesk's zone, as every command does; `--json`'s figures are
ISO 8601 with their offset.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from helpdeskd import demotions, disk
from helpdeskd.adapters.store import (
    Figures,
    Heartbeats,
    Incidents,
    Nodes,
    Store,
    iso,
    parse_iso,
)
from helpdeskd.config import Config
from helpdeskd.views import shown

SPOOL_LATE = timedelta(minutes=10)  # mail spooled this long ago and not processed: the worker
OUTBOX_LATE = timedelta(hours=1)  # due this long and still queued: the relay
SWEEP_LATE = timedelta(minutes=5)  # the daemon sweeps every minute
PROBE_TIMEOUT = 5.0


def assess(config: Config, store: Store, now: datetime, *, probe: bool = True) -> dict:
    """Every check, with `problems` (unhealthy) and `warnings` (look, but it works)."""
    problems: list[str] = []
    warnings: list[str] = []
    beats = Heartbeats(store).all()
    incidents = Incidents(store).listing()
    tz = config.helpdesk.timezone
    report = {
        "listener": _listener(config, problems) if probe else None,
        "disk": _disk(config, problems),
        "mailboxes": [_mailbox(box, beats, incidents, now, tz, problems) for box in config.imap],
        "spool": _spool(store, now, tz, problems),
        "outbox": _outbox(store, now, tz, problems),
        "dead_mail": _dead_mail(store, warnings),
        "demoted": demotions.figure(store, now, warnings),
        "incidents": _incidents(incidents, tz, problems, warnings),
        "last_sweep": _sweep(beats.get("sweep"), now, tz, problems),
        "next_deadlines": Figures(store).next_deadlines(),
        "nodes": _nodes(store, config, now),
    }
    return {"healthy": not problems, "problems": problems, "warnings": warnings, **report}


def _listener(config: Config, problems: list[str]) -> dict | None:
    if not config.smtp.enabled:
        return None
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
        config.smtp.host, config.smtp.host
    )
    where = f"{host}:{config.smtp.port}"
    greeting = probe_smtp(host, config.smtp.port)
    if not greeting.startswith("220"):
        problems.append(f"listener {where}: {greeting}")
    return {"address": where, "ok": greeting.startswith("220"), "greeting": greeting}


def _disk(config: Config, problems: list[str]) -> dict | None:
    room = disk.space(config)
    if room is None:
        return None
    if room.short:
        problems.append(
            f"free space: {disk.megabytes(room.left)} left for the database (its WAL copied "
            f"back), below the margin of {disk.megabytes(room.margin)} ([helpdesk] "
            "min_free_space): mail is refused"
        )
    return {
        "free_bytes": room.free,
        "total_bytes": room.total,
        "wal_bytes": room.wal,
        "margin_bytes": room.margin,
    }


def probe_smtp(host: str, port: int) -> str:
    """The server's greeting line, or why there was none."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
            greeting = sock.makefile("rb").readline(512).decode("ascii", "replace").strip()
            sock.sendall(b"QUIT\r\n")
            return greeting or "connected, but no greeting"
    except OSError as exc:
        return f"cannot connect: {exc.strerror or exc}"


def _mailbox(
    box, beats: dict, incidents: list[dict], now: datetime, tz: str, problems: list
) -> dict:
    key = f"imap:{box.name}"
    last = beats.get(key)
    incident = next((i for i in incidents if i["key"] == key), None)
    allowed = timedelta(seconds=max(3 * box.poll_interval, box.alert_after))
    if incident:
        problems.append(f"mailbox {box.name}: failing since {_stored(incident['opened_at'], tz)}")
    elif last is None or now - last > allowed:
        problems.append(f"mailbox {box.name}: no successful poll since {_when(last, tz)}")
    return {"name": box.name, "last_poll": iso(last), "incident": incident is not None}


def _spool(store: Store, now: datetime, tz: str, problems: list[str]) -> dict:
    waiting, oldest = Figures(store).spool_backlog()
    if oldest and now - oldest > SPOOL_LATE:
        problems.append(
            f"spool: {waiting} message(s) waiting, the oldest since {_when(oldest, tz)}"
        )
    return {"waiting": waiting, "oldest": iso(oldest), "age_seconds": _age(oldest, now)}


def _outbox(store: Store, now: datetime, tz: str, problems: list[str]) -> dict:
    queued, oldest_due = Figures(store).outbox_backlog(now)
    if oldest_due and now - oldest_due > OUTBOX_LATE:
        problems.append(f"outbox: {queued} queued, due mail waiting since {_when(oldest_due, tz)}")
    return {"queued": queued, "oldest_due": iso(oldest_due), "age_seconds": _age(oldest_due, now)}


def _dead_mail(store: Store, warnings: list[str]) -> dict:
    dead = Figures(store).dead_mail()
    if dead["outbox_failed"]:
        warnings.append(f"{dead['outbox_failed']} outgoing mail given up on (helpdeskd outbox)")
    if dead["quarantined"]:
        warnings.append(f"{dead['quarantined']} message(s) quarantined (cases --quarantined)")
    return dead


def _incidents(
    incidents: list[dict], tz: str, problems: list[str], warnings: list[str]
) -> list[dict]:
    """Mailbox incidents are told under their mailbox; a quarantine count never closes (the
    dead-mail figure says the same), the rest are trouble still going on."""
    for incident in incidents:
        key = incident["key"]
        if key.startswith("quarantine:"):
            continue
        if not key.startswith("imap:"):
            problems.append(f"incident {key} open since {_stored(incident['opened_at'], tz)}")
    if any(i["key"].startswith("quarantine:") for i in incidents):
        warnings.append("the quarantine grew: admins were told")
    return [{"key": i["key"], "opened_at": i["opened_at"]} for i in incidents]


def _sweep(last: datetime | None, now: datetime, tz: str, problems: list[str]) -> dict:
    if last is None or now - last > SWEEP_LATE:
        problems.append(f"no sweep since {_when(last, tz)}: is the daemon running?")
    return {"at": iso(last), "age_seconds": _age(last, now)}


def _when(moment: datetime | None, tz: str) -> str:
    return "ever" if moment is None else shown(moment, tz)


def _nodes(store: Store, config: Config, now: datetime) -> list[dict]:
    """Every node that ever ran here: its last heartbeat, whether it still beats (within a
    lease), and its role, the leases it holds now."""
    late = timedelta(seconds=config.helpdesk.lease_seconds)
    return [
        {
            "name": node["name"],
            "pid": node["pid"],
            "started_at": iso(node["started_at"]),
            "heartbeat": iso(node["heartbeat"]),
            "alive": now - node["heartbeat"] <= late,
            "leases": [lease["name"] for lease in node["leases"] if lease["expires_at"] >= now],
        }
        for node in Nodes(store).listing()
    ]


def _stored(text: str | None, tz: str, never: str = "-") -> str:
    """An ISO 8601 instant as stored (or as `--json` gives it), for people."""
    return never if text is None else shown(parse_iso(text), tz)


def _age(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else int((now - since).total_seconds())


def text(report: dict, tz: str) -> str:
    """The report for a terminal: the verdict, the figures, then the reasons."""
    spool, outbox, dead = report["spool"], report["outbox"], report["dead_mail"]
    lines = [f"helpdeskd: {'healthy' if report['healthy'] else 'UNHEALTHY'}"]
    if report["listener"]:
        listener = report["listener"]
        lines.append(f"  listener     {listener['address']}: {listener['greeting']}")
    if report["disk"]:
        room = report["disk"]
        free, margin = disk.megabytes(room["free_bytes"]), disk.megabytes(room["margin_bytes"])
        lines.append(f"  disk         {free} free, margin {margin}")
    for box in report["mailboxes"]:
        lines.append(
            f"  mailbox      {box['name']}: last poll {_stored(box['last_poll'], tz, 'never')}"
        )
    lines += [
        f"  spool        {spool['waiting']} waiting, oldest {_stored(spool['oldest'], tz)}",
        f"  outbox       {outbox['queued']} queued, oldest due {_stored(outbox['oldest_due'], tz)}",
        f"  dead mail    {dead['outbox_failed']} given up, {dead['quarantined']} quarantined",
        f"  demoted      {report['demoted']['count']} in the last {report['demoted']['days']} days",
        f"  incidents    {', '.join(i['key'] for i in report['incidents']) or 'none'}",
        f"  last sweep   {_stored(report['last_sweep']['at'], tz, 'never')}",
    ]
    for node in report["nodes"]:
        beat = _stored(node["heartbeat"], tz)
        role = ", ".join(node["leases"]) or "no lease"
        state = "" if node["alive"] else ", silent"
        lines.append(f"  node         {node['name']}: heartbeat {beat}{state}; holds {role}")
    for due in report["next_deadlines"]:
        when = _stored(due["next_due"], tz)
        lines.append(f"  next due     {when}  {due['reference']} ({due['status']})")
    lines += [f"problem: {p}" for p in report["problems"]]
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
