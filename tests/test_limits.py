"""CORS limited to configured origins, request size limit (413), per-sender rate limit (429) on
/api/chat, and .env.example documenting every setting. TestClient + respx, no network."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import respx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.main import create_app
from bot.middleware import BodySizeLimitMiddleware, add_middlewares
from bot.ratelimit import SenderRateLimiter
from tests.conftest import FAKE_ACTIONS_URL, FAKE_RASA_URL, REAL_DOMAIN, REPO_ROOT

CITY_SITE = "https://www.city.morioka.iwate.jp"
OTHER_SITE = "https://evil.example"
MAX_BYTES = 2048
WEBHOOK = f"{FAKE_RASA_URL}/webhooks/rest/webhook"


@pytest.fixture(scope="module")
def rasa_router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture(scope="module")
def module_client(rasa_router: respx.MockRouter) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None, REPO_ROOT=REPO_ROOT, CITY="morioka", RASA_URL=FAKE_RASA_URL,
        ACTION_SERVER_URL=FAKE_ACTIONS_URL, RASA_TIMEOUT_S=1.0, DOMAIN_FILE=REAL_DOMAIN,
        CORS_ORIGINS=f" {CITY_SITE}/ , https://example.org", MAX_BODY_BYTES=MAX_BYTES, RATE_LIMIT="3/minute",
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(module_client: TestClient, rasa_router: respx.MockRouter) -> TestClient:
    rasa_router.routes.clear()
    rasa_router.reset()
    return module_client


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on a fresh event loop in a worker thread (works even when another test's
    session fixture, e.g. playwright's sync API, keeps a loop running in the main thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=30)


def rasa_ok(router: respx.MockRouter) -> respx.Route:
    return router.post(WEBHOOK).respond(200, json=[{"recipient_id": "x", "text": "はい。"}])


# -- CORS -------------------------------------------------------------------------------------------


def test_cors_allows_a_configured_origin(client: TestClient, rasa_router: respx.MockRouter) -> None:
    rasa_ok(rasa_router)
    response = client.post("/api/chat", json={"sender_id": "cors-1", "text": "住民票"}, headers={"Origin": CITY_SITE})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == CITY_SITE
    preflight = client.options("/api/chat", headers={
        "Origin": CITY_SITE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_cors_refuses_other_origins(client: TestClient, rasa_router: respx.MockRouter) -> None:
    rasa_ok(rasa_router)
    response = client.post("/api/chat", json={"sender_id": "cors-2", "text": "住民票"}, headers={"Origin": OTHER_SITE})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/api/chat", headers={"Origin": OTHER_SITE, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_default_is_same_origin_only() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo() -> dict[str, str]:
        return {"ok": "yes"}

    add_middlewares(app, Settings(_env_file=None))
    with TestClient(app) as client:
        response = client.post("/echo", headers={"Origin": CITY_SITE})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
        preflight = client.options("/echo", headers={"Origin": CITY_SITE, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers


# -- request size ----------------------------------------------------------------------------------------


def _body_of_size(size: int) -> bytes:
    head = b'{"sender_id": "size-1", "text": "'
    tail = b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_body_at_the_limit_passes_and_one_byte_more_is_413(client: TestClient, rasa_router: respx.MockRouter) -> None:
    route = rasa_ok(rasa_router)
    headers = {"content-type": "application/json"}
    ok = client.post("/api/chat", content=_body_of_size(MAX_BYTES), headers=headers)
    assert ok.status_code != 413  # 422 here: the text is longer than MAX_TEXT_CHARS
    too_big = client.post("/api/chat", content=_body_of_size(MAX_BYTES + 1), headers=headers)
    assert too_big.status_code == 413
    detail = too_big.json()["detail"]
    assert "大きすぎます" in detail and str(MAX_BYTES) in detail
    assert not route.called


def test_streamed_body_without_length_is_413(client: TestClient, rasa_router: respx.MockRouter) -> None:
    route = rasa_ok(rasa_router)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    response = client.post("/api/chat", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert not route.called


def test_line_webhook_is_size_limited_before_anything_else(client: TestClient) -> None:
    response = client.post("/line/webhook", content=b"{" + b" " * MAX_BYTES + b"}",
                           headers={"x-line-signature": "x", "content-type": "application/json"})
    assert response.status_code == 413


def test_413_to_an_allowed_origin_carries_cors_headers(client: TestClient) -> None:
    response = client.post("/api/chat", content=_body_of_size(MAX_BYTES * 2),
                           headers={"content-type": "application/json", "Origin": CITY_SITE})
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == CITY_SITE


def test_a_lying_content_length_does_not_get_through() -> None:
    """Content-Length says 10 bytes, the client streams 3000: the counted bytes decide."""
    called: list[bool] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    middleware = BodySizeLimitMiddleware(inner, max_bytes=1000)
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(3)]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/chat", "headers": [(b"content-length", b"10")]}
    run(middleware(scope, receive, send))
    assert not called
    assert sent[0]["status"] == 413
    assert "1000" in json.loads(sent[1]["body"])["detail"]


def test_small_body_reaches_the_app_unchanged() -> None:
    seen: list[bytes] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message["body"])

    chunks = [{"type": "http.request", "body": b"ab", "more_body": True},
              {"type": "http.request", "body": b"cd", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:  # pragma: no cover - nothing is sent
        raise AssertionError(message)

    run(BodySizeLimitMiddleware(inner, 4)({"type": "http", "method": "POST", "headers": []}, receive, send))
    assert seen == [b"abcd"]


# -- rate limit ----------------------------------------------------------------------------------------------


def test_chat_rate_limit_answers_429_politely(client: TestClient, rasa_router: respx.MockRouter) -> None:
    route = rasa_ok(rasa_router)
    for _ in range(3):
        assert client.post("/api/chat", json={"sender_id": "rl-1", "text": "住民票"}).status_code == 200
    limited = client.post("/api/chat", json={"sender_id": "rl-1", "text": "住民票"})
    assert limited.status_code == 429
    text = limited.json()["detail"]
    assert text == client.app.state.messages.rate_limited
    assert "申し訳ありません" in text and "時間をおいて" in text
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert route.call_count == 3
    # another sender is not affected
    assert client.post("/api/chat", json={"sender_id": "rl-2", "text": "住民票"}).status_code == 200


def test_rate_limiter_off_and_bad_settings() -> None:
    async def hits() -> list[bool]:
        off = SenderRateLimiter("off")
        return [await off.hit("web", "s") for _ in range(100)]

    assert all(run(hits()))
    with pytest.raises(ValueError):
        SenderRateLimiter("lots of messages")


def test_rate_limiter_windows_are_per_channel_and_sender() -> None:
    async def scenario() -> tuple[list[bool], bool, bool, int]:
        limiter = SenderRateLimiter("2/minute")
        hits = [await limiter.hit("web", "a") for _ in range(3)]
        return hits, await limiter.hit("line", "a"), await limiter.hit("web", "b"), await limiter.retry_after_s("web", "a")

    hits, other_channel, other_sender, retry = run(scenario())
    assert hits == [True, True, False]
    assert other_channel and other_sender
    assert 1 <= retry <= 60


# -- .env.example ---------------------------------------------------------------------------------------------


def test_env_example_documents_every_setting() -> None:
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    missing = sorted(set(Settings.model_fields) - documented)
    assert not missing, f".env.example does not document: {missing}"
    # every entry has a Japanese comment line right above it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#?\s*[A-Z][A-Z0-9_]*=", line):
            above = lines[i - 1] if i else ""
            assert above.startswith("#") and re.search(r"[ぁ-んァ-ヶ一-龥]", above), f"no comment above: {line}"
