"""The deployment guides: every TOML example parses, and every file the README names exists."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.support import ROOT

GUIDES = sorted((ROOT / "docs").glob("*.md"))
TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_every_toml_example_parses(guide):
    for block in TOML_BLOCK.findall(guide.read_text()):
        tomllib.loads(block)


def test_the_guides_the_readme_names_exist():
    named = set(re.findall(r"`docs/([a-z0-9-]+\.md)`", (ROOT / "README.md").read_text()))
    assert named and named <= {p.name for p in GUIDES}
