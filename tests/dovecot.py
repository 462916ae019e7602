"""A real Dovecot for the IMAP tests: on 127.0.0.1, free ports, its own config, Maildirs and
logs in a temporary folder, stopped and removed afterwards.

It serves plain IMAP (cleartext login allowed, STARTTLS offered) and IMAPS with a self-signed
certificate made here, passwords from a passwd-file, and XOAUTH2 tokens checked against a small
OAuth2 introspection endpoint that this module runs on 127.0.0.1 (`tokens` says which token is
valid for whom).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.support import self_signed_certificate

START_TIMEOUT = 15.0  # seconds for Dovecot to listen or to go away


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dovecot_binary() -> str | None:
    """Where Dovecot is; /usr/sbin is often not on a non-root user's PATH."""
    candidates = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
    return shutil.which("dovecot") or next((p for p in candidates if os.path.exists(p)), None)


def dovecot_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    major, minor = out.stdout.split()[0].split(".")[:2]
    return int(major), int(minor)


class Introspection:
    """An OAuth2 token introspection endpoint (RFC 7662) for Dovecot's oauth2 passdb."""

    def __init__(self):
        self.tokens: dict[str, str] = {}  # token -> user it is valid for
        tokens = self.tokens

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # Dovecot keeps its connection open between lookups

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                user = tokens.get(form.get("token", [""])[0])
                body = json.dumps({"active": user is not None, "username": user or ""})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):  # keep pytest's output for failures
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Dovecot:
    def __init__(self, users: dict[str, str], binary: str):
        self.users = dict(users)
        self.binary = binary
        self.version = dovecot_version(binary)
        # Not pytest's tmp_path: Dovecot's mail processes run as an unprivileged user when we are
        # root, and must be able to reach the Maildirs.
        self.root = Path(tempfile.mkdtemp(prefix="helpdeskd-dovecot-"))
        self.root.chmod(0o755)
        self.port, self.ssl_port = free_port(), free_port()
        self.oauth2 = Introspection()
        self.tokens = self.oauth2.tokens
        self.cafile = self._certificate()
        self.process: subprocess.Popen | None = None
        self._write_config()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "ab"),  # noqa: SIM115
            start_new_session=True,  # its own process group, so that stop() ends every child
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        # the whole group at once: a stopped master leaves its IMAP connections open otherwise
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=START_TIMEOUT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None
        self._wait_closed()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.oauth2.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _wait_closed(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while self._listening() and time.monotonic() < deadline:
            time.sleep(0.05)

    def log(self) -> str:
        logs = (self.root / "stderr.log", self.root / "dovecot.log")
        return "".join(p.read_text(errors="replace") for p in logs if p.exists())

    # -- mail -------------------------------------------------------------------------------

    def client(self, user: str) -> IMAPClient:
        client = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in `folder`, oldest first ([] if the folder does not exist)."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            fetched = client.fetch(client.search(["ALL"]), [b"BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def flags(self, user: str, folder: str = "INBOX") -> list[tuple[bytes, ...]]:
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            fetched = client.get_flags(client.search(["ALL"]))
            return [fetched[uid] for uid in sorted(fetched)]

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> None:
        """What a server migration does: same messages, new UIDVALIDITY, new UIDs."""
        self.stop()
        maildir = self.root / "mail" / user
        for name in (
            "dovecot-uidlist",
            "dovecot.index",
            "dovecot.index.log",
            "dovecot.index.cache",
            "dovecot-uidvalidity",
        ):
            (maildir / name).unlink(missing_ok=True)
        for stale in maildir.glob("dovecot-uidvalidity.*"):
            stale.unlink()
        self.start()

    # -- configuration ----------------------------------------------------------------------

    def _mail_owner(self) -> tuple[int, int, str, str]:
        """uid, gid, internal user and login user Dovecot should use."""
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid())
            return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name
        # root: mail processes must not run as root; the packaged system users do the rest
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid, "dovecot", "dovenull"

    def _certificate(self) -> Path | None:
        if shutil.which("openssl") is None:
            return None
        cert, key = self_signed_certificate(self.root)
        key.chmod(0o644)  # read by Dovecot's unprivileged processes in this throwaway setup
        return cert

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))

    def write_users(self) -> None:
        uid, gid, _, _ = self._mail_owner()
        lines = [
            f"{u}:{{PLAIN}}{p}:{uid}:{gid}::{self.root / 'mail' / u}::"
            for u, p in self.users.items()
        ]
        (self.root / "users").write_text("\n".join(lines) + "\n")

    def _write_config(self) -> None:
        uid, gid, internal, login = self._mail_owner()
        for name in ("run", "state", "mail"):
            (self.root / name).mkdir()
        if os.geteuid() == 0:
            os.chown(self.root / "mail", uid, gid)
        self.write_users()
        (self.root / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {self.oauth2.url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        (self.root / "dovecot.conf").write_text(self._config_23(uid, internal, login))

    def _config_23(self, uid: int, internal: str, login: str) -> str:
        root = self.root
        ssl_lines = (
            f"ssl = yes\nssl_cert = <{self.cafile}\nssl_key = <{root / 'key.pem'}\n"
            if self.cafile
            else "ssl = no\n"
        )
        chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root / "run"}
state_dir = {root / "state"}
log_path = {root / "dovecot.log"}
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {uid}
mail_location = maildir:~
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {root / "oauth2.conf"}
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {root / "users"}
}}
userdb {{
  driver = passwd-file
  args = {root / "users"}
}}
service anvil {{
  # no growing delay after failed logins from 127.0.0.1: the tests fail logins on purpose
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port if self.cafile else 0}
  }}
}}
"""


@pytest.fixture
def dovecot():
    """A running Dovecot with users alice and bob (passwords `alice-secret`, `bob-secret`)."""
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot not installed")
    if dovecot_version(binary) >= (2, 4):
        # 2.4 renamed most of what this file writes (passdb/userdb, mail_location, ssl_cert,
        # the oauth2 settings); its configuration is still to be written and tried.
        pytest.skip("tests/dovecot.py writes a Dovecot 2.3 configuration")
    server = Dovecot({"alice": "alice-secret", "bob": "bob-secret"}, binary)
    try:
        server.start()
        yield server
    finally:
        server.close()
