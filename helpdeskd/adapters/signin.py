"""Sign-in without passwords: a single-use link mailed to an address helpdeskd already trusts,
then a signed session cookie with its CSRF token.

The cookie holds the address, an expiry and a random nonce, signed with HMAC-SHA256 under a
secret kept in a file of the state directory (created 0600 on first start, never in the TOML).
The CSRF token is an HMAC of the nonce, so it changes with every sign-in and needs no storage.
Links are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from helpdeskd.adapters.store import Cases, SignIns, Store
from helpdeskd.config import Config
from helpdeskd.core import access
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail

COOKIE = "helpdeskd_session"
# Per address and per client within the window: enough for a typo and a retry, too few to
# flood someone's mailbox through us.
LINKS_PER_ADDRESS = 3
REQUESTS_PER_CLIENT = 10
WINDOW = timedelta(minutes=15)
KEPT = timedelta(days=1)  # links and counts older than this serve nothing: they are deleted


def secret_path(config: Config) -> Path:
    if config.web.secret_file:
        return config.web.secret_file
    database = config.helpdesk.database
    # beside the database file, or where that file would be by default
    folder = database.parent if isinstance(database, Path) else config.path.parent / "var"
    return folder / "web-secret"


def load_secret(config: Config) -> bytes:
    """The signing secret, made on first use: readable by the daemon's user alone."""
    path = secret_path(config)
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        secret = secrets.token_bytes(32)
        with os.fdopen(fd, "w") as f:
            f.write(secret.hex())
        return secret


@dataclass(frozen=True)
class Session:
    address: str | None  # None: a visitor not signed in (who still gets a CSRF token)
    nonce: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, data: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}:{data}".encode(), hashlib.sha256).digest())


def seal(secret: bytes, session: Session) -> str:
    body = _b64(json.dumps([session.address, session.nonce, session.expires]).encode())
    return f"{body}.{_mac(secret, 'session', body)}"


def unseal(secret: bytes, cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie carries, if its signature holds and it has not expired."""
    body, _, mac = (cookie or "").partition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret, "session", body)):
        return None
    try:
        address, nonce, expires = json.loads(_unb64(body))
    except ValueError:
        return None
    return Session(address, nonce, expires) if expires > now.timestamp() else None


def new_session(address: str | None, ttl: int, now: datetime) -> Session:
    return Session(address, secrets.token_urlsafe(16), now.timestamp() + ttl)


def csrf_token(secret: bytes, session: Session) -> str:
    return _mac(secret, "csrf", session.nonce)


def csrf_ok(secret: bytes, session: Session | None, token: str | None) -> bool:
    return bool(session and token) and hmac.compare_digest(token, csrf_token(secret, session))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(store: Store, config: Config, address: str, client: str, now: datetime) -> str:
    """Mail a sign-in link when the address may see anything. Returns "sent", "unknown" or
    "limited"; the page says the same for the first two, so nobody learns who is known."""
    address = address.strip().lower()
    signins = SignIns(store)
    keys = [f"address:{address}", f"client:{client}"]
    with store.transaction():
        signins.forget(now - KEPT)
        if (
            signins.count(keys[0], now - WINDOW) >= LINKS_PER_ADDRESS
            or signins.count(keys[1], now - WINDOW) >= REQUESTS_PER_CLIENT
        ):
            return "limited"
        signins.note(keys, now)
        viewer = access.viewer_for(address, config)
        if not access.known(viewer, len(Cases(store).opened_by(address, limit=1))):
            return "unknown"
        token = secrets.token_urlsafe(32)
        signins.issue(token_hash(token), address, now, now + timedelta(seconds=config.web.link_ttl))
        queue_mail(store, config, link_mail(config, address, token), None, [], None, now)
    return "sent"


def link_mail(config: Config, address: str, token: str) -> Mail:
    minutes = config.web.link_ttl // 60
    context = {"link": f"{config.web.base_url}/signin/{token}", "minutes": minutes}
    return Mail(
        "signin_link",
        "signin_link",
        (address,),
        context,
        automatic="auto-generated",
        threaded=False,
    )


def redeem(store: Store, token: str, now: datetime) -> str | None:
    return SignIns(store).redeem(token_hash(token), now)
