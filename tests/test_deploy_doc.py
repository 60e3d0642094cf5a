"""docs/deploy.md lists every setting, as settings.py defines it: the table there is drawn from the code."""

from __future__ import annotations

import re
from pathlib import Path

from gpulease.settings import Settings, reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
BLOCK = re.compile(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", re.S)


def test_every_setting_has_a_meaning() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"settings without a description (settings.py): {missing}"


def test_the_deploy_guide_lists_every_setting_as_the_code_defines_it() -> None:
    found = BLOCK.search(DOC.read_text())
    assert found, "docs/deploy.md has no settings block"
    assert found.group(1) == reference(), (
        "docs/deploy.md's settings table differs from settings.py: paste the output of `python -m gpulease.settings` "
        "between its settings:begin and settings:end lines"
    )
    for name in Settings.model_fields:
        assert f"`GPULEASE_{name.upper()}`" in found.group(1)
