"""The API's request and response bodies as pydantic models.

They validate what comes in and describe what goes out, so ``/docs`` shows
the real shapes. The answer itself is built by ``prediction.Answer.to_dict``
(the one builder, shared with ``predict --json``); ``AnswerResult`` describes
it, and the API validates every answer against it on the way out.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from mnist_cnn.data import IMAGE_SIZE
from mnist_cnn.feedback import NOT_A_DIGIT_TEXT

# Strict: JSON true and "12" are refused rather than read as 1 and 12.
Pixel = Annotated[float, Field(ge=0, le=255, strict=True, allow_inf_nan=False)]
PixelRow = Annotated[list[Pixel], Field(min_length=IMAGE_SIZE, max_length=IMAGE_SIZE)]
PixelGrid = Annotated[list[PixelRow], Field(min_length=IMAGE_SIZE, max_length=IMAGE_SIZE)]


# What include=preprocessed and include=saliency add, to a piece and to a whole answer.
PreprocessedImage = Annotated[
    list[list[int]] | None,
    Field(description="the 28x28 image the model saw, 0-255; only with include=preprocessed"),
]
SaliencyMap = Annotated[
    list[list[float]] | None,
    Field(
        description="where the answer leans on the 28x28 image, 28 rows of 28 numbers in "
        "[0, 1] (occlusion, brighter where erasing the ink lowers the answer more); "
        "only with include=saliency"
    ),
]


class PixelsRequest(BaseModel):
    """A drawn digit as numbers: 28 rows of 28 grey levels, 0 (black) to 255 (white ink)."""

    pixels: PixelGrid = Field(
        description="28 rows of 28 grey levels in [0, 255]; light ink on dark, as MNIST"
    )


class Include(str, Enum):
    """What an answer may add when asked for with ``?include=``."""

    PREPROCESSED = "preprocessed"  # the 28x28 image the model saw: 28 rows of 28 numbers
    SALIENCY = "saliency"  # where each answer leans: 28 rows of 28 numbers in [0, 1]


class TopClass(BaseModel):
    digit: int = Field(description="class index")
    name: str = Field(description="the class's display name")
    probability: float


class DigitResult(BaseModel):
    """One digit of a number read with multi=true."""

    model_config = ConfigDict(extra="forbid")

    digit: int = Field(description="class index of the digit read")
    name: str = Field(description="display name of that class")
    confidence: float = Field(description="probability of the class chosen")
    uncertain: bool = Field(description="confidence under the server's threshold")
    top: list[TopClass] = Field(description="the three most probable classes, best first")
    probabilities: list[float] = Field(description="one per class, in class-index order")
    not_a_digit: bool = Field(
        description="this piece does not look like a digit; it is left out of number"
    )
    digit_score: float = Field(description="how digit-like the piece is, 0-1, higher is more")
    box: list[int] = Field(description="[top, left, bottom, right] of the digit in the picture")
    preprocessed: PreprocessedImage = None
    saliency: SaliencyMap = None


class AnswerResult(BaseModel):
    """The answer for one picture; every key is always there, null where it does not apply.

    One digit fills ``digit`` ... ``preprocessed``; a number read with
    multi=true fills ``number`` and ``digits`` and leaves those null; no digit
    leaves both null and gives a ``reason``.
    """

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="the uploaded file's name, or 'pixels' for JSON")
    digit: int | None = Field(description="class index of the digit read")
    name: str | None = Field(description="display name of that class")
    confidence: float | None = Field(description="probability of the class chosen")
    uncertain: bool | None = Field(description="confidence under the server's threshold")
    top: list[TopClass] | None = Field(description="the three most probable classes, best first")
    probabilities: list[float] | None = Field(description="one per class, in class-index order")
    not_a_digit: bool | None = Field(
        description=(
            "the picture does not look like a digit (a dot, a letter, a scribble): number is "
            "null, reason is 'not a digit', and digit ... probabilities are the best guess"
        )
    )
    digit_score: float | None = Field(
        description="how digit-like the picture is, 0-1, higher is more; under the "
        "detector's threshold it is not a digit"
    )
    preprocessed: PreprocessedImage = None
    saliency: SaliencyMap = None
    number: str | None = Field(description="all digits read, left to right, as one string")
    digits: list[DigitResult] | None = Field(description="with multi=true: one entry per digit")
    reason: str | None = Field(
        description="why there is no digit: 'no digit found' or 'not a digit'"
    )
    error: str | None = Field(description="a problem with this input (predict --json only)")


class ErrorDetail(BaseModel):
    """Every error the API answers: one line naming the input and the problem."""

    detail: str = Field(examples=["pixels[3]: 27 numbers, expected 28 rows of 28 numbers"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    model: str | None = Field(description="the run folder's name")
    preset: str | None


class ModelInfo(BaseModel):
    """The served model's metadata; a caller's extra metadata keys pass through."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, description="the run folder's name")
    file: str | None = Field(default=None, description="the model file, relative to its run")
    engine: str | None = None
    version: str | None = None
    preset: str | None = None
    test_accuracy: float | None = None
    parameters: int | None = None
    class_names: list[str]
    input_shape: list[int]


