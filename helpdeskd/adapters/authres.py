"""helpdeskd's own sender check at a first hop: DKIM, SPF and DMARC with their DNS lookups.

The libraries: `dkimpy` verifies DKIM signatures (RSA and Ed25519, every canonicalisation, and it
takes the DNS lookup as a function, so ours is used); `pyspf` evaluates SPF records with all their
mechanisms, macros and lookup limits; `dnspython` does the lookups, with a cache that keeps each
answer for its TTL, negative answers included. `authheaders` wraps the same dkimpy and pyspf, but
decides DMARC inside itself from a public suffix copy of 2019 and returns only a header string:
the rules that decide whether an engineer is proven would then be text to re-parse rather than
values. So the DMARC rules (policy, alignment) are ours, pure and tested in `core/authres.py`, and
the organisational domain comes from `publicsuffixlist`, which ships a current list and reads no
network.

DNS trouble (a time-out, no server answering) is `temperror`, never a pass; every lookup of one
message shares one deadline, so a dead resolver costs at most `dns_timeout` seconds per message,
and a name whose lookup failed is not asked again for TROUBLE_KEPT seconds: a burst from one
domain while its servers (or ours) are down waits once, not once per message.
"""

from __future__ import annotations

import contextvars
import functools
import re
import threading
import time
from types import ModuleType
from typing import TYPE_CHECKING

import structlog
from publicsuffixlist import PublicSuffixList

from helpdeskd.adapters.store import head_of
from helpdeskd.config import Authentication
from helpdeskd.core.authres import (
    TEMPORARY,
    Result,
    Verdict,
    dmarc_records,
    dmarc_result,
)

if TYPE_CHECKING:
    import dkim
    import dns.resolver

log = structlog.get_logger("helpdeskd.authres")

MAX_SIGNATURES = 8  # each costs a lookup: a message stuffed with signatures gets no more
_SIGNATURE_FIELD = re.compile(rb"(?im)^dkim-signature[ \t]*:")
TROUBLE_KEPT = 30.0  # seconds a failed lookup stays failed
TROUBLES_KEPT = 4096  # failed names remembered at most; past it the expired ones are dropped


class DnsTrouble(Exception):
    """No answer in time: the result is temporary, never a pass."""


@functools.cache
def suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the registrable domain, by the public suffix list."""
    domain = domain.lower().rstrip(".")
    return suffixes().privatesuffix(domain) or domain


class Troubles:
    """The lookups that failed lately, by name and type, with when they may be tried again."""

    def __init__(self) -> None:
        self.until: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()  # the messages of a group are checked side by side

    def recent(self, key: tuple[str, str], now: float) -> bool:
        return self.until.get(key, 0.0) > now

    def add(self, key: tuple[str, str], now: float) -> None:
        with self.lock:
            if len(self.until) >= TROUBLES_KEPT:
                self.until = {k: t for k, t in self.until.items() if t > now}
            self.until[key] = now + TROUBLE_KEPT


class Lookups:
    """The DNS lookups of one message: a shared, TTL-keeping resolver and one deadline."""

    def __init__(self, resolver: dns.resolver.Resolver, timeout: float, troubles: Troubles):
        self.resolver = resolver
        self.troubles = troubles
        self.deadline = time.monotonic() + timeout

    def answer(self, name: str, rdtype: str) -> list:
        now, key = time.monotonic(), (name.lower(), rdtype)
        if self.troubles.recent(key, now):
            raise DnsTrouble(f"{name} {rdtype}: failed less than {TROUBLE_KEPT:g} s ago")
        if now >= self.deadline:
            raise DnsTrouble(f"no time left to look up {name} {rdtype}")
        import dns.exception
        import dns.resolver

        try:
            answer = self.resolver.resolve(name, rdtype, lifetime=self.deadline - now, search=False)
            return list(answer)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:  # time-out, no server, a broken answer
            self.troubles.add(key, time.monotonic())
            raise DnsTrouble(f"{name} {rdtype}: {exc}") from exc

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self.answer(name, "TXT")]

    def dkim_key(self, name: bytes, timeout: float = 0) -> bytes | None:
        """dkimpy's `dnsfunc`: the key record, or None when there is none."""
        found = self.txt(name.decode("ascii", "replace").rstrip("."))
        return found[0].encode() if found else None

    def spf_answers(self, name: str, qtype: str, strict=True, timeout=None) -> list:
        """pyspf's `DNSLookup`, answering in its own shape."""
        try:
            records = self.answer(name, qtype)
        except DnsTrouble as exc:
            raise _spf().TempError(f"DNS {exc}") from exc
        shape = {
            "A": lambda r: r.address,
            "AAAA": lambda r: r.address,
            "MX": lambda r: (r.preference, r.exchange),
            "PTR": lambda r: r.target.to_text(True),
            "TXT": lambda r: r.strings,
            "SPF": lambda r: r.strings,
        }[qtype]
        return [((name, qtype), shape(r)) for r in records]


# pyspf looks names up through a module-level function; it is pointed once at the lookups of
# the message being checked in this thread
_current: contextvars.ContextVar[Lookups] = contextvars.ContextVar("helpdeskd_lookups")


