"""A real DNS server for tests: dnslib on 127.0.0.1, UDP and TCP, serving the records a test
gives it, counting every query, and dropping those for names it is told to (a time-out)."""

from __future__ import annotations

import base64
import threading
from collections import Counter

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import QTYPE, RCODE, RR, SOA, TXT, DNSLabel
from dnslib.server import BaseResolver, DNSError, DNSLogger, DNSServer

from tests.support import free_port

TTL = 300


def dkim_key() -> tuple[bytes, str]:
    """A fresh RSA key: the private key in PEM for dkimpy, the DNS record for the public one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


class Zone(BaseResolver):
    """TXT records by name; everything else is NXDOMAIN, with an SOA so that the answer can
    be cached like a real one."""

    def __init__(self, records: dict[str, str]):
        self.records = {name.lower(): value for name, value in records.items()}
        self.queries: Counter = Counter()
        self.dropped: set[str] = set()  # names whose queries are never answered
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self.lock:
            self.queries[(name, kind)] += 1
        if any(name == d or name.endswith("." + d) for d in self.dropped):
            raise DNSError("dropped")  # dnslib then sends nothing
        reply = request.reply()
        value = self.records.get(name)
        if value is not None and kind == "TXT":
            # strings of at most 255 bytes each, as a DKIM key needs
            chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
            reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=TTL))
            return reply
        if value is None:
            reply.header.rcode = RCODE.NXDOMAIN
        zone = ".".join(name.split(".")[-2:])
        soa = SOA(f"ns.{zone}", f"hostmaster.{zone}", (1, 3600, 600, 86400, TTL))
        reply.add_auth(RR(DNSLabel(zone), QTYPE.SOA, rdata=soa, ttl=TTL))
        return reply

    def count(self) -> int:
        with self.lock:
            return sum(self.queries.values())


class DnsServer:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.port = free_port()
        quiet = DNSLogger(logf=lambda _: None)
        self.servers = [
            DNSServer(zone, address="127.0.0.1", port=self.port, tcp=tcp, logger=quiet)
            for tcp in (False, True)
        ]

    def __enter__(self) -> DnsServer:
        for server in self.servers:
            server.start_thread()
        return self

    def __exit__(self, *exc) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()
