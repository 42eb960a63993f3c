"""The REST API under abuse: malformed bodies, big uploads, slow or vanishing clients.

A fake classifier (always 7, 91% sure) keeps these fast; where threads, the
event loop or the server log matter, a real uvicorn server runs on loopback.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from mnist_cnn.engines import Classifier
from mnist_cnn.errors import MnistCnnError, PortInUseError
from mnist_cnn.serve import MAX_JSON_BYTES, create_app, run_server
from mnist_cnn.serve import routes as serve_routes
from mnist_cnn.serve.dependencies import ServeSettings, get_settings

SEVEN = np.full(10, 0.01, dtype=np.float32)
SEVEN[7] = 0.91


def fake_classifier() -> Classifier:
    def probabilities(model_inputs: np.ndarray) -> np.ndarray:
        return np.tile(SEVEN, (len(model_inputs), 1))

    return Classifier("fake", tuple("0123456789"), probabilities)


def digit_pixels() -> list[list[int]]:
    """A bar of ink: enough for preprocessing to find a digit."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    return pixels.tolist()


def digit_png() -> bytes:
    picture = np.full((120, 120), 255, dtype=np.uint8)
    picture[20:100, 50:66] = 0
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client():
    # raise_server_exceptions=False: a crash shows as the 500 a user would get.
    with TestClient(create_app(fake_classifier()), raise_server_exceptions=False) as test_client:
        yield test_client


@contextmanager
def live_server(app) -> Iterator[str]:
    """``app`` on a free loopback port in a thread; its log goes to the root logger."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="info"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def post(address: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(address, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"content-type": content_type})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def get_status(address: str, path: str) -> int:
    connection = http.client.HTTPConnection(address, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def status_before_the_body(address: str, content_type: str, length: int) -> int:
    """Send only the headers of a POST, then read what the server answers."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(
            f"POST /api/predict HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        return int(raw.recv(4096).split()[1])


def multipart(data: bytes, name: str = "digit.png") -> tuple[bytes, str]:
    boundary = "mnist-cnn-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


# Item 12 and 13: every malformed body is a JSON 422 with one line -----------------


def deep(depth: int) -> bytes:
    return b'{"pixels": ' + b"[" * depth + b"]" * depth + b"}"


def with_pixel(text: str) -> bytes:
    rows = [", ".join(["0"] * 28)] * 28
    rows[3] = ", ".join([text, *["0"] * 27])
    return ('{"pixels": [' + ", ".join(f"[{row}]" for row in rows) + "]}").encode()


RAGGED = json.dumps({"pixels": [[0] * 28] * 27 + [[0] * 27]}).encode()


