"""Who proved what: DKIM, SPF and DMARC verdicts, and the Authentication-Results that say so (pure).

The DNS lookups and the signature checks live in `adapters/authres.py`; here are the rules that
turn their answers into a verdict (RFC 7489 DMARC: policy, alignment, the organisational domain),
the header that records it (RFC 8601), and the reading of a trusted MTA's header.

The organisational domain needs the public suffix list; it is handed in as a function, so these
rules stay plain functions of their arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from helpdeskd.model import Inbound

OrgDomain = Callable[[str], str]
TEMPORARY = "temperror"


@dataclass(frozen=True)
class Result:
    """One method's result, as RFC 8601 writes it."""

    method: str  # dkim | spf | dmarc | auth (signed in to the status page)
    result: str  # pass | fail | none | neutral | softfail | policy | temperror | permerror
    domain: str = ""  # dkim: header.d; spf: the envelope sender's domain; dmarc: header.from
    detail: str = ""  # dkim: the selector; dmarc: the policy applied (p=reject ...)

    def property(self) -> str:
        if self.method == "dkim":
            selector = f" header.s={self.detail}" if self.detail else ""
            return f"header.d={self.domain}{selector}" if self.domain else ""
        if self.method == "spf":
            return f"smtp.mailfrom={self.domain}" if self.domain else ""
        if self.method == "auth":
            return f"smtp.auth={self.detail}"
        return f"header.from={self.domain}" if self.domain else ""


@dataclass(frozen=True)
class Verdict:
    results: tuple[Result, ...]
    from_domain: str

    def of(self, method: str) -> tuple[Result, ...]:
        return tuple(r for r in self.results if r.method == method)

    @property
    def proven(self) -> bool:
        """DMARC passed, or a DKIM signature of the From domain's organisation verified."""
        return any(
            r.result == "pass" and r.domain in ("", self.from_domain) for r in self.of("dmarc")
        ) or any(
            r.result == "pass" and relaxed(r.domain, self.from_domain)
            for r in (*self.of("dkim"), *self.of("auth"))
        )

    @property
    def refused(self) -> str | None:
        """The DMARC policy this mail fails, when its From domain asks for failures to be
        refused (`p=reject`, `p=quarantine`); a trusted MTA's dmarc=fail that names no policy
        counts as such. None when the mail fails no enforcing policy, or might have passed."""
        for r in self.of("dmarc"):
            if r.result == "fail" and r.domain in ("", self.from_domain) and r.detail != "p=none":
                return r.detail or "policy not given"
        return None

    def summary(self) -> str:
        """What `show` prints: `dkim=pass (acme.test) spf=none dmarc=pass (acme.test)`."""
        return " ".join(
            f"{r.method}={r.result}" + (f" ({r.domain})" if r.domain else "") for r in self.results
        )


def signed_in(address: str) -> Verdict:
    """Mail written on the status page: its From is the address a mailed sign-in link proved,
    as SMTP AUTH proves a submitting user (RFC 8601 `auth`)."""
    domain = address.rpartition("@")[2]
    return Verdict((Result("auth", "pass", domain, address),), domain)


def header_value(authserv_id: str, verdict: Verdict) -> str:
    """The Authentication-Results value helpdeskd writes into the stored message."""
    parts = [authserv_id]
    for r in verdict.results:
        comment = f" ({r.detail})" if r.method == "dmarc" and r.detail else ""
        prop = r.property()
        parts.append(f"{r.method}={r.result}{comment}" + (f" {prop}" if prop else ""))
    return ";\r\n\t".join(parts) if len(parts) > 1 else f"{authserv_id}; none"


# -- DMARC (RFC 7489) ------------------------------------------------------------------------


@dataclass(frozen=True)
class DmarcRecord:
    policy: str  # none | quarantine | reject
    subdomain_policy: str | None
    strict_dkim: bool
    strict_spf: bool


DMARC_TAG = re.compile(r"\s*([a-z]+)\s*=\s*([^;]*?)\s*(?:;|$)", re.I)
POLICIES = ("none", "quarantine", "reject")


def parse_dmarc(text: str) -> DmarcRecord | None:
    """A `v=DMARC1; p=...` record, or None when it is not one (RFC 7489 §6.3: v first, then
    a valid p; an unknown policy makes the record unusable)."""
    tags = {k.lower(): v for k, v in DMARC_TAG.findall(text)}
    if not text.strip().lower().startswith("v") or tags.get("v", "").upper() != "DMARC1":
        return None
    policy = tags.get("p", "").lower()
    if policy not in POLICIES:
        return None
    sub = tags.get("sp", "").lower()
    return DmarcRecord(
        policy=policy,
        subdomain_policy=sub if sub in POLICIES else None,
        strict_dkim=tags.get("adkim", "r").lower() == "s",
        strict_spf=tags.get("aspf", "r").lower() == "s",
    )


