"""A local fake of the LINE Messaging API for tests (no network): a real HTTP server in a thread.

It records every ``POST /v2/bot/message/reply`` (JSON body and ``Authorization`` header) and can be
told to fail the next calls with an HTTP status (500, 429, 400 …) or to answer too late (timeout).
Tests wait for recorded replies with :meth:`FakeLine.wait_for_replies` (a condition variable with a
timeout, no sleeps).

Also: :func:`sign` computes ``X-Line-Signature`` exactly as LINE does (base64 of HMAC-SHA256 of the
raw body with the channel secret; LINE Developers, "Verify webhook signature"), and
:func:`webhook_body` / the ``*_event`` helpers build webhook bodies in LINE's JSON format.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakeLine:
    """The fake server. Use as a context manager; ``base_url`` is ``http://127.0.0.1:<port>``.

    Attributes:
        replies: recorded reply calls that were answered 200: ``{"body": dict, "authorization": str}``.
        attempts: number of reply calls received (including failed ones).
    """

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.attempts = 0
        self._failures: deque[tuple[int, float]] = deque()
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(self._app(), log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v2/bot/message/reply")
        async def reply(request: Request) -> JSONResponse:
            body = await request.json()
            with self._cond:
                self.attempts += 1
                status, delay = self._failures.popleft() if self._failures else (200, 0.0)
                self._cond.notify_all()
            if delay:
                await asyncio.sleep(delay)
            if status != 200:
                return JSONResponse({"message": f"fake failure {status}"}, status_code=status)
            with self._cond:
                self.replies.append({"body": body, "authorization": request.headers.get("authorization", "")})
                self._cond.notify_all()
            return JSONResponse({"sentMessages": [{"id": str(i), "quoteToken": "q"} for i, _ in enumerate(body["messages"])]})

        return app

    def fail_next(self, status: int, times: int = 1, delay_s: float = 0.0) -> None:
        """Answer the next ``times`` reply calls with ``status`` (after ``delay_s`` seconds; a delay
        longer than the client's timeout simulates a timeout; use status 200 with a delay for a
        slow success)."""
        with self._cond:
            self._failures.extend([(status, delay_s)] * times)

    def wait_for_replies(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``count`` replies were recorded; return them.

        Raises:
            AssertionError: not enough replies within ``timeout_s``.
        """
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.replies) >= count, timeout=timeout_s)
            assert ok, f"expected {count} LINE replies, got {len(self.replies)} in {timeout_s} s"
            return list(self.replies)

    def __enter__(self) -> "FakeLine":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake LINE server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


# -- building webhook requests exactly as LINE does ------------------------------------------------


def sign(body: bytes, channel_secret: str) -> str:
    """``X-Line-Signature``: base64(HMAC-SHA256(channel_secret, raw body))."""
    return base64.b64encode(hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def webhook_body(*events: dict[str, Any], destination: str = "U" + "f" * 32) -> bytes:
    """The raw JSON body LINE posts: ``{"destination", "events": [...]}`` (UTF-8, no ASCII escaping)."""
    return json.dumps({"destination": destination, "events": list(events)}, ensure_ascii=False).encode("utf-8")


def _base(kind: str, user_id: str, event_id: str | None, redelivery: bool) -> dict[str, Any]:
    return {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": event_id or uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": redelivery},
    }


def text_event(text: str, user_id: str, *, reply_token: str = "rt-text", event_id: str | None = None,
               redelivery: bool = False) -> dict[str, Any]:
    """A text message event."""
    event = _base("message", user_id, event_id, redelivery)
    event["replyToken"] = reply_token
    event["message"] = {"type": "text", "id": "468789577898262530", "quoteToken": "q", "text": text}
    return event


def sticker_event(user_id: str, *, reply_token: str = "rt-sticker") -> dict[str, Any]:
    """A sticker message event."""
    event = _base("message", user_id, None, False)
    event["replyToken"] = reply_token
    event["message"] = {"type": "sticker", "id": "1501597916", "quoteToken": "q", "packageId": "446",
                        "stickerId": "1988", "stickerResourceType": "STATIC", "keywords": ["OK"]}
    return event


def image_event(user_id: str, *, reply_token: str = "rt-image") -> dict[str, Any]:
    """An image message event."""
    event = _base("message", user_id, None, False)
    event["replyToken"] = reply_token
    event["message"] = {"type": "image", "id": "354718705033693859", "quoteToken": "q",
                        "contentProvider": {"type": "line"}}
    return event


def postback_event(data: str, user_id: str, *, reply_token: str = "rt-postback") -> dict[str, Any]:
    """A postback event (a tapped quick reply)."""
    event = _base("postback", user_id, None, False)
    event["replyToken"] = reply_token
    event["postback"] = {"data": data}
    return event


def follow_event(user_id: str, *, reply_token: str = "rt-follow") -> dict[str, Any]:
    """A follow event (友だち追加)."""
    event = _base("follow", user_id, None, False)
    event["replyToken"] = reply_token
    event["follow"] = {"isUnblocked": False}
    return event


def unfollow_event(user_id: str) -> dict[str, Any]:
    """An unfollow event (ブロック): no reply token."""
    return _base("unfollow", user_id, None, False)
