"""Which mail corpus the tests read: the repository's own copy, or a larger one beside it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import OWN_CORPUS, chosen_corpus


def test_the_repository_holds_its_corpus_with_its_licences() -> None:
    assert (OWN_CORPUS / "NOTICE").is_file()
    assert (OWN_CORPUS / ".gitattributes").read_text() == "* -text\n"
    for source in [p for p in OWN_CORPUS.iterdir() if p.is_dir()]:
        assert (source / "LICENSE").is_file(), source.name


def test_the_exact_bytes_are_kept() -> None:
    dos = (OWN_CORPUS / "set-of-emails/maildir/dos/rfc3834-01.eml").read_bytes()
    mac = (OWN_CORPUS / "set-of-emails/maildir/mac/rfc3834-01.eml").read_bytes()
    assert b"\r\n" in dos and b"\r" in mac and b"\n" not in mac


def corpus(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"Subject: x\n\nx\n")
    return root


def test_the_own_copy_without_a_larger_set(tmp_path: Path) -> None:
    own = corpus(tmp_path / "own", "a/1.eml")
    assert chosen_corpus(own, tmp_path / "missing") == own


def test_the_own_copy_when_the_other_has_nothing_more(tmp_path: Path) -> None:
    own = corpus(tmp_path / "own", "a/1.eml", "NOTICE")
    same = corpus(tmp_path / "shared", "a/1.eml", "README.md")
    assert chosen_corpus(own, same) == own


def test_the_larger_set_when_it_has_mail_the_copy_lacks(tmp_path: Path) -> None:
    own = corpus(tmp_path / "own", "a/1.eml")
    larger = corpus(tmp_path / "shared", "a/1.eml", "a/2.eml")
    assert chosen_corpus(own, larger) == larger
