"""A plain HTTP client for the status page: cookies kept, forms posted with their CSRF token,
files uploaded as multipart/form-data. Real HTTP to the daemon the test starts."""

from __future__ import annotations

import http.cookiejar
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    url: str
    text: str
    headers: dict

    @property
    def csrf(self) -> str:
        found = CSRF.search(self.text)
        assert found, f"no CSRF token on {self.url}"
        return found.group(1)


class Browser:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str, headers: dict | None = None) -> Page:
        return self._open(urllib.request.Request(self.url(path), headers=headers or {}))

    def post(self, path: str, fields: dict, files: list[tuple[str, str, bytes]] = ()) -> Page:
        if files:
            body, kind = multipart(fields, files)
        else:
            body, kind = (
                urllib.parse.urlencode(fields).encode(),
                "application/x-www-form-urlencoded",
            )
        request = urllib.request.Request(self.url(path), data=body, method="POST")
        request.add_header("Content-Type", kind)
        return self._open(request)

    def post_raw(self, path: str, body: bytes, kind: str) -> Page:
        """A body and Content-Type as given, however malformed."""
        request = urllib.request.Request(self.url(path), data=body, method="POST")
        request.add_header("Content-Type", kind)
        return self._open(request)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def _open(self, request) -> Page:
        try:
            with self.opener.open(request, timeout=20) as r:
                return Page(r.status, r.url, r.read().decode("utf-8", "replace"), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Page(
                e.code, request.full_url, e.read().decode("utf-8", "replace"), dict(e.headers)
            )


def multipart(fields: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
