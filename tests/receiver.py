"""A real HTTP server on 127.0.0.1 standing in for a system that takes webhooks: it keeps
every request it receives, and can hang, redirect or refuse as a test asks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import free_port


class Receiver:
    def __init__(self, port: int | None = None, *, redirect: str | None = None):
        self.port = port or free_port()
        self.redirect = redirect  # a Location to send every request to (302)
        self.requests: list[dict] = []
        self.hang = threading.Event()  # set: requests wait until it is cleared
        self.lock = threading.Condition()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                while receiver.hang.is_set():
                    time.sleep(0.05)
                if receiver.redirect:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    receiver.lock.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"thanks " + b"x" * 5000)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.hang.clear()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def events(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.requests) < count and time.monotonic() < deadline:
                self.lock.wait(0.1)
        return self.events()


def signed(secret: bytes, request: dict) -> bool:
    """What a receiver does: the body's HMAC-SHA256 with the shared secret, compared in
    constant time with the X-Helpdeskd-Signature header."""
    expected = "sha256=" + hmac.new(secret, request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"].get("X-Helpdeskd-Signature", ""))
