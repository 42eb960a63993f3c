"""Helpers the tests share: running the CLI as a user would, writing IDX files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_run(run_dir, port, log, *options):
    """``mnist-cnn serve`` of ``run_dir`` on ``port`` with ``options``: yields its URL once
    it answers, then stops it with Ctrl-C when resumed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", "serve", str(run_dir), "--port", str(port), *options],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not start within 90 s"
            time.sleep(0.3)
    yield url
    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(timeout=30) == 0


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
