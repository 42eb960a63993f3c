"""ASGI middleware: request body limits, and HEAD answered wherever GET is.

Both work below FastAPI, on the raw ASGI messages, so that a body over its
limit is refused before it is read (413), and a client that stops sending
halfway is cut off (408) instead of holding a connection forever.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_BODY_BYTES = 5 * 1024 * 1024  # multipart uploads: a phone photo fits
# A 28x28 JSON body is about 3 KB (the widest, "255.0, " per pixel, 6 KB), so
# 64 KB leaves room for spacing and refuses the multi-megabyte bodies that
# would take seconds to parse.
MAX_JSON_BYTES = 64 * 1024
BODY_IDLE_SECONDS = 15.0  # the longest wait for the next piece of a body

Scope = dict[str, Any]


def media_type(headers: list[tuple[bytes, bytes]] | Any) -> str:
    """The Content-Type's media type, lower-cased, without parameters ("" if none).

    Media types are case-insensitive (RFC 9110), and ``; charset=utf-8`` or a
    multipart ``boundary`` are parameters, not part of the type.
    """
    if isinstance(headers, list):
        value = dict(headers).get(b"content-type", b"").decode("latin-1")
    else:
        value = headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _size_text(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


class _BodyTooLargeError(Exception):
    pass


class _BodyTooSlowError(Exception):
    pass


class LimitBody:
    """Refuse bodies over their limit with 413, and stalled bodies with 408.

    Multipart uploads may be up to ``max_body_bytes``; any other body (JSON
    pixels, or something the route will refuse as 415) up to
    ``max_json_bytes``. The declared Content-Length is checked first, then the
    bytes are counted as they arrive, so a chunked body cannot grow unbounded.
    """

    def __init__(
        self,
        app: Any,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_json_bytes: int = MAX_JSON_BYTES,
        idle_seconds: float = BODY_IDLE_SECONDS,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        is_upload = media_type(headers) == "multipart/form-data"
        limit = self.max_body_bytes if is_upload else self.max_json_bytes
        what = "request body" if is_upload else "request body (other than a multipart upload)"
        too_large = f"{what} is over the {_size_text(limit)} limit"
        declared = dict(headers).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, too_large)
            return

        received = 0
        body_complete = False
        response_started = False

        async def limited_receive() -> dict:
            nonlocal received, body_complete
            if body_complete:  # e.g. a streaming response waiting for a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_seconds)
            except asyncio.TimeoutError:
                raise _BodyTooSlowError from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > limit:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            if not response_started:
                await _send_error(send, 413, too_large)
        except _BodyTooSlowError:
            if not response_started:
                message = f"request body stalled: nothing arrived for {self.idle_seconds:.0f} s"
                await _send_error(send, 408, message)


async def _send_error(send: Any, status: int, message: str) -> None:
    """Our error shape, sent before the body is read: so the connection is closed after it."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"detail": message}).encode()})


class HeadAsGet:
    """Answer HEAD wherever GET is answered: the same status and headers, no body.

    Starlette's plain routes do this themselves; FastAPI's do not, and listing
    HEAD on each route would document every endpoint twice in /docs.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: dict) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        # A copy: the server keeps the original scope and knows the request was HEAD.
        await self.app({**scope, "method": "GET"}, receive, send_without_body)
