"""The read API over real HTTP against the daemon, on SQLite and on PostgreSQL: tokens from
`helpdeskd token`, scoped to a customer or not, revoked, rate-limited, and every answer checked
against the OpenAPI description the server publishes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpdeskd.adapters.api import PER_MINUTE
from tests.support import (
    Daemon,
    Sink,
    call_in_process,
    cli,
    free_port,
    mail,
    run_in_process,
    send,
    wait_for_port,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WEB = """
[web]
enabled = true
port = {port}
base_url = "http://127.0.0.1:{port}"
"""


@pytest.fixture
def api(tmp_path: Path, sink: Sink, database):
    smtp, web = free_port(), free_port()
    config = write_config(
        tmp_path, smtp_port=smtp, relay_port=sink.port, extra=WEB.format(port=web)
    )
    with Daemon(config, smtp) as daemon:
        wait_for_port(web, daemon.proc)
        send(smtp, mail("jane@acme.test", "Portal down", "since 9:00"))
        send(smtp, mail("boss@globex.test", "Invoice wrong", "twice the amount"))
        deadline = time.monotonic() + 20
        while len(listed(config)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield Api(config, f"http://127.0.0.1:{web}/api/v1", daemon)


class Api:
    def __init__(self, config: Path, base: str, daemon: Daemon):
        self.config, self.base, self.daemon = config, base, daemon

    def token(self, name: str, *options: str) -> str:
        return run_in_process(self.config, "token", "create", name, *options).splitlines()[-1]

    def get(self, path: str, token: str | None = None) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def listed(config: Path) -> list[dict]:
    return json.loads(call_in_process(config, "cases", "--json")[1] or "[]")


def reference_of(config: Path, customer: str) -> str:
    return next(c["reference"] for c in listed(config) if c["customer"] == customer)


# -- a small JSON Schema check: the keywords the OpenAPI file uses -----------------------------

TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def check(value, schema: dict, spec: dict, where: str = "$") -> set[str]:
    """Raise AssertionError where `value` breaks `schema`; return the property names it
    evaluated (for unevaluatedProperties)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return check(value, spec["components"]["schemas"][name], spec, where)
    seen: set[str] = set()
    for part in schema.get("allOf", []):
        seen |= check(value, part, spec, where)
    kinds = schema.get("type")
    if kinds:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        ok = any(
            isinstance(value, TYPES[k])
            and not (k in ("integer", "number") and value is True)
            and not (k in ("integer", "number") and value is False)
            for k in kinds
        )
        assert ok, f"{where}: {value!r} is not {kinds}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: {key} missing"
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key in value:
                check(value[key], sub, spec, f"{where}.{key}")
        seen |= set(properties)
        extra = schema.get("additionalProperties")
        for key in set(value) - set(properties):
            assert extra is not False, f"{where}: unexpected {key}"
            if isinstance(extra, dict):
                check(value[key], extra, spec, f"{where}.{key}")
                seen.add(key)
        if schema.get("unevaluatedProperties") is False:
            assert set(value) <= seen, f"{where}: not in the schema: {set(value) - seen}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], spec, f"{where}[{i}]")
    return seen


def matches(api: Api, spec: dict, path: str, template: str, status: int, body) -> None:
    answer = spec["paths"][template]["get"]["responses"][str(status)]
    check(body, answer["content"]["application/json"]["schema"], spec, path)


# -- the tests ---------------------------------------------------------------------------------


def test_a_token_scoped_to_one_customer_never_sees_another_customers_case(api: Api):
    acme, everyone = api.token("crm", "--customer", "acme.test"), api.token("dashboard")
    mine, theirs = reference_of(api.config, "Acme"), reference_of(api.config, "Globex")
    status, cases = api.get("/cases", acme)
    assert status == 200 and [c["reference"] for c in cases] == [mine]
    assert api.get(f"/cases/{theirs}", acme) == (404, {"error": f"no case {theirs}"})
    assert api.get(f"/cases/{mine}", acme)[0] == 200
    status, rows = api.get("/report", acme)
    assert status == 200 and {r["customer"] for r in rows} == {"Acme"}
    status, cases = api.get("/cases", everyone)
    assert cases == listed(api.config)  # the same JSON as `cases --json`
    assert api.get("/cases?priority=P1", everyone)[1] == [c for c in cases if c["priority"] == "P1"]
    status, shown = api.get(f"/cases/{theirs}", everyone)
    by_cli = json.loads(run_in_process(api.config, "show", theirs, "--json"))
    assert {k: v for k, v in shown.items() if k != "clocks"} == {
        k: v for k, v in by_cli.items() if k != "clocks"
    }  # clocks measure used and left time at each request's own now
    assert [c["name"] for c in shown["clocks"]] == [c["name"] for c in by_cli["clocks"]]


def test_the_answers_match_the_published_openapi_description(api: Api):
    token = api.token("dashboard")
    status, spec = api.get("/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.1")
    reference = reference_of(api.config, "Acme")
    for path, template in [
        ("/cases", "/cases"),
        (f"/cases/{reference}", "/cases/{reference}"),
        ("/report", "/report"),
        ("/report?since=2026-01-01", "/report"),
    ]:
        status, body = api.get(path, token)
        assert status == 200, body
        matches(api, spec, path, template, status, body)
    for path, template, status_wanted, given in [
        ("/cases", "/cases", 401, None),
        ("/cases/HD-2026-99999", "/cases/{reference}", 404, token),
        ("/report?since=yesterday", "/report", 400, token),
    ]:
        status, body = api.get(path, given)
        assert status == status_wanted
        matches(api, spec, path, template, status, body)


def test_a_revoked_token_gets_401_and_only_its_hash_is_kept(api: Api, database):
    done = cli(api.config, "token", "create", "crm")
    printed = done.stdout.decode().splitlines()
    token = printed[-1]
    assert token.startswith("hdk_") and token not in "\n".join(printed[:-1])
    assert api.get("/cases", token)[0] == 200
    assert cli(api.config, "token", "create", "crm").returncode == 64  # a name is not reused
    assert cli(api.config, "token", "revoke", "crm").returncode == 0
    assert api.get("/cases", token) == (401, {"error": "a valid bearer token is required"})
    assert api.get("/cases", "hdk_made-up")[0] == 401
    assert api.get("/cases")[0] == 401
    assert "crm" in run_in_process(api.config, "token", "list")
    if isinstance(database, Path):
        assert token.encode() not in database.read_bytes()
    log = api.daemon.log.read_text()
    assert '"token": "crm"' in log and '"status": 401' in log and '"api request"' in log


def test_a_token_is_rate_limited(api: Api):
    token = api.token("busy")
    answers = [api.get("/report", token)[0] for _ in range(PER_MINUTE + 1)]
    assert answers[:PER_MINUTE] == [200] * PER_MINUTE and answers[-1] == 429
    other = api.token("calm")
    assert api.get("/report", other)[0] == 200  # each token its own count
