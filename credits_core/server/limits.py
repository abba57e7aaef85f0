"""Request bodies: refused with 413 before they are read whole, and with 408 when the
client sends them too slowly. Every body but usage is read as JSON.

`BodyLimit` is an ASGI middleware in front of the API. A `Content-Length` over the limit
is refused at once, unread; a body without one is counted as it arrives and refused as
soon as it passes the limit. The whole body must arrive within `body_timeout_s`, so a
client sending a byte a second holds nothing but its own connection. The body read here
is handed on to the app, which never waits on the network itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credits_core.server.errors import ApiError

MB = 1024 * 1024
DEFAULT_LIMIT_BYTES = 1 * MB
USAGE_LIMIT_BYTES = 16 * MB
BODY_TIMEOUT_S = 10.0


def limit_for(path: str) -> int:
    return USAGE_LIMIT_BYTES if path.rstrip("/") == "/v1/usage" else DEFAULT_LIMIT_BYTES


class BodyLimit:
    def __init__(self, app: ASGIApp, body_timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        length = _content_length(scope)
        if length is not None and length > limit:
            await _answer(send, too_large(limit))
            return
        try:
            body = await self._read(receive, limit)
        except ApiError as error:
            await _answer(send, error)
            return
        except _Disconnected:
            return
        if limit == DEFAULT_LIMIT_BYTES:
            scope = _as_json(scope)
        await self.app(scope, replay(body, receive), send)

    async def _read(self, receive: Receive, limit: int) -> bytes:
        try:
            async with asyncio.timeout(self.body_timeout_s):  # one timer for the whole body
                return await _body(receive, limit)
        except TimeoutError:
            raise ApiError(
                408,
                "request_timeout",
                f"The request body did not arrive within {self.body_timeout_s:g} s; "
                "send it in one go.",
            ) from None


async def _body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Disconnected(Exception):
    pass


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"The request body is larger than {limit // MB} MB. Send fewer operations or rows "
        "per request.",
        {"limit_bytes": limit},
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _as_json(scope: Scope) -> Scope:
    """Every body but usage is JSON, whatever Content-Type the client sent (`curl -d`
    sends a form type), so that a bad body gets its JSON error, not a puzzling one."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands on `body` first, then what `receive` gets."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, error: ApiError) -> None:
    payload: Any = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
