"""The real-world corpus through the whole flow: spool -> parse -> classify -> route -> outbox.

Each mail gets a fresh database, as if it were the first mail the helpdesk ever received, so
that what is measured is the mail alone: auto-generated mail must cause no outgoing mail at all,
human mail exactly one acknowledgement.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdeskd import config as configuration
from helpdeskd.adapters.store import Store
from helpdeskd.core.address import usable
from helpdeskd.pipeline import process
from tests.support import write_config
from tests.test_corpus_parse import BODY_ROBOTS, LABELLED_FOLDERS, labels, mail_files

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, in working hours


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return configuration.load(write_config(folder, auto_limit=1000))


def fresh_store(folder: Path, name: str) -> Store:
    """A copy of one migrated empty database: migrating a new file per mail is most of the
    cost of running the whole corpus."""
    template = folder / "empty.db"
    if not template.exists():
        Store.open(template).close()
    target = folder / f"{name.replace('/', '_')}.db"
    shutil.copyfile(template, target)
    return Store.open(target)


def run_one(config, folder: Path, raw: bytes, name: str) -> dict:
    store = fresh_store(folder, name)
    try:
        spool_id, _ = store.spool(raw, source="ingest", now=NOW)
        started = time.monotonic()
        result = process(store, config, store.spool_item(spool_id), NOW)
        elapsed = time.monotonic() - started
        queued = store.rows("SELECT kind, recipients FROM outbox")
        kinds = [r["kind"] for r in queued]
        acked = [
            a for r in queued if r["kind"] == "acknowledgement" for a in json.loads(r["recipients"])
        ]
        state = store.row("SELECT state FROM spool WHERE id = ?", [spool_id])["state"]
        return {
            "kinds": kinds,
            "acked": acked,
            "state": state,
            "elapsed": elapsed,
            "result": result,
        }
    finally:
        store.close()


def test_labelled_folders_auto_generated_get_nothing_and_humans_one_ack(corpus, config, tmp_path):
    """Every LABELS.tsv: no outside mail for a robot, one acknowledgement to a real address
    for a person."""
    answered, missing, figures = [], [], []
    for folder in ("set-of-emails", *LABELLED_FOLDERS):
        robots = people = acknowledged = robots_answered = 0
        for path, label in labels(corpus, folder).items():
            outcome = run_one(config, tmp_path, (corpus / folder / path).read_bytes(), path)
            assert outcome["state"] in ("done", "quarantined"), path
            assert outcome["elapsed"] < 5, f"{path} took {outcome['elapsed']:.1f}s"
            if label == "auto-generated":
                robots += 1
                if outcome["kinds"]:
                    robots_answered += 1
                    answered.append((f"{folder}/{path}", outcome["kinds"]))
            elif label == "human":
                people += 1
                acks = outcome["acked"]
                if len(acks) == 1 and usable(acks[0]):
                    acknowledged += 1
                else:
                    missing.append((f"{folder}/{path}", outcome["kinds"], acks))
        figures.append(
            f"{folder}: {robots_answered} of {robots} auto-generated answered;"
            f" {acknowledged}/{people} people acknowledged once"
        )
    print("\n" + "\n".join(figures))
    assert not answered, f"auto-generated mail that was answered: {answered}"
    assert not missing, f"human mail without exactly one acknowledgement: {missing}"


def test_robots_known_only_by_their_body_cause_no_mail(corpus, config, tmp_path):
    """No List-*, Precedence or bulk header: the opt-out footer alone says it is bulk mail."""
    answered = {}
    for name in BODY_ROBOTS:
        outcome = run_one(config, tmp_path, (corpus / name).read_bytes(), name)
        answered[name] = outcome["kinds"]
    print(
        f"\nrobots known by their body: {sum(not k for k in answered.values())} of"
        f" {len(answered)} answered with nothing"
    )
    assert answered == {name: [] for name in BODY_ROBOTS}


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
    """All eight folders: every mail, and email_reply_trimmer's bodies (not mail: quarantined)."""
    found = [*mail_files(corpus), *(corpus / "email_reply_trimmer" / "emails").glob("*.txt")]
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
    assert sum(states.values()) > 500 and states.get("done", 0) > 440
