"""Every Python block in the README runs, as a reader would paste it."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 2


def test_every_python_block_runs(tmp_path, monkeypatch, trained_run, mnist, capsys):
    # What the examples expect around them: a trained run at runs/latest and a picture.
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(trained_run.run_dir)
    Image.fromarray(255 - mnist.test_images[0]).convert("RGB").save(tmp_path / "my-digit.jpg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(python_blocks(), start=1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert printed.strip(), "the examples print their results"
    # The picture is MNIST's first test digit, a 7.
    answers = namespace["answers"]
    assert answers[0].text == "7"
