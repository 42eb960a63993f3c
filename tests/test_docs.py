"""The documents point at things that exist: every test that docs/robustness.md cites."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_that_robustness_md_cites_exists():
    text = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    cited, file_name = [], None
    # "`test_x.py::test_a`, `test_b`": a bare name belongs to the file named before it.
    for match in re.finditer(r"`(?:(test_\w+\.py)::)?(test_\w+)`", text):
        file_name = match.group(1) or file_name
        cited.append((file_name, match.group(2)))
    assert len(cited) > 30
    missing = [
        f"{file}::{name}"
        for file, name in cited
        if not re.search(rf"^def {name}\(", (ROOT / "tests" / file).read_text(), re.M)
    ]
    assert missing == []
