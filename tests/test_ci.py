"""The repository's own scripts: `.ci/run` and the Makefile, run for real in a temp folder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JUNIT = """<testsuites><testsuite>
<testcase classname="tests.test_imap" name="a"/>
<testcase classname="tests.test_systemd" name="b"/>
<testcase classname="tests.test_web_browser" name="c"><skipped/></testcase>
<testcase classname="tests.test_other" name="d"><failure/></testcase>
</testsuite></testsuites>
"""


def ci_run(tmp_path: Path, recipe: str) -> subprocess.CompletedProcess:
    """`.ci/run` in a copy of the repository whose `make test` is `recipe`."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "junit.xml").write_text(JUNIT)
    (tmp_path / "Makefile").write_text(f"test:\n\t{recipe}\n")
    return subprocess.run(
        [str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=60
    )


def test_ci_says_which_tests_ran_even_when_the_suite_failed(tmp_path: Path) -> None:
    done = ci_run(tmp_path, "cp junit.xml var/junit.xml; exit 1")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "IMAP tests against Dovecot: 1 ran, none skipped" in output
    assert "systemd unit tests (systemd-analyze): 1 ran, none skipped" in output
    assert "status page tests in chromium: 1 found, skipped: ['c']" in output


def test_ci_fails_when_a_check_fails_though_the_suite_passed(tmp_path: Path) -> None:
    done = ci_run(tmp_path, "cp junit.xml var/junit.xml")
    assert done.returncode == 1
    assert "status page tests in chromium: 1 found" in done.stderr


def test_ci_says_when_the_suite_wrote_no_report(tmp_path: Path) -> None:
    done = ci_run(tmp_path, "exit 2")
    assert done.returncode != 0
    assert "var/junit.xml" in done.stderr


def test_make_run_makes_var_private_as_helpdeskd_would(tmp_path: Path) -> None:
    """`make run` makes `var/` before helpdeskd starts; 0755 there made it warn files.exposed."""
    old = os.umask(0o022)  # a login shell's
    try:
        subprocess.run(["make", "-f", str(ROOT / "Makefile"), "var"], cwd=tmp_path, check=True)
        (tmp_path / "var").chmod(0o755)  # made by an older Makefile
        subprocess.run(["make", "-f", str(ROOT / "Makefile"), "var"], cwd=tmp_path, check=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700


def test_make_test_installs_postgresql_when_missing() -> None:
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True)
    assert "/usr/lib/postgresql/*/bin/initdb" in dry.stdout
    assert "apt-get install -y -qq postgresql" in dry.stdout
