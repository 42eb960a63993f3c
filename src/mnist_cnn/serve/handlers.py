"""Every error the API answers, in one shape: ``{"detail": "one line"}``.

``MnistCnnError`` maps to a status by its type; FastAPI's own validation
errors (a bad query parameter, malformed JSON pixels) become one line naming
the input and the problem, instead of FastAPI's list of error objects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from mnist_cnn.errors import ImageTooLargeError, MnistCnnError, NotAnImageError

logger = logging.getLogger("mnist_cnn.serve")


class UnsupportedMediaTypeError(MnistCnnError):
    """The body is neither a multipart upload nor JSON (415)."""


def status_for(error: MnistCnnError) -> int:
    if isinstance(error, ImageTooLargeError):
        return 413
    if isinstance(error, NotAnImageError | UnsupportedMediaTypeError):
        return 415
    return 422  # damaged or truncated images, malformed pixels or multipart bodies


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


def _location(location: Sequence[Any]) -> str:
    """("body", "pixels", 3, 4) -> "pixels[3][4]"; ("query", "multi") -> "multi"."""
    parts = [part for part in location if part not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool | str | int | float | None) else "value"
    return text if len(text) <= 40 else text[:37] + "..."


def one_line(errors: Sequence[dict[str, Any]]) -> str:
    """The first validation error as one line: where, and what is wrong."""
    if not errors:
        return "request is not valid"
    error = errors[0]
    kind, where = error.get("type", ""), _location(error.get("loc", ()))
    context = error.get("ctx") or {}
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if kind == "json_invalid":
        return f"body is not valid JSON: {context.get('error', error.get('msg', ''))}"
    # The pixels to predict, and the 28x28 image sent back with feedback.
    if kind in ("too_short", "too_long") and where.startswith(("pixels", "preprocessed")):
        count = context.get("actual_length")
        unit = "rows" if where in ("pixels", "preprocessed") else "numbers"
        return f"{where}: {count} {unit}, expected 28 rows of 28 numbers"
    if kind in ("greater_than_equal", "less_than_equal", "finite_number"):
        return f"{where}: {_shown(error.get('input'))} is not a number in [0, 255]{more}"
    if kind in ("float_type", "float_parsing") and where.startswith("pixels"):
        return f"{where}: {_shown(error.get('input'))} is not a number{more}"
    if kind == "missing":
        return f"{where}: missing"
    return f"{where}: {error.get('msg', 'not valid')}{more}"


async def _mnist_cnn_error(request: Request, error: MnistCnnError) -> Response:
    return error_response(status_for(error), str(error).splitlines()[0] if str(error) else "error")


async def _validation_error(request: Request, error: RequestValidationError) -> Response:
    return error_response(422, one_line(error.errors()))


async def _client_disconnect(request: Request, error: ClientDisconnect) -> Response:
    # Nobody is left to read an answer; one log line instead of a traceback.
    logger.info(
        "%s %s: client disconnected before sending its body", request.method, request.url.path
    )
    return Response(status_code=400)


async def _unexpected(request: Request, error: Exception) -> Response:
    # Starlette still logs the traceback; the client gets our shape, not plain text.
    return error_response(500, "internal server error")


def add_exception_handlers(app: FastAPI) -> None:
    # Starlette types every handler as taking Exception, though it calls each with the
    # class it is registered for (as FastAPI's own docs write them): hence the ignores.
    app.add_exception_handler(MnistCnnError, _mnist_cnn_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, _client_disconnect)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
