"""[web]: the optional status page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from helpdeskd.config.reader import Reader, _port


@dataclass(frozen=True)
class Web:
    """The optional status page. Off by default: no port is opened unless an admin says so."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    link_ttl: int = 900  # seconds a mailed sign-in link stays valid (wall-clock time)
    session_ttl: int = 8 * 3600  # seconds a sign-in lasts
    secret_file: Path | None = None  # default: web-secret beside the database

    @property
    def secure(self) -> bool:
        """Behind TLS the session cookie is marked Secure."""
        return self.base_url.startswith("https://")


def _web(r: Reader, t: dict) -> Web:
    p = "web"
    r.unknown(
        t, p, {"enabled", "host", "port", "base_url", "link_ttl", "session_ttl", "secret_file"}
    )
    port = _port(r, t, p, Web.port)
    base_url = r.get(t, "base_url", p, str, f"http://127.0.0.1:{port}").rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", base_url):
        r.problem(f"{p}.base_url", f"not an http(s) URL: {base_url!r}")
    return Web(
        enabled=r.get(t, "enabled", p, bool, False),
        host=r.get(t, "host", p, str, Web.host),
        port=port,
        base_url=base_url,
        link_ttl=r.positive(t, "link_ttl", p, Web.link_ttl),
        session_ttl=r.positive(t, "session_ttl", p, Web.session_ttl),
        secret_file=r.path(t, "secret_file", p),
    )
