"""Prometheus metrics and /healthz over HTTP, from a running daemon."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpdeskd import config as configuration
from helpdeskd import metrics
from helpdeskd.adapters.store import Store
from helpdeskd.delivery import tally
from tests.support import Daemon, free_port, mail, send, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match, f"no {sample} in\n{text}"
    return float(match.group(1))


def test_metrics_count_the_mail_and_read_open_cases_from_the_database(tmp_path: Path, sink):
    port, metrics_port = free_port(), free_port()
    extra = f'\n[metrics]\nenabled = true\nhost = "127.0.0.1"\nport = {metrics_port}\n'
    config = write_config(tmp_path, smtp_port=port, relay_port=sink.port, extra=extra)
    with Daemon(config, port) as daemon:
        send(daemon.port, mail("jane@acme.test", "Portal down", "since 9:00"))
        send(daemon.port, mail("joe@unknown.test", "Question", "hello"))
        sink.wait_for(lambda m: "joe@unknown.test" in str(m["To"]))
        base = f"http://127.0.0.1:{metrics_port}"
        status, text = get(f"{base}/metrics")
        assert status == 200
        assert value(text, 'helpdeskd_messages_total{entrance="smtp",outcome="new"}') == 2
        assert value(text, "helpdeskd_cases_opened_total") == 2
        assert value(text, "helpdeskd_processing_seconds_count") == 2
        assert value(text, 'helpdeskd_open_cases{plan="gold",status="new"}') == 1
        assert value(text, 'helpdeskd_open_cases{plan="standard",status="new"}') == 1
        assert value(text, "helpdeskd_spool_waiting") == 0
        # acknowledgements and engineer notifications; the courier may still be at it
        assert "helpdeskd_outbox_deliveries_total" in text
        assert "helpdeskd_outbox_queued" in text
        assert get(f"{base}/healthz") == (200, "ok\n")


def test_metrics_are_off_by_default_and_validated(tmp_path: Path):
    config = configuration.load(write_config(tmp_path))
    assert not config.metrics.enabled and config.metrics.host == "127.0.0.1"
    bad = write_config(tmp_path, extra='\n[metrics]\nenabled = "yes"\nport = 70000\n')
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(bad)
    keys = [key for key, _ in refused.value.problems]
    assert keys == ["metrics.enabled", "metrics.port"]


def test_healthz_fails_when_the_worker_is_silent(tmp_path: Path):
    config = configuration.load(write_config(tmp_path))
    Store.open(config.helpdesk.database)
    assert metrics.liveness(config, SimpleNamespace(beat=time.monotonic())) is None
    silent = SimpleNamespace(beat=0.0)
    assert metrics.liveness(config, silent).startswith("worker silent for")


def test_sla_actions_and_deliveries_are_counted(tmp_path: Path):
    from prometheus_client import generate_latest

    from helpdeskd.adapters.outbox import FlushResult

    config = configuration.load(write_config(tmp_path))
    Store.open(config.helpdesk.database)
    registry = metrics.registry(lambda: str(config.helpdesk.database))

    def sample(name: str) -> float:
        found = re.search(rf"^{re.escape(name)} (\S+)$", generate_latest(registry).decode(), re.M)
        return float(found.group(1)) if found else 0.0

    warn = 'helpdeskd_sweep_actions_total{action="warn"}'
    breach = 'helpdeskd_sweep_actions_total{action="breach"}'
    failed = 'helpdeskd_outbox_deliveries_total{result="failed"}'
    before = sample(warn), sample(breach), sample(failed)
    metrics.swept([{"action": "warn"}, {"action": "breach"}, {"action": "warn"}])
    metrics.delivered(tally(FlushResult(sent=(), retried=(), failed=("x",))))
    assert (sample(warn), sample(breach), sample(failed)) == (
        before[0] + 2,
        before[1] + 1,
        before[2] + 1,
    )
    assert sample("helpdeskd_outbox_queued") == 0
