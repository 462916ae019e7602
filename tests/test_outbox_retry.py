"""`helpdeskd outbox --retry-now / --retry ID / --drop ID`: after a relay outage the admin
sends what waits out its back-off at once, and retries or drops mail that was given up on,
against a real relay the test starts once the outage is over."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import Sink, cli, mail, write_config
from tests.support import run_in_process as run


def waiting(config: Path) -> list[dict]:
    return json.loads(run(config, "outbox", "--json"))


def outage(tmp_path: Path, relay: Sink, **outbound: int) -> Path:
    """A case opened while the relay is down: its two mails wait in the outbox."""
    config = write_config(tmp_path, relay_port=relay.port)
    text = config.read_text().replace("backoff = 1\nbackoff_max = 2", "backoff = 3600")
    extra = "".join(f"{k} = {v}\n" for k, v in outbound.items())
    config.write_text(text.replace("backoff = 3600\n", "backoff = 3600\n" + extra))
    run(config, "ingest", "-", stdin=mail("jane@acme.test", "Server down", "x").as_bytes())
    return config


def test_retry_now_sends_what_waits_out_its_back_off(tmp_path: Path):
    relay = Sink()  # its port is chosen; it starts listening only after the outage
    config = outage(tmp_path, relay)
    assert [m["state"] for m in waiting(config)] == ["queued", "queued"]
    with relay:
        assert run(config, "outbox", "--flush").startswith("sent 0, deferred 0")  # back-off
        out = run(config, "outbox", "--flush", "--retry-now")
        assert out.startswith("2 message(s) waiting out a back-off due now\nsent 2,")
        assert len(relay.wait_for(lambda m: "Server down" in str(m["Subject"]))) == 2
    assert waiting(config) == []


def test_mail_given_up_on_is_retried_or_dropped_by_id(tmp_path: Path):
    relay = Sink()
    config = outage(tmp_path, relay, max_attempts=1)  # the first failure gives up
    ack, note = waiting(config)
    assert ack["state"] == note["state"] == "failed"
    assert "given up" in run(config, "outbox")
    with relay:
        out = run(config, "outbox", "--retry", str(ack["id"]))
        assert out.startswith("1 message(s) due now\nsent 1,")
        [sent] = relay.wait_for(lambda m: "jane@acme.test" in str(m["To"]))
        assert "Server down" in str(sent["Subject"])
    assert run(config, "outbox", "--drop", str(note["id"])).startswith("dropped 1")
    assert waiting(config) == []
    reference = json.loads(run(config, "cases", "--json"))[0]["reference"]
    messages = json.loads(run(config, "show", reference, "--json"))["messages"]
    assert [m.get("status") for m in messages if m["direction"] == "out"] == ["sent", "dropped"]
    again = cli(config, "outbox", "--drop", str(note["id"]))
    assert again.returncode == 66 and b"no unsent mail" in again.stderr
