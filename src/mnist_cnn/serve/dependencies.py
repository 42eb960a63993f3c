"""What the routes need, given to them with ``Depends``: settings, the model, decode slots.

``create_app`` keeps each on ``app.state``; the routes ask for them through
these functions, so a test can swap one with ``app.dependency_overrides``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from mnist_cnn.engines import Classifier
from mnist_cnn.errors import MnistCnnError
from mnist_cnn.feedback import FeedbackStore, LazyFeedbackStore
from mnist_cnn.prediction import DEFAULT_MIN_CONFIDENCE
from mnist_cnn.serve.batcher import Batcher
from mnist_cnn.serve.middleware import MAX_BODY_BYTES, MAX_JSON_BYTES

# Image decodes (and the preprocessing that follows, while the full-size
# picture is in memory) allowed at once. A 49-megapixel upload takes about
# 0.7 GB while decoded: four at once took the Keras server from 0.75 GB warm to
# a 3.0 GB peak with 8 slots, 2.1 GB with 2 (benchmarks/results/
# load_test-abusive*.json, measured before decode_image decoded big pictures
# reduced). The rest wait their turn without holding a thread.
MAX_CONCURRENT_DECODES = 2


@dataclass(frozen=True)
class ServeSettings:
    """The server's settings, fixed when the app is built."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # answers below it are marked uncertain
    max_body_bytes: int = MAX_BODY_BYTES  # multipart uploads
    max_json_bytes: int = MAX_JSON_BYTES  # every other body
    max_concurrent_decodes: int = MAX_CONCURRENT_DECODES
    metadata: dict[str, Any] = field(default_factory=dict)  # shown by /api/model


def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


def get_classifier(request: Request) -> Classifier:
    """The loaded model itself: its class names, and forward passes one request at a time."""
    return request.app.state.classifier


def get_batched_classifier(request: Request) -> Classifier:
    """The model as the routes use it: forward passes shared between waiting requests."""
    batcher: Batcher = request.app.state.batcher
    return batcher.as_classifier()


def get_decode_slots(request: Request) -> asyncio.Semaphore:
    """The semaphore bounding image decodes; made on first use, in the server's event loop."""
    state = request.app.state
    slots = getattr(state, "decode_slots", None)
    if slots is None:
        slots = state.decode_slots = asyncio.Semaphore(state.settings.max_concurrent_decodes)
    return slots


def get_feedback_store(request: Request) -> FeedbackStore:
    """The feedback database, made at the first feedback; 503 when the server keeps none."""
    from starlette.exceptions import HTTPException

    store: LazyFeedbackStore | None = getattr(request.app.state, "feedback_store", None)
    if store is None:
        raise HTTPException(503, "this server keeps no feedback (mnist-cnn serve keeps it)")
    try:
        return store.get()
    except (
        MnistCnnError
    ) as error:  # the data folder cannot be made or written: not the body's fault
        raise HTTPException(503, str(error)) from None


SettingsDependency = Annotated[ServeSettings, Depends(get_settings)]
ClassifierDependency = Annotated[Classifier, Depends(get_classifier)]
BatchedClassifierDependency = Annotated[Classifier, Depends(get_batched_classifier)]
DecodeSlotsDependency = Annotated[asyncio.Semaphore, Depends(get_decode_slots)]
FeedbackStoreDependency = Annotated[FeedbackStore, Depends(get_feedback_store)]
