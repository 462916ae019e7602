"""The real-world corpus through the whole flow: spool -> parse -> classify -> route -> outbox.

Each mail gets a fresh database, as if it were the first mail the helpdesk ever received, so
that what is measured is the mail alone: auto-generated mail must cause no outgoing mail at all,
human mail exactly one acknowledgement.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import Store
from helpdeskd.pipeline import process
from tests.support import write_config

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, in working hours


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return configuration.load(write_config(folder, auto_limit=1000))


def run_one(config, folder: Path, raw: bytes, name: str) -> dict:
    store = Store.open(folder / f"{name.replace('/', '_')}.db")
    try:
        spool_id, _ = store.spool(raw, source="ingest", now=NOW)
        started = time.monotonic()
        result = process(store, config, store.spool_item(spool_id), NOW)
        elapsed = time.monotonic() - started
        kinds = [r["kind"] for r in store.rows("SELECT kind FROM outbox")]
        state = store.row("SELECT state FROM spool WHERE id = ?", [spool_id])["state"]
        return {"kinds": kinds, "state": state, "elapsed": elapsed, "result": result}
    finally:
        store.close()


def labels(corpus: Path) -> dict[str, str]:
    rows = (
        line
        for line in (corpus / "set-of-emails" / "LABELS.tsv").open(encoding="utf-8")
        if not line.startswith("#")
    )
    return {row[0]: row[1] for row in csv.reader(rows, delimiter="\t") if len(row) > 1}


def test_set_of_emails_auto_generated_get_nothing_and_humans_one_ack(corpus, config, tmp_path):
    answered, missing, total = [], [], 0
    for path, label in labels(corpus).items():
        raw = (corpus / "set-of-emails" / path).read_bytes()
        outcome = run_one(config, tmp_path, raw, path)
        assert outcome["state"] in ("done", "quarantined"), path
        assert outcome["elapsed"] < 5, f"{path} took {outcome['elapsed']:.1f}s"
        acks = outcome["kinds"].count("acknowledgement")
        total += 1
        if label == "auto-generated" and outcome["kinds"]:
            answered.append((path, outcome["kinds"]))
        if label == "human" and acks != 1:
            missing.append((path, outcome["kinds"], outcome["state"]))
    assert total > 50
    assert not answered, f"auto-generated mail that was answered: {answered}"
    assert not missing, f"human mail without exactly one acknowledgement: {missing}"


def test_flanker_bounces_and_complaints_cause_no_mail(corpus, config, tmp_path):
    folder = corpus / "flanker"
    paths = sorted([*(folder / "bounce").rglob("*"), *(folder / "complaints").rglob("*")])
    paths = [p for p in paths if p.is_file()]
    assert paths
    answered = []
    for path in paths:
        outcome = run_one(config, tmp_path, path.read_bytes(), path.name)
        if outcome["kinds"]:
            answered.append((path.name, outcome["kinds"]))
    assert not answered, answered


def corpus_mails(corpus: Path) -> list[Path]:
    found = [
        *(corpus / "zammad").glob("*.box"),
        *(corpus / "flanker").rglob("*.eml"),
        *(corpus / "set-of-emails").rglob("*.eml"),
    ]
    return sorted(p for p in found if p.is_file())


def test_every_corpus_mail_is_processed_or_quarantined(corpus, config, tmp_path):
    states: dict[str, int] = {}
    reasons = []
    for path in corpus_mails(corpus):
        outcome = run_one(config, tmp_path, path.read_bytes(), path.name)
        states[outcome["state"]] = states.get(outcome["state"], 0) + 1
        assert outcome["elapsed"] < 5, f"{path.name} took {outcome['elapsed']:.1f}s"
        if outcome["state"] == "quarantined":
            reasons.append((path.name, outcome["result"].quarantined))
    print(f"\ncorpus through the flow: {states}; quarantined: {reasons}")
    assert set(states) <= {"done", "quarantined"}
    assert sum(states.values()) > 180 and states.get("done", 0) > 150
