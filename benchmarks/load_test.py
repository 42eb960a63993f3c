"""Load test of the web server: concurrent clients on loopback, bounded in time.

Starts the server (``serve.create_app`` and ``serve.run_server``, as
`mnist-cnn serve` does) on a free 127.0.0.1 port in a subprocess, then runs N
client threads, each sending 28x28 JSON requests back to back over a
kept-alive connection for the given duration. Reports requests per second,
latency p50 and p99, and errors. Only 127.0.0.1 is ever contacted.

``--abusive`` instead sends what a careless or hostile client would, each
kind bounded in count and time: big-but-legal uploads (a 49-megapixel PNG
that compresses to a few KB), JSON bodies over the limit, malformed bodies,
clients that vanish mid-body, and slow or stalled bodies. Meanwhile a probe
asks /api/health and predicts a digit every 100 ms. Reports each kind's
answers by status, the probe's latency p50/p99/max, the server's peak
resident memory (VmHWM from /proc) and its log's tracebacks.

Usage: python benchmarks/load_test.py [--model runs/latest] [--clients 8] [--seconds 30]
       python benchmarks/load_test.py --abusive [--model runs/latest] [--decode-slots 2]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from machine import describe

RESULTS = Path(__file__).parent / "results"
HOST = "127.0.0.1"
MAX_REQUESTS_PER_CLIENT = 100_000  # a hard bound besides the time limit
# The server as `mnist-cnn serve` runs it: the library's create_app and run_server.
SERVER = """
import sys
from pathlib import Path
from mnist_cnn.engines import load_classifier
from mnist_cnn.serve import create_app, model_metadata, run_server
model, engine, port, slots = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
classifier = load_classifier(Path(model), engine)
app = create_app(classifier, model_metadata(classifier, engine), max_concurrent_decodes=slots)
run_server(app, host="127.0.0.1", port=port, log_level="info")
"""


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


def start_server(model: Path, engine: str, port: int, decode_slots: int, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, str(model), engine, str(port), str(decode_slots)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# Abusive clients -------------------------------------------------------------------

BIG_SIDE = 7000  # 49 megapixels, just under the server's 50-megapixel limit
BIG_UPLOADS = 8  # sent 4 at a time
OVERSIZED_JSON_BODIES = 4
SLOW_BODIES = 6  # each trickles a byte every half second for SLOW_BODY_SECONDS, then stops
SLOW_BODY_SECONDS = 10
STALLED_BODIES = 2  # each stops sending; the server cuts them off after its idle limit
VANISHING_CLIENTS = 10


def big_png() -> bytes:
    """A 7000x7000 white page with one thick dark stroke: 49 MP that compress to a few KB."""
    from PIL import Image, ImageDraw

    page = Image.new("L", (BIG_SIDE, BIG_SIDE), 255)
    ImageDraw.Draw(page).rectangle((3300, 1500, 3700, 5500), fill=0)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(data: bytes, name: str) -> tuple[bytes, str]:
    boundary = "load-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def malformed_bodies() -> list[tuple[str, bytes, str]]:
    """(kind, body, content type) of bodies the server must answer with one JSON line."""
    row = ", ".join(["0"] * 28)

    def with_pixel(text: str) -> bytes:
        rows = [row] * 28
        rows[3] = ", ".join([text, *["0"] * 27])
        return ('{"pixels": [' + ", ".join(f"[{item}]" for item in rows) + "]}").encode()

    json_type = "application/json"
    return [
        ("boolean pixel", with_pixel("true"), json_type),
        ("numeric-string pixel", with_pixel('"12"'), json_type),
        ("ragged rows", json.dumps({"pixels": [[0] * 28] * 27 + [[0] * 27]}).encode(), json_type),
        ("20,000-deep nesting", b'{"pixels": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", json_type),
        (
            "100,000-deep nesting",
            b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            json_type,
        ),
        ("5,000-digit number", with_pixel("1" * 5000), json_type),
        ("not JSON", b"{not json", json_type),
        ("not UTF-8", b"\xff\xfe\x00", json_type),
        ("no boundary", b"--x\r\n\r\n", "multipart/form-data"),
        ("wrong boundary", multipart(b"x", "x.png")[0], "multipart/form-data; boundary=other"),
        ("not an image", *multipart(b"just text", "notes.png")),
        ("plain text", b"hello", "text/plain"),
    ]


def request(
    port: int, method: str, path: str, body: bytes = b"", content_type: str = ""
) -> int | str:
    """The status, or the name of the error that stopped the request."""
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        headers = {"content-type": content_type} if content_type else {}
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


def raw_post(
    port: int, content_type: str, length: int, chunks: list[bytes], pause: float
) -> int | str:
    """A POST whose body arrives in ``chunks``, ``pause`` seconds apart; stops early if answered."""
    try:
        with socket.create_connection((HOST, port), timeout=60) as raw:
            raw.sendall(
                f"POST /api/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {length}\r\n\r\n".encode()
            )
            for chunk in chunks:
                time.sleep(pause)
                raw.sendall(chunk)
            raw.settimeout(60)
            answer = raw.recv(4096)
            return int(answer.split()[1]) if answer else "closed"
    except (OSError, ValueError, IndexError) as error:
        return type(error).__name__


def vanish(port: int) -> str:
    """Send half a body, then hang up."""
    with socket.create_connection((HOST, port), timeout=10) as raw:
        raw.sendall(
            b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n" + b'{"pixels": [[' + b"0, " * 500
        )
    return "hung up"


def in_parallel(count: int, work: Callable[[], int | str]) -> collections.Counter:
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(work())) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return collections.Counter(str(result) for result in results)


class MemorySampler(threading.Thread):
    """The server's resident memory, from /proc every 20 ms; VmHWM is the kernel's own peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def read(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB
        return float("nan")

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            try:
                self.samples.append(self.read("VmRSS"))
            except OSError:
                return


class Probe(threading.Thread):
    """A well-behaved client: /api/health and one JSON digit, every 100 ms."""

    def __init__(self, port: int, digit_body: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.digit_body = port, digit_body
        self.latencies: dict[str, list[float]] = {"health": [], "predict": []}
        self.failures: collections.Counter = collections.Counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            for kind, arguments in (
                ("health", ("GET", "/api/health")),
                ("predict", ("POST", "/api/predict", self.digit_body, "application/json")),
            ):
                started = time.perf_counter()
                status = request(self.port, *arguments)
                self.latencies[kind].append(1000 * (time.perf_counter() - started))
                if status != 200:
                    self.failures[f"{kind} {status}"] += 1


def abusive(arguments: argparse.Namespace, digit_body: bytes) -> None:
    big = big_png()
    big_body, big_type = multipart(big, "page-49mp.png")
    port = free_port()
    # The server writes its log here for its whole life; read, then removed, at the end.
    log_file = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    server = start_server(arguments.model, arguments.engine, port, arguments.decode_slots, log_file)
    phases: dict[str, dict] = {}
    try:
        wait_until_up(port, server)
        sampler = MemorySampler(server.pid)
        idle_rss = sampler.read("VmRSS")
        for _ in range(20):  # warm-up: the first requests trace the model
            request(port, "POST", "/api/predict", digit_body, "application/json")
        warm_rss = sampler.read("VmRSS")
        sampler.start()
        probe = Probe(port, digit_body)
        probe.start()

        def timed(name: str, run: Callable[[], collections.Counter]) -> None:
            started = time.perf_counter()
            counts = run()
            phases[name] = {
                "answers": dict(counts),
                "seconds": round(time.perf_counter() - started, 2),
            }
            print(f"{name}: {dict(counts)} in {phases[name]['seconds']} s", flush=True)

        def big_uploads() -> collections.Counter:
            counts: collections.Counter = collections.Counter()
            for _ in range(BIG_UPLOADS // 4):
                counts += in_parallel(
                    4, lambda: request(port, "POST", "/api/predict", big_body, big_type)
                )
            return counts

        timed(
            f"{BIG_UPLOADS} uploads of a 49-megapixel PNG ({len(big) // 1024} KB), 4 at a time",
            big_uploads,
        )
        oversized = b'{"pixels": [' + b"0, " * 1_600_000 + b"0]}"  # 4.8 MB
        timed(
            f"{OVERSIZED_JSON_BODIES} JSON bodies of 4.8 MB at once",
            lambda: in_parallel(
                OVERSIZED_JSON_BODIES,
                lambda: raw_post(port, "application/json", len(oversized), [], 0),
            ),
        )

        def malformed() -> collections.Counter:
            counts: collections.Counter = collections.Counter()
            for kind, body, content_type in malformed_bodies():
                status = request(port, "POST", "/api/predict", body, content_type)
                counts[str(status)] += 1
                phases.setdefault("malformed, by kind", {})[kind] = status
            return counts

        timed("12 malformed bodies", malformed)
        timed(f"{VANISHING_CLIENTS} clients hanging up mid-body",
              lambda: in_parallel(VANISHING_CLIENTS, lambda: vanish(port)))  # fmt: skip
        digit = digit_body
        slow_chunks = [digit[i : i + 1] for i in range(2 * SLOW_BODY_SECONDS)]
        timed(
            f"{SLOW_BODIES} bodies trickling a byte every 0.5 s for {SLOW_BODY_SECONDS} s then "
            "stopping short, "
            f"and {STALLED_BODIES} that stop",
            lambda: (
                in_parallel(
                    SLOW_BODIES,
                    lambda: raw_post(port, "application/json", len(digit), slow_chunks, 0.5),
                )
                + in_parallel(
                    STALLED_BODIES,
                    lambda: raw_post(port, "application/json", len(digit), [b"{"], 0),
                )
            ),
        )
        time.sleep(1)
        probe.stopped.set()
        probe.join()
        sampler.stopped.set()
        sampler.join()
        peak_rss = sampler.read("VmHWM")
    finally:
        stop_server(server)
    log_file.seek(0)
    log = log_file.read()
    log_file.close()
    os.unlink(log_file.name)

    def summary(latencies: list[float]) -> dict[str, float]:
        return {
            "count": len(latencies),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1),
            "p99_ms": round(float(np.percentile(latencies, 99)), 1),
            "max_ms": round(float(np.max(latencies)), 1),
        }

    result = {
        "machine": describe(),
        "engine": arguments.engine,
        "decode_slots": arguments.decode_slots,
        "phases": phases,
        "probe": {kind: summary(values) for kind, values in probe.latencies.items()},
        "probe_failures": dict(probe.failures),
        "server_rss_mb": {
            "idle": round(idle_rss),
            "warm": round(warm_rss),
            "peak_sampled": round(max(sampler.samples)),
            "peak_vmhwm": round(peak_rss),
        },
        "server_log_tracebacks": log.count("Traceback"),
        "server_log_lines": len(log.splitlines()),
    }
    shown = ("probe", "probe_failures", "server_rss_mb", "server_log_tracebacks")
    print(json.dumps({key: result[key] for key in shown}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    name = "abusive" if arguments.decode_slots == 2 else f"abusive-{arguments.decode_slots}-slots"
    (RESULTS / f"load_test-{name}.json").write_text(json.dumps(result, indent=2))


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
    parser.add_argument(
        "--abusive", action="store_true", help="send abusive clients instead (about a minute)"
    )
    parser.add_argument(
        "--decode-slots", type=int, default=2,
        help="uploads the server decodes at once (default: 2, the server's own default)",
    )  # fmt: skip
    arguments = parser.parse_args()

    from mnist_cnn.data import load_mnist

    digit = load_mnist(allow_download=False).test_images[0]
    body = json.dumps({"pixels": digit.tolist()}).encode()
    if arguments.abusive:
        abusive(arguments, body)
        return
    port = free_port()
    server = start_server(
        arguments.model, arguments.engine, port, arguments.decode_slots, subprocess.DEVNULL
    )
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
        stop_server(server)

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
