"""HTTP middleware of the gateway: CORS limited to configured origins, and a request size limit.

- CORS: Starlette's :class:`~starlette.middleware.cors.CORSMiddleware` with the origins of the
  ``CORS_ORIGINS`` setting (comma-separated, e.g. ``https://www.city.morioka.iwate.jp``). Empty
  (the default) adds no CORS headers at all, so browsers allow same-origin calls only.
- Size limit: :class:`BodySizeLimitMiddleware` answers ``413`` with a clear message when a request
  body is larger than ``MAX_BODY_BYTES``: at once when ``Content-Length`` says so, otherwise as soon
  as the bytes actually received pass the limit (chunked uploads, or a ``Content-Length`` that lies).
  Bodies under the limit are buffered (at most ``MAX_BODY_BYTES``) and handed on unchanged, so
  the LINE signature is still checked over the exact raw bytes.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Settings

logger = logging.getLogger(__name__)

#: Methods whose body is checked (others carry no body in this API).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def too_large_message(max_bytes: int) -> str:
    """The 413 message (Japanese / English), e.g. 「リクエストが大きすぎます（65536 バイトまで）…」."""
    return f"リクエストが大きすぎます（{max_bytes} バイトまで）/ request body too large (max {max_bytes} bytes)"


class BodySizeLimitMiddleware:
    """Pure ASGI middleware: reject request bodies larger than ``max_bytes`` with HTTP 413.

    Args:
        app: the wrapped ASGI app.
        max_bytes: largest accepted body, bytes (> 0).

    The 413 answer is ``{"detail": "<message>"}`` (see :func:`too_large_message`); the wrapped app is
    not called for it. A client that disconnects while sending gets no answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send, f"content-length {int(declared)}")
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(scope, send, f"received more than {self.max_bytes} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for http.disconnect

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, send: Send, why: str) -> None:
        logger.warning("request body too large: %s %s (%s)", scope["method"], scope.get("path"), why)
        body = json.dumps({"detail": too_large_message(self.max_bytes)}, ensure_ascii=False).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def add_middlewares(app: FastAPI, settings: Settings) -> None:
    """Install the size limit and (when ``CORS_ORIGINS`` is set) CORS on ``app``.

    CORS is added last, i.e. outermost, so that 413 answers to an allowed origin also carry the
    CORS headers and the browser can show them.
    """
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.MAX_BODY_BYTES)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            max_age=600,
        )