def dmarc_records(texts: list[str]) -> tuple[DmarcRecord | None, bool]:
    """The one DMARC record among a name's TXT strings; (None, False) when there is none and
    (None, True) when there are several, which RFC 7489 §6.6.3 says to treat as none."""
    records = [r for r in map(parse_dmarc, texts) if r is not None]
    return (records[0], False) if len(records) == 1 else (None, len(records) > 1)


def aligned(domain: str, from_domain: str, strict: bool, org: OrgDomain) -> bool:
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not domain or not from_domain:
        return False
    return domain == from_domain or (not strict and org(domain) == org(from_domain))


def dmarc_result(
    from_domain: str,
    record: DmarcRecord | None,
    record_domain: str,
    dkim: tuple[Result, ...],
    spf: Result,
    org: OrgDomain,
) -> Result:
    """pass when an aligned DKIM signature or an aligned SPF pass backs the From domain;
    otherwise fail with the domain's policy (sp= for a subdomain of the organisation)."""
    if record is None:
        return Result("dmarc", "none", from_domain)
    dkim_ok = any(
        r.result == "pass" and aligned(r.domain, from_domain, record.strict_dkim, org) for r in dkim
    )
    spf_ok = spf.result == "pass" and aligned(spf.domain, from_domain, record.strict_spf, org)
    policy = record.policy
    if record_domain != from_domain and record.subdomain_policy:
        policy = record.subdomain_policy
    if dkim_ok or spf_ok:
        return Result("dmarc", "pass", from_domain, f"p={policy}")
    # a signature or SPF answer we could not fetch might have passed: not a failure yet
    if any(r.result == TEMPORARY for r in (*dkim, spf)):
        return Result("dmarc", TEMPORARY, from_domain, f"p={policy}")
    return Result("dmarc", "fail", from_domain, f"p={policy}")


def relaxed(signer: str, from_domain: str) -> bool:
    """Relaxed alignment without the public suffix list: the same domain or one inside the
    other (a trusted MTA's header names the signer; `co.uk` never holds a DKIM key)."""
    signer, from_domain = signer.lower().rstrip("."), from_domain.lower().rstrip(".")
    return bool(from_domain) and (
        signer == from_domain
        or from_domain.endswith("." + signer)
        or signer.endswith("." + from_domain)
    )


# -- reading a trusted header (RFC 8601) -----------------------------------------------------

RESULT = re.compile(r"\b(dmarc|dkim|spf)\s*=\s*(\w+)([^;]*)", re.I)
PROPERTY = {
    "dkim": re.compile(r"header\.[di]\s*=\s*@?([\w.-]+)", re.I),
    "spf": re.compile(r"smtp\.mailfrom\s*=\s*(?:[^@\s;]*@)?([\w.-]+)", re.I),
    "dmarc": re.compile(r"header\.from\s*=\s*([\w.-]+)", re.I),
}


# how MTAs name the policy a failing mail was held to: OpenDMARC and Gmail `(p=reject ...)`,
# rspamd `(policy=reject)`, others `policy.dmarc=reject`
DMARC_POLICY = re.compile(
    r"(?<![\w.-])(?:p|policy|policy\.dmarc)\s*=\s*(none|quarantine|reject)\b", re.I
)


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value, lower-cased ("" when none)."""
    head = value.split(";", 1)[0].split()
    return head[0].lower() if head else ""


def topmost(inbound: Inbound, trusted: str | None) -> str | None:
    """The topmost Authentication-Results of the trusted authserv-id: the one its hop added
    last. Any further down, or of another id, was written by someone else (RFC 8601 §5)."""
    if not trusted:
        return None
    wanted = trusted.lower()
    return next(
        (h for h in inbound.header_all("Authentication-Results") if authserv_id(h) == wanted),
        None,
    )


def read(value: str | None, from_domain: str) -> Verdict:
    """A verdict from a trusted header; no header proves nothing."""
    if value is None:
        return Verdict((), from_domain)
    body = value.split(";", 1)[1] if ";" in value else ""
    found = []
    for method, result, props in RESULT.findall(body):
        method = method.lower()
        domain = PROPERTY[method].search(props)
        policy = DMARC_POLICY.search(props) if method == "dmarc" else None
        found.append(
            Result(
                method,
                result.lower(),
                domain.group(1).lower() if domain else "",
                f"p={policy.group(1).lower()}" if policy else "",
            )
        )
    return Verdict(tuple(found), from_domain)