@pytest.mark.parametrize(
    "body, message",
    [
        (with_pixel("true"), "pixels[3][0]: true is not a number"),
        (with_pixel('"12"'), 'pixels[3][0]: "12" is not a number'),
        (with_pixel("null"), "pixels[3][0]"),
        (RAGGED, "pixels[27]: 27 numbers, expected 28 rows of 28 numbers"),
        (deep(20_000), "not valid JSON"),
        (with_pixel("1" * 5000), "not valid JSON"),
        (with_pixel("1e999"), "not a number in [0, 255]"),
        (with_pixel("NaN"), "not a number in [0, 255]"),
        (b'{"pixels": [[0, 0]', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "body"),
        (b"", "not valid JSON"),
    ],
    ids=["boolean", "numeric-string", "null", "ragged", "nested-20000", "5000-digits",
         "overflow", "nan", "cut-off", "not-utf8", "array", "empty"],
)  # fmt: skip
def test_malformed_json_is_a_json_422_with_one_line(client, body, message):
    response = client.post(
        "/api/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 200
    assert message in detail


def test_framework_validation_errors_come_back_in_our_shape(client):
    response = client.post("/api/predict?multi=maybe", json={"pixels": digit_pixels()})
    assert response.status_code == 422
    assert response.json() == {"detail": "multi: Input should be a valid boolean, unable to "
                               "interpret input"}  # fmt: skip


def test_a_nesting_bomb_over_the_json_limit_is_refused_unread(client):
    response = client.post(
        "/api/predict", content=deep(100_000), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "64 KB" in response.json()["detail"]


# Item 6: JSON bodies are small, and parsed off the event loop ---------------------


def test_json_bodies_are_bounded_far_below_uploads(client):
    padded = b'{"pixels": ' + json.dumps(digit_pixels()).encode() + b" " * MAX_JSON_BYTES + b"}"
    response = client.post(
        "/api/predict", content=padded, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"].endswith("over the 64 KB limit")
    # A multipart upload of 1 MB is still fine.
    noise = np.random.default_rng(0).integers(0, 256, (700, 700), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 256 * 1024
    response = client.post("/api/predict", files={"file": ("noise.png", buffer.getvalue())})
    assert response.status_code == 200


def test_four_big_json_bodies_never_stall_the_health_check():
    app = create_app(fake_classifier())
    with live_server(app) as address:
        statuses: list[int] = []
        senders = [
            threading.Thread(
                target=lambda: statuses.append(
                    status_before_the_body(address, "application/json", 4_800_000)
                )
            )
            for _ in range(4)
        ]
        for sender in senders:
            sender.start()
        started = time.perf_counter()
        assert get_status(address, "/api/health") == 200
        health_seconds = time.perf_counter() - started
        for sender in senders:
            sender.join()
    assert statuses == [413] * 4
    assert health_seconds < 1.0


def test_json_is_parsed_in_a_worker_thread(monkeypatch):
    parse = serve_routes.gray_from_json
    threads: list[str] = []

    def slow_parse(body: bytes) -> np.ndarray:
        threads.append(threading.current_thread().name)
        time.sleep(1.0)
        return parse(body)

    monkeypatch.setattr(serve_routes, "gray_from_json", slow_parse)
    body = json.dumps({"pixels": digit_pixels()}).encode()
    with live_server(create_app(fake_classifier())) as address:
        senders = [
            threading.Thread(target=post, args=(address, "/api/predict", body, "application/json"))
            for _ in range(4)
        ]
        for sender in senders:
            sender.start()
        time.sleep(0.2)
        started = time.perf_counter()
        assert get_status(address, "/api/health") == 200
        health_seconds = time.perf_counter() - started
        for sender in senders:
            sender.join()
    assert len(threads) == 4 and threading.main_thread().name not in threads
    assert health_seconds < 0.5, "the health check waited for the parsing"


# Item 4: at most two uploads decoded at once ------------------------------------


def test_uploads_are_decoded_two_at_a_time(monkeypatch):
    decode = serve_routes.decode_image
    lock = threading.Lock()
    running, most = 0, 0

    def slow_decode(data: bytes, name: str) -> np.ndarray:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.3)
        try:
            return decode(data, name)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(serve_routes, "decode_image", slow_decode)
    body, content_type = multipart(digit_png())
    statuses: list[int] = []
    with live_server(create_app(fake_classifier())) as address:
        senders = [
            threading.Thread(
                target=lambda: statuses.append(post(address, "/api/predict", body, content_type)[0])
            )
            for _ in range(6)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    assert statuses == [200] * 6
    assert most == 2


# Item 14: a vanishing client, and starting the server ------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=b"])
def test_a_client_gone_mid_body_leaves_one_log_line_not_a_traceback(caplog, content_type):
    with caplog.at_level(logging.INFO), live_server(create_app(fake_classifier())) as address:
        host, port = address.split(":")
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"POST /api/predict HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}"
                f"\r\nContent-Length: 10000\r\n\r\n".encode()
                + b"--b\r\n"
                + b"x" * 100
            )
            time.sleep(0.3)
        time.sleep(0.5)
        assert get_status(address, "/api/health") == 200
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert "Traceback" not in caplog.text and "Exception in ASGI" not in caplog.text
    assert "client disconnected" in caplog.text


def test_a_stalled_body_is_cut_off_with_408():
    app = create_app(fake_classifier())
    for middleware in app.user_middleware:
        if middleware.cls.__name__ == "LimitBody":
            middleware.kwargs["idle_seconds"] = 0.5
    with live_server(app) as address:
        host, port = address.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(
                b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            # Headers and body may come in separate packets: read until the server closes.
            received = b""
            while chunk := raw.recv(4096):
                received += chunk
            answer = received.decode()
    assert answer.startswith("HTTP/1.1 408")
    assert "nothing arrived" in answer


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_run_server_refuses_a_port_outside_the_range(port):
    with pytest.raises(MnistCnnError, match=f"port {port}: must be a whole number from 1 to 65535"):
        run_server(create_app(fake_classifier()), port=port)


def test_run_server_says_when_the_port_is_taken():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1: already in use"):
            run_server(create_app(fake_classifier()), host="127.0.0.1", port=port)


def test_run_server_warns_when_reachable_from_the_network(monkeypatch, caplog):
    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(sockets))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.INFO):
        run_server(create_app(fake_classifier()), host="0.0.0.0", port=port)
    assert len(served) == 1
    assert "reachable from the network" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run_server(create_app(fake_classifier()), host="127.0.0.1", port=port)
    assert "reachable from the network" not in caplog.text


# Item 15: HTTP details ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/model", "/favicon.ico", "/docs"])
def test_head_answers_wherever_get_does(client, path):
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


@pytest.mark.parametrize(
    "content_type", ["Application/JSON", "application/json; charset=utf-8", "APPLICATION/json;"]
)
def test_media_types_are_case_insensitive_and_take_parameters(client, content_type):
    body = json.dumps({"pixels": digit_pixels()}).encode()
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "7"


@pytest.mark.parametrize(
    "content_type, body, message",
    [
        ("multipart/form-data", b"--x\r\n\r\n", "multipart body: Missing boundary"),
        ("multipart/form-data; boundary=other", multipart(digit_png())[0], "multipart body"),
        ("multipart/form-data; boundary=x", b"--x\r\ngarbage without headers", "multipart body"),
    ],
    ids=["no-boundary", "wrong-boundary", "garbage"],
)
def test_bad_multipart_bodies_are_a_json_422(client, content_type, body, message):
    response = client.post("/api/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_favicon_is_an_inline_svg(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")


# The design: dependencies through Depends ------------------------------------------


def test_settings_are_a_dependency_a_test_can_override():
    app = create_app(fake_classifier())
    body = {"pixels": digit_pixels()}
    with TestClient(app) as test_client:
        assert test_client.post("/api/predict", json=body).json()["uncertain"] is False
        app.dependency_overrides[get_settings] = lambda: ServeSettings(min_confidence=0.95)
        assert test_client.post("/api/predict", json=body).json()["uncertain"] is True


def test_many_concurrent_requests_share_the_model_without_deadlock():
    calls: list[int] = []
    classifier = fake_classifier()

    def counted(model_inputs: np.ndarray) -> np.ndarray:
        calls.append(len(model_inputs))
        time.sleep(0.01)
        return classifier.probabilities(model_inputs)

    app = create_app(Classifier("fake", classifier.class_names, counted))
    body = json.dumps({"pixels": digit_pixels()}).encode()
    statuses: list[int] = []
    with live_server(app) as address:
        senders = [
            threading.Thread(
                target=lambda: statuses.append(
                    post(address, "/api/predict", body, "application/json")[0]
                )
            )
            for _ in range(60)  # more than the worker threads (40), which all wait on the batcher
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
    assert statuses == [200] * 60
    assert sum(calls) == 60 and len(calls) < 60
