"""The routes: the drawing page, and the REST API under /api.

The prediction route reads the body (a multipart upload or JSON pixels),
then answers with ``prediction.answer_pictures`` in a worker thread, the
same function ``mnist-cnn predict`` uses, given a classifier whose forward
passes are shared between waiting requests (``batcher``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from mnist_cnn.decoding import array_to_gray, decode_image
from mnist_cnn.engines import Classifier
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.prediction import answer_pictures
from mnist_cnn.preprocess import INPUT_SHAPE
from mnist_cnn.reading import Picture
from mnist_cnn.serve.dependencies import (
    BatchedClassifierDependency,
    ClassifierDependency,
    DecodeSlotsDependency,
    SettingsDependency,
)
from mnist_cnn.serve.handlers import UnsupportedMediaTypeError
from mnist_cnn.serve.middleware import media_type
from mnist_cnn.serve.schemas import (
    PREDICT_REQUEST_BODY,
    SEVEN_ANSWER,
    AnswerResult,
    ErrorDetail,
    Health,
    Include,
    ModelInfo,
    PixelsRequest,
)

STATIC = resources.files("mnist_cnn") / "static"
# A digit on a dark square, so the browser tab shows something instead of asking again.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 28 28">'
    '<rect width="28" height="28" rx="4" fill="#111"/>'
    '<text x="14" y="22" font-size="20" font-family="sans-serif" fill="#fff" '
    'text-anchor="middle">7</text></svg>'
)

PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer: the digit read, or null with a reason.",
        "content": {"application/json": {"example": SEVEN_ANSWER}},
    },
    413: {
        "model": ErrorDetail,
        "description": "The body is over its limit (5 MB for an upload, 64 KB otherwise), "
        "or the image has over 50 megapixels.",
    },
    415: {
        "model": ErrorDetail,
        "description": "The upload is not an image, or the body is neither multipart nor JSON.",
    },
    422: {
        "model": ErrorDetail,
        "description": "A damaged image, malformed JSON or pixels, a multipart body without "
        "the field 'file' or with a bad boundary, or a bad query parameter.",
    },
}

pages = APIRouter()
api = APIRouter(prefix="/api")


@pages.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), media_type="text/html")


@pages.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    return Response(
        FAVICON_SVG, media_type="image/svg+xml", headers={"cache-control": "max-age=86400"}
    )


@api.get("/health", summary="Is the server up, and with which model?")
async def health(settings: SettingsDependency) -> Health:
    metadata = settings.metadata
    return Health(status="ok", model=metadata.get("name"), preset=metadata.get("preset"))


@api.get("/model", summary="The model's metadata")
async def model_info(settings: SettingsDependency, classifier: ClassifierDependency) -> ModelInfo:
    return ModelInfo(
        **{
            **settings.metadata,
            "class_names": list(classifier.class_names),
            "input_shape": list(INPUT_SHAPE),
        }
    )


@api.post(
    "/predict",
    summary="Read the digit (or, with multi=true, the number) in an image",
    description=(
        "Send an image file as multipart/form-data (field `file`, up to 5 MB), or JSON "
        '`{"pixels": 28 rows of 28 numbers in [0, 255]}` (up to 64 KB). The answer holds '
        "`digit` (the class index), `name`, `confidence`, `top` and `probabilities` (one per "
        "class); they are null, with a `reason`, when there is no digit. With `multi=true`: "
        "`number` and one entry per digit in `digits`, left to right. With "
        "`include=preprocessed`, also `preprocessed`: the 28x28 image the model saw. With "
        "`include=saliency`, also `saliency` per digit: where its answer leans, 28x28 in [0, 1]. "
        'Every error is `{"detail": "one line"}`.'
    ),
    response_model=AnswerResult,
    # The 28x28 image is left out unless asked for: a key never set is not sent.
    response_model_exclude_unset=True,
    responses=PREDICT_RESPONSES,
    openapi_extra={"requestBody": PREDICT_REQUEST_BODY},
)
async def predict(
    request: Request,
    settings: SettingsDependency,
    classifier: BatchedClassifierDependency,
    decode_slots: DecodeSlotsDependency,
    multi: Annotated[
        bool, Query(description="read every digit, left to right, as one number")
    ] = False,
    include: Annotated[
        list[Include],
        Query(
            description="preprocessed: add the 28x28 image the model saw (0-255); "
            "saliency: add where each answer leans (28x28 in [0, 1])"
        ),
    ] = [],  # noqa: B006 (FastAPI copies a default, it is never shared)
) -> dict[str, Any]:
    shown = Shown(
        multi=multi,
        preprocessed=Include.PREPROCESSED in include,
        saliency=Include.SALIENCY in include,
    )
    kind = media_type(request.headers)
    if kind == "application/json":
        body = await request.body()
        # Parsed in a worker thread: even a body at the limit never stalls the event loop.
        gray = await run_in_threadpool(gray_from_json, body)
        return await run_in_threadpool(
            _answer, Picture(name="pixels", gray=gray), classifier, shown, settings.min_confidence
        )
    if kind == "multipart/form-data":
        name, data = await _read_upload(request)
        # The upload is read before taking a slot, so a slow client never holds one.
        async with decode_slots:
            return await run_in_threadpool(
                _answer_upload, name, data, classifier, shown, settings.min_confidence
            )
    raise UnsupportedMediaTypeError(
        f"content type {kind or 'none'!r}: send an image as multipart/form-data "
        "(field 'file') or JSON pixels as application/json"
    )


def gray_from_json(body: bytes) -> np.ndarray:
    """``{"pixels": 28x28 numbers in [0, 255]}`` -> (28, 28) float32 grayscale in [0, 1]."""
    try:
        pixels = PixelsRequest.model_validate_json(body).pixels
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=True)
        raise RequestValidationError(
            [{**problem, "loc": ("body", *problem["loc"])} for problem in errors]
        ) from None
    return array_to_gray(np.asarray(pixels, dtype=np.float32) / 255.0, "pixels")


async def _read_upload(request: Request) -> tuple[str, bytes]:
    """The name and bytes of the multipart field ``file``."""
    try:
        # The context closes the spooled upload files when done.
        async with request.form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise MnistCnnError("multipart body needs an image in the field 'file'")
            return upload.filename or "upload", await upload.read()
    except HTTPException as error:  # Starlette's answer to a malformed multipart body
        raise MnistCnnError(f"multipart body: {error.detail}") from None


@dataclass(frozen=True)
class Shown:
    """What the caller asked to see: every digit of a number, the preprocessed image."""

    multi: bool
    preprocessed: bool
    saliency: bool = False


def _answer(
    picture: Picture, classifier: Classifier, shown: Shown, min_confidence: float
) -> dict[str, Any]:
    answers = answer_pictures(
        [picture], classifier, multi=shown.multi, min_confidence=min_confidence
    )
    if shown.saliency:
        from mnist_cnn.explain import explain_answers

        # 169 occluded copies per digit, through the same shared batches.
        answers = explain_answers(answers, classifier)
    (answer,) = answers
    return answer.to_dict(include_preprocessed=shown.preprocessed)


def _answer_upload(
    name: str, data: bytes, classifier: Classifier, shown: Shown, min_confidence: float
) -> dict[str, Any]:
    # Decoded here, inside a decode slot: the full-size picture lives only in this call.
    return _answer(
        Picture(name=name, gray=decode_image(data, name)), classifier, shown, min_confidence
    )
