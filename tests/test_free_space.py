"""`[helpdesk] min_free_space` and `node` as read from the file, the margin it makes on disks of
every size, and the free space where an operator looks: `status`, the metrics, `/healthz`.
(tests/test_disk_full.py fills a real small filesystem under the running daemon.)"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest

from helpdeskd import config as configuration
from helpdeskd import disk, health, metrics
from helpdeskd.adapters.store import Store
from helpdeskd.config import FreeSpace
from tests.support import write_config

GB = 1 << 30
MB = 1 << 20


def with_helpdesk_keys(tmp_path: Path, keys: str) -> Path:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('timezone = "America/Chicago"\n', keys, 1))
    return config


def test_the_default_margin_is_the_smaller_of_256_mb_and_5_percent():
    assert FreeSpace().of(100 * GB) == 256 * MB
    assert FreeSpace().of(1 * GB) == GB // 20  # a small disk is not short all the time


@pytest.mark.parametrize(
    ("text", "margin"), [("2MB", 2 * MB), ("512 KiB", 512 << 10), ("10%", GB // 10), ("0", 0)]
)
def test_a_margin_is_a_size_or_a_share_of_the_filesystem(tmp_path: Path, text: str, margin: int):
    config = configuration.load(with_helpdesk_keys(tmp_path, f'min_free_space = "{text}"\n'))
    assert config.helpdesk.min_free_space.of(GB) == margin


def test_a_bad_margin_or_node_is_listed_by_key(tmp_path: Path):
    keys = 'min_free_space = "plenty"\nnode = "two words"\n'
    with pytest.raises(configuration.ConfigError) as refused:
        configuration.load(with_helpdesk_keys(tmp_path, keys))
    assert [key for key, _ in refused.value.problems] == [
        "helpdesk.node",
        "helpdesk.min_free_space",
    ]


def test_status_metrics_and_healthz_report_free_space_and_fail_below_the_margin(tmp_path: Path):
    roomy = configuration.load(write_config(tmp_path))
    Store.open(roomy.helpdesk.database)
    cramped = configuration.load(with_helpdesk_keys(tmp_path, 'min_free_space = "1000000GB"\n'))
    worker = SimpleNamespace(beat=time.monotonic())
    store = Store(roomy.helpdesk.database)

    fine = health.assess(roomy, store, datetime.now(UTC), probe=False)
    assert fine["disk"]["free_bytes"] > fine["disk"]["margin_bytes"]
    assert not any("free space" in p for p in fine["problems"])
    assert metrics.liveness(roomy, worker) is None

    short = health.assess(cramped, store, datetime.now(UTC), probe=False)
    assert not short["healthy"]
    assert any(p.startswith("free space:") for p in short["problems"])
    assert "  disk  " in health.text(short, "UTC")
    assert metrics.liveness(cramped, worker).startswith("free space")

    registry = metrics.registry(lambda: str(cramped.helpdesk.database), lambda: disk.space(cramped))
    scraped = generate_latest(registry).decode()
    free = float(re.search(r"^helpdeskd_free_bytes (\S+)$", scraped, re.M).group(1))
    margin = float(re.search(r"^helpdeskd_free_margin_bytes (\S+)$", scraped, re.M).group(1))
    assert 0 < free < margin
