"""The web page and REST API: draw a digit in the browser, or POST one.

FastAPI on uvicorn. The model is loaded once. Decoding and preprocessing run
in worker threads (they are numpy and Pillow work), and the model runs in a
single worker that takes every request waiting at that moment as one batch,
so concurrent small requests share one forward pass and the event loop never
blocks.

Errors are JSON ``{"detail": "..."}`` with the status that fits: 413 for a
body over 5 MB or an image of too many pixels, 415 for something that is not
an image, 422 for a damaged image or malformed JSON, 404 and 405 from routing.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from mnist_cnn.engines import Classifier
from mnist_cnn.errors import ImageTooLargeError, MnistCnnError, NotAnImageError
from mnist_cnn.prediction import DEFAULT_MIN_CONFIDENCE, DigitAnswer, digit_answer, digits_in
from mnist_cnn.preprocess import NO_DIGIT, array_to_gray, decode_image, to_model_input

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH = 64  # images per forward pass when requests pile up


class PixelsRequest(BaseModel):
    """A drawn digit as numbers: 28 rows of 28 grey levels, 0 (black) to 255 (white ink)."""

    pixels: list[list[float]] = Field(
        description="28x28 grey levels in [0, 255]; light ink on dark, as MNIST",
        json_schema_extra={"example": [[0] * 28] * 28},
    )


class BodyTooLargeError(Exception):
    pass


class LimitBodySize:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, before reading them.

    Checks Content-Length first, then counts the bytes of chunked bodies as
    they arrive, so a client cannot stream an unbounded upload.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        received = 0
        response_started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not response_started:
                await _too_large(send, self.limit)


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"detail": f"request body is over the {limit // (1024 * 1024)} MB limit"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


@dataclass
class _Job:
    images: np.ndarray  # (K, 28, 28) uint8
    future: asyncio.Future


class Batcher:
    """Runs the classifier in one worker thread over whatever requests are waiting."""

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.queue: asyncio.Queue[_Job] | None = None
        self.worker: asyncio.Task | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    async def probabilities(self, images: np.ndarray) -> np.ndarray:
        if self.queue is None:  # not started (e.g. no lifespan): run directly
            return await run_in_threadpool(self._run, images)
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(images, future))
        return await future

    def _run(self, images: np.ndarray) -> np.ndarray:
        return self.classifier.probabilities(to_model_input(images))

    async def _work(self) -> None:
        assert self.queue is not None
        while True:
            jobs = [await self.queue.get()]
            while not self.queue.empty() and sum(len(job.images) for job in jobs) < MAX_BATCH:
                jobs.append(self.queue.get_nowait())
            try:
                output = await run_in_threadpool(
                    self._run, np.concatenate([job.images for job in jobs])
                )
            except Exception as error:
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(output[start : start + len(job.images)])
                start += len(job.images)


def _digit_json(answer: DigitAnswer) -> dict[str, Any]:
    result = {
        "digit": answer.digit,
        "confidence": answer.confidence,
        "uncertain": answer.uncertain,
        "probabilities": [round(float(p), 6) for p in answer.probabilities],
        "preprocessed": answer.image.tolist(),
    }
    if answer.box is not None:
        result["box"] = list(answer.box)
    return result


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


def _status_for(error: MnistCnnError) -> int:
    if isinstance(error, ImageTooLargeError):
        return 413
    if isinstance(error, NotAnImageError):
        return 415
    return 422  # damaged or truncated images, malformed pixels


def _gray_from_pixels(raw: Any) -> np.ndarray:
    """Validate ``{"pixels": 28x28}`` and return grayscale in [0, 1]."""
    try:
        request = PixelsRequest.model_validate(raw)
    except Exception as error:
        first = str(error).splitlines()
        raise MnistCnnError(f"pixels: {first[0] if first else 'invalid'}") from None
    array = np.asarray(request.pixels, dtype=np.float64)
    if array.shape != (28, 28):
        raise MnistCnnError(f"pixels: shape {array.shape}, expected 28 rows of 28 numbers")
    if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255:
        raise MnistCnnError("pixels: values must be numbers in [0, 255]")
    return array_to_gray((array / 255.0).astype(np.float32), "pixels")


def create_app(
    classifier: Classifier,
    metadata: dict[str, Any] | None = None,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The FastAPI application around a loaded ``classifier``."""
    metadata = dict(metadata or {})
    batcher = Batcher(classifier)

    async def lifespan(_: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="mnist-cnn",
        summary="Read handwritten digits: draw one on the page, or POST an image.",
        version=metadata.get("version", "0"),
        lifespan=asynccontextmanager(lifespan),
        docs_url=None,  # served below from local files: FastAPI's default page uses a CDN
        redoc_url=None,
    )
    static = resources.files("mnist_cnn") / "static"
    _add_offline_docs(app)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/health", summary="Is the server up, and with which model?")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": metadata.get("name"), "preset": metadata.get("preset")}

    @app.get("/api/model", summary="The model's metadata")
    async def model_info() -> dict[str, Any]:
        return {**metadata, "class_names": list(classifier.class_names), "input_shape": [28, 28, 1]}

    @app.post(
        "/api/predict",
        summary="Read the digit (or, with multi=true, the number) in an image",
        description=(
            "Send an image file as multipart/form-data (field `file`), or JSON "
            '`{"pixels": 28x28 numbers 0-255}`. The answer holds `digit`, `confidence`, '
            "`probabilities` (one per class) and `preprocessed` (the 28x28 image the model "
            "saw); `digit` is null with a `reason` when there is no digit. With `multi=true`: "
            "`number` and one entry per digit in `digits`, left to right."
        ),
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                    "application/json": {"schema": PixelsRequest.model_json_schema()},
                },
                "required": True,
            }
        },
    )
    async def predict_endpoint(request: Request, multi: bool = False) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        try:
            if content_type.startswith("multipart/form-data"):
                # The context closes the spooled upload files when done.
                async with request.form() as form:
                    upload = form.get("file")
                    if upload is None or isinstance(upload, str):
                        return _error(422, "multipart body needs an image in the field 'file'")
                    data = await upload.read()
                    name = upload.filename or "upload"
                gray = await run_in_threadpool(decode_image, data, name)
            elif content_type.startswith("application/json"):
                try:
                    raw = json.loads(await request.body())
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return _error(422, "body is not valid JSON")
                gray = _gray_from_pixels(raw)
            else:
                return _error(
                    415, "send an image as multipart/form-data (field 'file') or JSON pixels"
                )
        except MnistCnnError as error:
            return _error(_status_for(error), str(error))

        digits = await run_in_threadpool(digits_in, gray, multi)
        if not digits:
            empty: dict[str, Any] = {"digit": None, "reason": NO_DIGIT, "confidence": None,
                                     "probabilities": None, "preprocessed": None}  # fmt: skip
            if multi:
                empty.update(number=None, digits=[])
            return JSONResponse(empty)
        probabilities = await batcher.probabilities(np.stack([digit.image for digit in digits]))
        answers = [
            _digit_json(digit_answer(digit, row, classifier.class_names, min_confidence))
            for digit, row in zip(digits, probabilities, strict=True)
        ]
        if not multi:
            return JSONResponse(answers[0])
        return JSONResponse(
            {"number": "".join(answer["digit"] for answer in answers), "digits": answers}
        )

    app.add_middleware(LimitBodySize, limit=max_body_bytes)
    return app


def _add_offline_docs(app: FastAPI) -> None:
    """The OpenAPI page at /docs with Swagger UI 5 from the swagger-ui-bundle-v2 package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="mnist-cnn API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def model_metadata(run_or_model: Any, classifier: Classifier, engine: str) -> dict[str, Any]:
    """Name, preset and test accuracy of the served model, from its run folder."""
    from pathlib import Path

    from mnist_cnn import __version__
    from mnist_cnn.run_folder import RunFolder

    model_file = Path(classifier.name)
    run_dir = model_file.parent
    metadata: dict[str, Any] = {
        "name": run_dir.resolve().name if run_dir.name else model_file.name,
        "file": str(model_file),
        "engine": engine,
        "version": __version__,
    }
    metrics = RunFolder(run_dir).read_metrics()
    metadata["preset"] = metrics.get("preset")
    metadata["test_accuracy"] = metrics.get("test_accuracy")
    metadata["parameters"] = metrics.get("parameters")
    return metadata
