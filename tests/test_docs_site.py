"""The documentation site builds offline with no warnings, from docs/ and the docstrings."""

from __future__ import annotations

import html as html_module
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Pages with Python examples that the reader is meant to paste; each block runs here.
PAGES_WITH_EXAMPLES = ("api/index.md", "api/pictures.md")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    site_dir = tmp_path_factory.mktemp("site")
    environment = {
        **os.environ,
        # mkdocstrings reads src/ itself (paths: [src]); the CLI hook imports from it.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
        ),
        "NO_MKDOCS_2_WARNING": "1",  # Material's end-of-life banner, not a problem of ours
    }
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return site_dir


def page_text(site: Path, page: str) -> str:
    """The page's HTML with tags removed and whitespace collapsed, as a reader sees it."""
    html = (site / page / "index.html").read_text(encoding="utf-8")
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def first_sentence(docstring: str | None) -> str:
    assert docstring
    return " ".join(docstring.split("\n\n")[0].split()).replace("``", "")


@pytest.mark.slow
def test_the_api_pages_hold_the_docstrings(site):
    from mnist_cnn.data import load_mnist
    from mnist_cnn.evaluation import analyse
    from mnist_cnn.pipeline import train_run
    from mnist_cnn.plots import predictions_figure

    for page, function in [
        ("api/data", load_mnist),
        ("api/evaluation", predictions_figure),
        ("api/evaluation", analyse),
        ("api/runs", train_run),
    ]:
        assert first_sentence(function.__doc__) in page_text(site, page), function.__name__


@pytest.mark.slow
def test_the_cli_page_is_the_parsers_own_help(site):
    from mnist_cnn.cli import build_parser

    text = page_text(site, "cli")
    help_text = " ".join(build_parser().format_help().split())
    assert help_text in text
    for command in ("data", "show", "train", "evaluate", "report", "compare", "predict"):
        assert f"usage: mnist-cnn {command}" in text


@pytest.mark.slow
def test_the_site_loads_nothing_from_the_network_at_build_or_for_fonts(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 10
    assert [page for page in pages if "fonts.googleapis.com" in page.read_text()] == []


def python_blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_every_python_example_in_the_docs_runs(tmp_path, monkeypatch, trained_run, mnist, capsys):
    # What the examples expect around them: a trained run at runs/latest and a picture.
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(trained_run.run_dir)
    Image.fromarray(255 - mnist.test_images[0]).convert("RGB").save(tmp_path / "my-digit.jpg")
    monkeypatch.chdir(tmp_path)
    blocks = [(page, block) for page in PAGES_WITH_EXAMPLES for block in python_blocks(page)]
    assert len(blocks) >= 2
    for page, block in blocks:
        namespace: dict = {}
        exec(compile(block, f"docs/{page}", "exec"), namespace)
    assert "test accuracy 0.9" in capsys.readouterr().out
    assert namespace["answers"][0].text == "7"  # MNIST's first test digit
