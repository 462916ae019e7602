"""Sign-in without passwords: a single-use link mailed to an address helpdeskd already trusts,
then a signed session cookie with its CSRF token.

The cookie holds the address, an expiry and a random nonce, signed with HMAC-SHA256 under a
secret kept in a file of the state directory (created 0600 on first start, never in the TOML;
one too short to be a key is replaced, never used).
The CSRF token is an HMAC of the nonce, so it changes with every sign-in and needs no storage.
A signed-in session also needs its row in the store (the nonce's hash, with the role it was
opened for): sign-out, `helpdeskd web sign-out` and a role taken away delete it, and the cookie,
copies included, opens nothing from then on. Links are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from helpdeskd import files
from helpdeskd.adapters.store import Cases, Sessions, SignIns, Store
from helpdeskd.config import Config
from helpdeskd.core import access
from helpdeskd.model import Mail
from helpdeskd.pipeline import queue_mail

log = structlog.get_logger("helpdeskd.signin")

COOKIE = "helpdeskd_session"
SECRET_BYTES = 32  # HMAC-SHA256's own size: a shorter key is weaker, an empty one no key
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
    """The signing secret, made on first use: readable by the daemon's user alone. One that
    cannot be a key (empty after a full disk, cut short, edited) would let anyone sign a
    session: it is replaced, which ends every session, and the log says so."""
    path = secret_path(config)
    while True:
        try:
            secret = _read_secret(path)
        except FileNotFoundError:
            secret = secrets.token_bytes(SECRET_BYTES)
            if files.write_private(path, secret.hex().encode(), overwrite=False):
                return secret
            continue  # another process made it meanwhile: use theirs
        if secret is not None:
            return secret
        log.warning(
            "web secret replaced",
            path=str(path),
            why=f"not a key of {SECRET_BYTES} bytes in hex: every session signed with it ends",
        )
        secret = secrets.token_bytes(SECRET_BYTES)
        files.write_private(path, secret.hex().encode(), overwrite=True)
        return secret


def _read_secret(path: Path) -> bytes | None:
    """The key the file holds, or None when it holds no usable one."""
    text = path.read_bytes().decode("ascii", "replace")  # a stray byte fails fromhex below
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        return None
    return secret if len(secret) >= SECRET_BYTES else None


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
    if not body or not _same(mac, _mac(secret, "session", body)):
        return None
    try:
        address, nonce, expires = json.loads(_unb64(body))
    except ValueError:
        return None
    return Session(address, nonce, expires) if expires > now.timestamp() else None


def new_session(address: str | None, ttl: int, now: datetime) -> Session:
    return Session(address, secrets.token_urlsafe(16), now.timestamp() + ttl)


def open_session(store: Store, config: Config, address: str, now: datetime) -> Session:
    """A signed-in session, kept in the store with the role it is opened for."""
    session = new_session(address, config.web.session_ttl, now)
    role = access.viewer_for(address, config).role
    expires = datetime.fromtimestamp(session.expires, now.tzinfo)
    Sessions(store).start(token_hash(session.nonce), address, role, now, expires)
    return session


def still_open(store: Store, config: Config, session: Session, now: datetime) -> bool:
    """Whether a signed-in session was not ended: signed out, or its address's role changed
    (an engineer removed from the configuration is an engineer no more)."""
    sessions = Sessions(store)
    row = sessions.find(token_hash(session.nonce), now)
    if row is None or row["address"] != session.address:
        return False
    if row["role"] != access.viewer_for(session.address, config).role:
        sessions.end(token_hash(session.nonce))
        return False
    return True


def close_session(store: Store, session: Session) -> None:
    Sessions(store).end(token_hash(session.nonce))


def sign_out(store: Store, address: str) -> int:
    """End every session of the address, wherever it was opened; how many there were."""
    return Sessions(store).end_all(normal(address))


def csrf_token(secret: bytes, session: Session) -> str:
    return _mac(secret, "csrf", session.nonce)


def csrf_ok(secret: bytes, session: Session | None, token: str | None) -> bool:
    return bool(session and token) and _same(token, csrf_token(secret, session))


def _same(given: str, expected: str) -> bool:
    """In constant time; as bytes, since compare_digest refuses a str beyond ASCII, which a
    visitor may send."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(store: Store, config: Config, address: str, client: str, now: datetime) -> str:
    """`admit`, then `mail_link`: "sent", "unknown" or "limited"."""
    if not admit(store, address, client, now):
        return "limited"
    return "sent" if mail_link(store, config, address, now) else "unknown"


def admit(store: Store, address: str, client: str, now: datetime) -> bool:
    """Whether a request for a link is within the limits, counted. All the page's answer may
    depend on: it is not given the configuration, so it cannot tell who is known."""
    signins = SignIns(store)
    keys = [f"address:{normal(address)}", f"client:{client}"]
    with store.transaction():
        signins.forget(now - KEPT)
        if (
            signins.count(keys[0], now - WINDOW) >= LINKS_PER_ADDRESS
            or signins.count(keys[1], now - WINDOW) >= REQUESTS_PER_CLIENT
        ):
            return False
        signins.note(keys, now)
    return True


def mail_link(store: Store, config: Config, address: str, now: datetime) -> bool:
    """Queue a sign-in link when the address may see anything; False when it may not. Done
    after the page has answered: only here do known and unknown addresses differ."""
    address = normal(address)
    with store.transaction():
        viewer = access.viewer_for(address, config)
        if not access.known(viewer, len(Cases(store).of_person(address, limit=1))):
            return False
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=config.web.link_ttl)
        SignIns(store).issue(token_hash(token), address, now, expires)
        queue_mail(store, config, link_mail(config, address, token), None, [], None, now)
    return True


def normal(address: str) -> str:
    return address.strip().lower()


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
