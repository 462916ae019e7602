"""`#merge`, `#unmerge` and `#split` through the real flow (`ingest --now`, the CLI) on each
store, with the mail each customer gets counted in the outbox (the relay is not there).

Jane and Pete of Acme report the same printer jam in two cases; the engineer folds Pete's
into Jane's, then takes the merge back; Jane raises a second problem in a reply, which the
engineer splits into a case of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import free_port, mail, queued, write_config
from tests.support import run_in_process as run

pytestmark = [pytest.mark.timeout(240)]

JANE, PETE, ENGINEER = "jane@acme.test", "pete@acme.test", "alice@helpdesk.test"
DAY1 = "2026-11-20T10:00:00-06:00"


@pytest.fixture
def config(tmp_path: Path, database) -> Path:
    return write_config(tmp_path, relay_port=free_port())


def ingest(config: Path, message, now: str) -> str:
    return run(config, "ingest", "--now", now, "-", stdin=message.as_bytes())


def opened(config: Path, sender: str, subject: str, now: str = DAY1) -> str:
    out = ingest(config, mail(sender, subject, f"{subject}, since this morning."), now)
    return out.split()[1].rstrip(":")  # "new HD-2026-00001: ..."


def engineer(config: Path, reference: str, body: str, now: str, in_reply_to=None) -> str:
    reply = mail(ENGINEER, f"Re: [{reference}] x", body, in_reply_to=in_reply_to)
    return ingest(config, reply, now)


def show(config: Path, reference: str) -> dict:
    return json.loads(run(config, "show", reference, "--json"))


def to_customers(config: Path, kind: str) -> list[list[str]]:
    return [to for k, to, _ in queued(config) if k == kind]


def test_merge_folds_a_case_and_its_reference_threads_there_for_ever(config: Path):
    jane, pete = opened(config, JANE, "Printer jam"), opened(config, PETE, "Printer jams too")
    engineer(config, pete, f"#merge {jane}\n", "2026-11-20T11:00:00-06:00")
    folded, surviving = show(config, pete), show(config, jane)
    assert folded["status"] == "closed" and folded["messages"] == []
    assert f"merged into {jane}" in run(config, "show", pete)
    assert [m["from"] for m in surviving["messages"] if m["kind"] == "customer"] == [JANE, PETE]
    assert any(e["kind"] == "merged" and pete in e["detail"] for e in surviving["events"])
    # one mail, to both customers, naming the reference to use; no other mail to them
    assert to_customers(config, "merged") == [[JANE, PETE]]
    ((_, _, told),) = [q for q in queued(config) if q[0] == "merged"]
    assert f"[{jane}]" in told.get_body(("plain",)).get_content()
    assert to_customers(config, "closed") == []
    ingest(
        config, mail(PETE, f"Re: [{pete}] Printer", "Still jammed."), "2026-12-20T09:00:00-06:00"
    )
    later = show(config, jane)
    assert [m["body"] for m in later["messages"] if m["from"] == PETE][-1].startswith("Still")
    assert len(json.loads(run(config, "cases", "--json"))) == 2  # nothing new opened


def test_unmerge_within_30_days_restores_both(config: Path):
    jane, pete = opened(config, JANE, "Printer jam"), opened(config, PETE, "Printer jams too")
    engineer(config, pete, f"#merge {jane}\n", "2026-11-20T11:00:00-06:00")
    engineer(config, jane, "#unmerge\n", "2026-12-10T11:00:00-06:00")
    folded, surviving = show(config, pete), show(config, jane)
    assert folded["status"] == "new" and folded["messages"][0]["from"] == PETE
    assert folded["merged_into"] is None
    assert [m["from"] for m in surviving["messages"] if m["kind"] == "customer"] == [JANE]
    assert PETE not in json.dumps(surviving["messages"][0])
    assert to_customers(config, "merged") == [[JANE, PETE]]
    assert to_customers(config, "unmerged") == [[PETE]]
    ingest(config, mail(PETE, f"Re: [{pete}] Printer", "Any news?"), "2026-12-10T12:00:00-06:00")
    assert show(config, pete)["messages"][-2]["body"].startswith("Any news?")


def test_unmerge_after_30_days_is_refused_and_changes_nothing(config: Path):
    jane, pete = opened(config, JANE, "Printer jam"), opened(config, PETE, "Printer jams too")
    engineer(config, pete, f"#merge {jane}\n", "2026-11-20T11:00:00-06:00")
    engineer(config, jane, "#unmerge\n\nSecret words.", "2026-12-21T11:00:00-06:00")
    assert show(config, pete)["status"] == "closed"
    ((_, to, error),) = [q for q in queued(config) if q[0] == "command_error"]
    assert to == [ENGINEER]
    assert "in the last 30 days" in error.get_body(("plain",)).get_content()
    assert not [q for q in queued(config) if "Secret words" in q[2].as_string()]


def test_merge_into_a_missing_case_is_refused(config: Path):
    pete = opened(config, PETE, "Printer jams too")
    engineer(config, pete, "#merge HD-2026-09999\n", "2026-11-20T11:00:00-06:00")
    assert show(config, pete)["status"] == "new"
    assert [to for k, to, _ in queued(config) if k == "command_error"] == [[ENGINEER]]


def test_split_makes_a_reply_a_case_of_its_own(config: Path):
    jane = opened(config, JANE, "Printer jam")
    second = mail(JANE, f"Re: [{jane}] Printer jam", "Also: the scanner lost its settings.")
    ingest(config, second, "2026-11-20T10:30:00-06:00")
    follow_up = [m for k, _, m in queued(config) if k == "follow_up"][-1]
    out = engineer(config, jane, "#split\n", "2026-11-20T11:00:00-06:00", follow_up["Message-ID"])
    assert out.startswith("follow_up")
    cases = json.loads(run(config, "cases", "--json"))
    assert len(cases) == 2
    new = show(config, cases[1]["reference"])
    assert (new["customer"], new["opener"], new["related"]) == ("Acme", JANE, jane)
    assert [m["body"] for m in new["messages"] if m["kind"] == "customer"] == [
        "Also: the scanner lost its settings."
    ]
    original = show(config, jane)
    assert [m["kind"] for m in original["messages"]].count("customer") == 1
    assert any(e["kind"] == "split" and new["reference"] in e["detail"] for e in original["events"])
    acks = [(to, m["Subject"]) for k, to, m in queued(config) if k == "acknowledgement"]
    assert [to for to, _ in acks] == [[JANE], [JANE]]
    assert new["reference"] in str(acks[1][1])
    assert f"names {jane}" in run(config, "show", new["reference"])


def test_split_of_the_opening_message_is_refused(config: Path):
    jane = opened(config, JANE, "Printer jam")
    engineer(config, jane, "#split\n", "2026-11-20T11:00:00-06:00")
    assert len(json.loads(run(config, "cases", "--json"))) == 1
    assert [to for k, to, _ in queued(config) if k == "command_error"] == [[ENGINEER]]