# MNIST's first test image, a 7: mnist.test_images[0].tolist() from the bundled copy,
# pasted once. Swagger UI's "Try it out" sends it, so the example reads a digit.
# fmt: off
SEVEN_PIXELS: list[list[int]] = [
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 84, 185, 159, 151, 60, 36, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 222, 254, 254, 254, 254, 241, 198, 198,
     198, 198, 198, 198, 198, 198, 170, 52, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 67, 114, 72, 114, 163, 227, 254, 225,
     254, 254, 254, 250, 229, 254, 254, 140, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 66, 14,
     67, 67, 67, 59, 21, 236, 254, 106, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 83, 253, 209, 18, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 22, 233, 255, 83, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 129, 254, 238, 44, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 59, 249, 254, 62, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 133, 254, 187, 5, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 9, 205, 248, 58, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 126, 254, 182, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     75, 251, 240, 57, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19,
     221, 254, 166, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 203,
     254, 219, 35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 38, 254,
     254, 77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 31, 224, 254,
     115, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 133, 254, 254,
     52, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 61, 242, 254, 254,
     52, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 121, 254, 254, 219,
     40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 121, 254, 207, 18,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
]
# fmt: on

# What the API answers for SEVEN_PIXELS (rounded; from a model of the two-epoch fast preset).
SEVEN_ANSWER: dict[str, Any] = {
    "file": "pixels",
    "digit": 7,
    "name": "7",
    "confidence": 0.9991,
    "uncertain": False,
    "top": [
        {"digit": 7, "name": "7", "probability": 0.9991},
        {"digit": 3, "name": "3", "probability": 0.0004},
        {"digit": 2, "name": "2", "probability": 0.0002},
    ],
    "probabilities": [0.0, 0.0001, 0.0002, 0.0004, 0.0, 0.0, 0.0, 0.9991, 0.0, 0.0002],
    "not_a_digit": False,
    "digit_score": 0.9991,
    "number": "7",
    "digits": None,
    "reason": None,
    "error": None,
}

# FastAPI takes one body model per route; this one takes two content types, so
# the request body is described here and parsed by the route itself.
PREDICT_REQUEST_BODY: dict[str, Any] = {
    "content": {
        # An example of its own, at the media type: Swagger UI shows it in the JSON
        # editor, instead of the multipart form's state or an all-zero grid.
        "application/json": {
            "schema": PixelsRequest.model_json_schema(),
            "example": {"pixels": SEVEN_PIXELS},
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
    "required": True,
}


# ---- Feedback: a person's confirmation or correction of an answer -------------------

# The 28x28 image as answers give it (include=preprocessed): whole numbers 0-255.
GreyLevel = Annotated[int, Field(ge=0, le=255, strict=True)]
GreyRow = Annotated[list[GreyLevel], Field(min_length=IMAGE_SIZE, max_length=IMAGE_SIZE)]
GreyGrid = Annotated[list[GreyRow], Field(min_length=IMAGE_SIZE, max_length=IMAGE_SIZE)]


def _digit_or_not(value: Any) -> int | str:
    """A digit 0-9 (a JSON number) or the words "not a digit"; one message for anything else."""
    if value == NOT_A_DIGIT_TEXT and isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    shown = json.dumps(value) if isinstance(value, bool | str | int | float | None) else "value"
    raise PydanticCustomError(
        "digit_or_not", f"{shown[:40]} is not a digit 0-9 or {NOT_A_DIGIT_TEXT!r}"
    )


DigitOrNot = Annotated[
    int | str,
    PlainValidator(_digit_or_not),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"const": NOT_A_DIGIT_TEXT}]}
    ),
]


class FeedbackRequest(BaseModel):
    """Whether an answer was right, and what the picture really shows."""

    model_config = ConfigDict(extra="forbid")

    preprocessed: GreyGrid = Field(
        description="the 28x28 image the model saw, 0-255, as the answer's `preprocessed` "
        "(ask /api/predict with include=preprocessed)"
    )
    answer: DigitOrNot = Field(description="what the model answered: 0-9, or 'not a digit'")
    label: DigitOrNot = Field(description="what it really is: 0-9, or 'not a digit'")
    model: str | None = Field(
        default=None,
        max_length=200,
        description="the model that answered, as /api/model's `name`; refused when it is not "
        "the served model (default: the served model)",
    )
    picture: str | None = Field(
        default=None,
        description="the picture that was read, base64 (a data: URL is fine), up to 32 KB; "
        "stored grey, at most 128 px a side, as PNG",
    )
    source: Literal["page", "api"] = Field(default="api", description="who sends it")


class FeedbackStored(BaseModel):
    """The stored row (its images left out)."""

    id: int = Field(description="the row's id in the feedback database")
    created_at: str = Field(description="when it was stored, ISO 8601 UTC")
    answer: int | str | None = Field(description="0-9 or 'not a digit'")
    label: int | str = Field(description="0-9 or 'not a digit'")
    confirmed: bool | None = Field(description="the answer was right")
    model: str | None
    source: str
    picture_bytes: int = Field(description="size of the stored PNG; 0 without a picture")


FEEDBACK_EXAMPLE: dict[str, Any] = {
    "preprocessed": SEVEN_PIXELS,
    "answer": 7,
    "label": 7,
    "source": "api",
}
