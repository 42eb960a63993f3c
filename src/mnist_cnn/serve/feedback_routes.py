"""``POST /api/feedback``: store a person's confirmation or correction of an answer.

The row goes to the feedback database (``feedback.FeedbackStore``) that the
server was started with; the picture, if sent, is decoded as uploads are and
kept small (``feedback.stored_picture``). Writing happens in a worker thread;
the store takes one writer at a time, and SQLite's WAL lets other processes
read and write the same file meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mnist_cnn.decoding import decode_image
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.feedback import (
    MAX_PICTURE_BYTES,
    NOT_A_DIGIT,
    NOT_A_DIGIT_TEXT,
    Feedback,
    FeedbackRow,
    FeedbackStoreError,
    label_text,
    stored_picture,
)
from mnist_cnn.serve.dependencies import FeedbackStoreDependency, SettingsDependency
from mnist_cnn.serve.schemas import (
    FEEDBACK_EXAMPLE,
    ErrorDetail,
    FeedbackRequest,
    FeedbackStored,
)

feedback_api = APIRouter(prefix="/api")

FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorDetail, "description": "The body is over 64 KB."},
    422: {
        "model": ErrorDetail,
        "description": "A label or answer that is not 0-9 or 'not a digit', a 28x28 image "
        "that is not 28 rows of 28 whole numbers in [0, 255], a picture over 32 KB or not an "
        "image, or a model that is not the served one.",
    },
    503: {"model": ErrorDetail, "description": "This server keeps no feedback, or its "
          "database failed (a full disk)."},
}  # fmt: skip


@feedback_api.post(
    "/feedback",
    summary="Say whether an answer was right, and what it really is",
    description=(
        "JSON: `preprocessed` (the 28x28 image the answer came with, from "
        "`/api/predict?include=preprocessed`), `answer` (what the model said) and `label` "
        '(what it is), each 0-9 or `"not a digit"`; optionally `model` (must be the served '
        "model, as `/api/model` names it), `picture` (base64, up to 32 KB) and `source`. "
        "Answers 201 with the stored row. Everything stays on this machine."
    ),
    status_code=201,
    responses=FEEDBACK_RESPONSES,
    openapi_extra={"requestBody": {"content": {"application/json": {"example": FEEDBACK_EXAMPLE}}}},
)
async def add_feedback(
    body: FeedbackRequest, settings: SettingsDependency, store: FeedbackStoreDependency
) -> FeedbackStored:
    served = settings.metadata.get("name")
    if body.model is not None and body.model != served:
        raise MnistCnnError(f"model {body.model!r}: not the served model ({served!r})")
    feedback = await run_in_threadpool(feedback_from_request, body, served)
    try:
        row = await run_in_threadpool(store.add, feedback)
    except FeedbackStoreError as error:
        raise HTTPException(503, str(error)) from None
    return stored_view(row)


def feedback_from_request(body: FeedbackRequest, model: str | None) -> Feedback:
    picture = None
    if body.picture is not None:
        data = picture_bytes(body.picture)
        try:
            picture = stored_picture(decode_image(data, "picture"))
        except MnistCnnError as error:
            # Not an image is 415 for an upload; here it is one bad field of the body.
            raise MnistCnnError(str(error)) from None
    return Feedback(
        preprocessed=np.array(body.preprocessed, dtype=np.uint8),
        answer=label_value(body.answer),
        label=label_value(body.label),
        model=model,
        source=body.source,
        picture=picture,
    )


def picture_bytes(text: str) -> bytes:
    """Base64 (or a base64 data: URL) -> bytes, at most MAX_PICTURE_BYTES; one line otherwise."""
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if not head.endswith(";base64"):
            raise MnistCnnError("picture: a data: URL must be base64 (data:image/png;base64,...)")
    # Refused from its length before decoding: base64 is 4 characters for every 3 bytes.
    if len(text) > 4 * (MAX_PICTURE_BYTES // 3 + 1):
        raise MnistCnnError(
            f"picture: about {len(text) * 3 // 4} bytes, over the {MAX_PICTURE_BYTES // 1024} KB "
            "limit (send it shrunk, e.g. 200 px a side)"
        )
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MnistCnnError("picture: not valid base64") from None
    if len(data) > MAX_PICTURE_BYTES:
        raise MnistCnnError(
            f"picture: {len(data)} bytes, over the {MAX_PICTURE_BYTES // 1024} KB limit"
        )
    return data


def label_value(value: int | str) -> int:
    return NOT_A_DIGIT if value == NOT_A_DIGIT_TEXT else int(value)


def json_label(value: int) -> int | str:
    """A stored label as the API writes it: the digit as a number, or "not a digit"."""
    return label_text(value) if value == NOT_A_DIGIT else value


def stored_view(row: FeedbackRow) -> FeedbackStored:
    return FeedbackStored(
        id=row.id,
        created_at=row.created_at,
        answer=None if row.answer is None else json_label(row.answer),
        label=json_label(row.label),
        confirmed=row.confirmed,
        model=row.model,
        source=row.source,
        picture_bytes=row.picture_bytes,
    )