@functools.cache
def _spf() -> ModuleType:
    """pyspf, imported on first use with its lookups pointed at ours. dkimpy, pyspf and
    dnspython cost each process some 100 ms to import, and only a first-hop entrance needs
    them."""
    import spf

    system_lookup = spf.DNSLookup

    def lookup(name, qtype, strict=True, timeout=None):
        lookups = _current.get(None)
        if lookups is None:
            return system_lookup(name, qtype, strict, timeout)
        return lookups.spf_answers(name, qtype, strict, timeout)

    spf.DNSLookup = lookup
    return spf


class Checker:
    """One per configuration: the resolver's cache lives as long as the daemon."""

    def __init__(self, settings: Authentication):
        self.settings = settings
        self.resolver = resolver_for(settings)
        self.troubles = Troubles()
        suffixes()  # read the public suffix list now, not on the first message

    def check(
        self,
        raw: bytes,
        from_domain: str,
        peer_ip: str | None = None,
        helo: str | None = None,
        mail_from: str | None = None,
    ) -> Verdict:
        lookups = Lookups(self.resolver, self.settings.dns_timeout, self.troubles)
        token = _current.set(lookups)
        try:
            signatures = dkim_results(raw, lookups)
            sender = spf_result(peer_ip, helo, mail_from)
            policy = dmarc_of(from_domain, signatures, sender, lookups)
        finally:
            _current.reset(token)
        shown = (*signatures, sender) if peer_ip else signatures
        return Verdict((*shown, policy), from_domain)


@functools.lru_cache(maxsize=4)
def checker(settings: Authentication) -> Checker:
    return Checker(settings)


def resolver_for(settings: Authentication) -> dns.resolver.Resolver:
    import dns.resolver

    if settings.dns_servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(settings.dns_servers)
    else:
        try:
            resolver = dns.resolver.Resolver()  # /etc/resolv.conf
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    resolver.port = settings.dns_port
    resolver.cache = dns.resolver.Cache()
    return resolver


def dkim_results(raw: bytes, lookups: Lookups) -> tuple[Result, ...]:
    """Every DKIM signature, each verified on its own (RFC 6376 §6.1)."""
    if not _signed(raw):
        return (Result("dkim", "none"),)
    import dkim

    try:
        verifier = dkim.DKIM(raw, timeout=max(lookups.deadline - time.monotonic(), 0.1))
    except Exception as exc:  # a message dkimpy cannot even split into headers
        return (Result("dkim", "permerror", "", f"unreadable: {exc}"),)
    headers = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    if not headers:
        return (Result("dkim", "none"),)
    return tuple(
        one_signature(verifier, i, value, lookups)
        for i, value in enumerate(headers[:MAX_SIGNATURES])
    )


def _signed(raw: bytes) -> bool:
    """Whether the header block has a DKIM-Signature field: unsigned mail (most of it) is
    not split into lines by dkimpy, attachments and all, to find none."""
    return _SIGNATURE_FIELD.search(head_of(raw)) is not None


def one_signature(verifier: dkim.DKIM, index: int, value: bytes, lookups: Lookups) -> Result:
    import dkim
    from dkim.util import parse_tag_value

    try:
        tags = parse_tag_value(value)
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace")
    except Exception:
        return Result("dkim", "permerror")
    try:
        ok = verifier.verify(idx=index, dnsfunc=lookups.dkim_key)
        return Result("dkim", "pass" if ok else "fail", domain, selector)
    except DnsTrouble:
        return Result("dkim", TEMPORARY, domain, selector)
    except dkim.ValidationError:
        return Result("dkim", "fail", domain, selector)
    except Exception as exc:  # a malformed signature or key: the signer's error, not ours
        log.info("dkim permerror", domain=domain, error=str(exc))
        return Result("dkim", "permerror", domain, selector)


def spf_result(peer_ip: str | None, helo: str | None, mail_from: str | None) -> Result:
    """SPF of the envelope sender (or, for a bounce, the HELO name) against the client's IP;
    without the client's IP (IMAP, `ingest`) there is nothing to check."""
    helo = (helo or "").strip()
    sender = (mail_from or "").strip() or (f"postmaster@{helo}" if helo else "")
    domain = sender.rpartition("@")[2].lower()
    if not peer_ip or not domain:
        return Result("spf", "none", domain)
    try:
        result, _, _ = _spf().query(i=peer_ip, s=sender, h=helo or domain).check()
    except Exception as exc:  # a bad address or record pyspf could not handle
        log.info("spf permerror", domain=domain, error=str(exc))
        result = "permerror"
    return Result("spf", result if result != "ambiguous" else "permerror", domain)


def dmarc_of(
    from_domain: str, signatures: tuple[Result, ...], sender: Result, lookups: Lookups
) -> Result:
    """The From domain's record, else its organisational domain's (RFC 7489 §6.6.3)."""
    if not from_domain:
        return Result("dmarc", "permerror", "", "no From domain")
    org = organisational_domain(from_domain)
    try:
        record, _ = dmarc_records(lookups.txt(f"_dmarc.{from_domain}"))
        record_domain = from_domain
        if record is None and org != from_domain:
            record, _ = dmarc_records(lookups.txt(f"_dmarc.{org}"))
            record_domain = org
    except DnsTrouble:
        return Result("dmarc", TEMPORARY, from_domain)
    return dmarc_result(
        from_domain, record, record_domain, signatures, sender, organisational_domain
    )
