"""Helpers the tests share: running the CLI as a user would, writing IDX files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# Debian's Chromium, as the tests drive it: headless, and quiet on a machine with no network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def run_cli(*arguments: str, env: dict | None = None, timeout: float = 300, cwd=None):
    """Run ``mnist-cnn`` in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_cnn", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def run_cli_here(capsys, *arguments: str) -> subprocess.CompletedProcess:
    """Run ``mnist-cnn`` in this process: the answer ``run_cli`` gives, without paying
    for a fresh interpreter's TensorFlow import. For tests whose subject is not the process
    (exit codes on signals, file descriptors, locks between processes need ``run_cli``).
    """
    from mnist_cnn.cli import main

    capsys.readouterr()  # what came before is not this command's
    code = main(list(arguments))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["mnist-cnn", *arguments], code, captured.out, captured.err)


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    """Write ``array`` (uint8) as an IDX file, gzipped when the name ends in .gz."""
    import gzip

    if magic is None:
        magic = 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
