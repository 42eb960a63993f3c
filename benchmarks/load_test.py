"""Load test of `mnist-cnn serve`: concurrent clients on loopback, bounded in time.

Starts the server on a free 127.0.0.1 port, then runs N client threads, each
sending 28x28 JSON requests back to back over a kept-alive connection for the
given duration. Reports requests per second, latency p50 and p99, and errors.
Only 127.0.0.1 is ever contacted.

Usage: python benchmarks/load_test.py [--model runs/latest] [--clients 8] [--seconds 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from machine import describe

RESULTS = Path(__file__).parent / "results"
HOST = "127.0.0.1"
MAX_REQUESTS_PER_CLIENT = 100_000  # a hard bound besides the time limit


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/api/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the server did not start")


def client(port: int, body: bytes, stop_at: float, latencies: list, errors: list) -> None:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    headers = {"content-type": "application/json"}
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= stop_at:
            break
        started = time.perf_counter()
        try:
            connection.request("POST", "/api/predict", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
        except (OSError, http.client.HTTPException) as error:
            errors.append(type(error).__name__)
            connection.close()
            connection = http.client.HTTPConnection(HOST, port, timeout=10)
            continue
        latencies.append(1000 * (time.perf_counter() - started))
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=Path("runs/latest"), help="(default: runs/latest)"
    )
    parser.add_argument(
        "--engine", choices=("keras", "onnx"), default="keras", help="(default: keras)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    parser.add_argument("--seconds", type=float, default=30, help="test length (default: 30)")
    arguments = parser.parse_args()

    from mnist_cnn.data import load_mnist

    digit = load_mnist(allow_download=False).test_images[0]
    body = json.dumps({"pixels": digit.tolist()}).encode()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", "serve", str(arguments.model), "--port", str(port),
         "--engine", arguments.engine],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    try:
        wait_until_up(port, server)
        # Warm-up: the first requests trace the model.
        client(port, body, time.monotonic() + 2, [], [])
        latencies: list[float] = []
        errors: list = []
        stop_at = time.monotonic() + arguments.seconds
        threads = [
            threading.Thread(target=client, args=(port, body, stop_at, latencies, errors))
            for _ in range(arguments.clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)

    result = {
        "machine": describe(),
        "engine": arguments.engine,
        "clients": arguments.clients,
        "seconds": elapsed,
        "requests": len(latencies),
        "requests_per_second": len(latencies) / elapsed,
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p99": float(np.percentile(latencies, 99)),
        "errors": len(errors),
    }
    print(
        f"{describe()}; engine {arguments.engine}; {arguments.clients} clients for "
        f"{elapsed:.0f}s: {result['requests_per_second']:.0f} requests/s, "
        f"p50 {result['latency_ms_p50']:.1f} ms, p99 {result['latency_ms_p99']:.1f} ms, "
        f"{len(errors)} errors"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"load_test-{arguments.engine}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
