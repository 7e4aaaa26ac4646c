"""Bad input to POST /api/chat (不正な入力): every case gets a clear 4xx or a sensible reply,
never a 500, and no message is lost. TestClient + respx fake rasa (no network).

The fake rasa echoes what it received, so the tests also check what the gateway sent to rasa
(cleaned and redacted text) and that every accepted message got its own answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.main import create_app
from tests.conftest import FAKE_ACTIONS_URL, FAKE_RASA_URL, REAL_DOMAIN, REPO_ROOT

WEBHOOK = f"{FAKE_RASA_URL}/webhooks/rest/webhook"


def echo(request: httpx.Request) -> httpx.Response:
    """Fake rasa: answers 「受け付けました: <text>」 for the text it received."""
    sent = json.loads(request.content)
    return httpx.Response(200, json=[{"recipient_id": sent["sender"], "text": f"受け付けました: {sent['message']}"}])


@pytest.fixture(scope="module")
def _router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(WEBHOOK, name="webhook").mock(side_effect=echo)
        yield router


@pytest.fixture
def rasa_mock(_router: respx.MockRouter) -> Iterator[respx.MockRouter]:
    """The module's fake rasa (echo), with its recorded calls cleared for each test."""
    _router["webhook"].mock(side_effect=echo)
    _router.calls.clear()
    yield _router


@pytest.fixture(scope="module")
def client(_router: respx.MockRouter) -> Iterator[TestClient]:
    """One app for the module (its lifespan loads the catalogue: slow); rate limit off."""
    settings = Settings(_env_file=None, REPO_ROOT=REPO_ROOT, CITY="morioka", RASA_URL=FAKE_RASA_URL,
                        ACTION_SERVER_URL=FAKE_ACTIONS_URL, RASA_TIMEOUT_S=1.0, MAX_TEXT_CHARS=1000,
                        DOMAIN_FILE=REAL_DOMAIN, RATE_LIMIT="off")
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def sent_texts(rasa_mock: respx.MockRouter) -> list[str]:
    """Texts the gateway forwarded to (fake) rasa, in order."""
    return [json.loads(call.request.content)["message"] for call in rasa_mock.calls]


def detail_text(response: httpx.Response) -> str:
    """The error message(s) of a 4xx answer as one string."""
    detail: Any = response.json()["detail"]
    if isinstance(detail, list):
        return " ".join(d["msg"] for d in detail)
    return str(detail)


# -- empty / whitespace / length -------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "　　", "\n\t \r\n", "\x00\x01\x1b", "\u0085\x7f "])
def test_empty_whitespace_or_only_control_characters_is_422_and_rasa_not_called(
    client: TestClient, rasa_mock: respx.MockRouter, text: str
) -> None:
    response = client.post("/api/chat", json={"sender_id": "web-1", "text": text})
    assert response.status_code == 422
    assert "メッセージを入力してください" in detail_text(response)
    assert not rasa_mock.calls


def test_ten_thousand_characters_is_422_with_the_limit(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    response = client.post("/api/chat", json={"sender_id": "web-1", "text": "住" * 10_000})
    assert response.status_code == 422
    assert "1000文字以内" in detail_text(response)
    assert not rasa_mock.calls


# -- unusual but valid text: a sensible reply, the text reaches rasa cleaned ----------------------


@pytest.mark.parametrize(
    "text, forwarded",
    [
        ("住民票\x00を\x1b[31m取りたい\x7f", "住民票を[31m取りたい"),  # control characters removed
        ("住民票🏠を取りたい😀👨‍👩‍👧", "住民票🏠を取りたい😀👨‍👩‍👧"),  # emoji kept (NLU ignores them)
        ("<script>alert('x')</script>住民票", "<script>alert('x')</script>住民票"),
        ("<b>印鑑証明</b>&amp;", "<b>印鑑証明</b>&amp;"),
        ("住民票'; DROP TABLE events; --", "住民票'; DROP TABLE events; --"),
        ("1 OR 1=1 UNION SELECT * FROM events", "1 OR 1=1 UNION SELECT * FROM events"),
        ("住民票\ud800を", "住民票を"),  # lone surrogate (JSON "\ud800") removed
        ("ｺﾝﾋﾞﾆで住民票", "コンビニで住民票"),  # NFKC by redact: half-width kana → full-width
    ],
)
def test_unusual_text_gets_an_answer_and_reaches_rasa_cleaned(
    client: TestClient, rasa_mock: respx.MockRouter, text: str, forwarded: str
) -> None:
    body = json.dumps({"sender_id": "web-1", "text": text})  # ensure_ascii: surrogates as \ud800
    response = client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert sent_texts(rasa_mock) == [forwarded]
    assert response.json()["messages"] == [{"text": f"受け付けました: {forwarded}"}]


def test_html_in_the_reply_is_returned_as_data_not_rendered(client: TestClient) -> None:
    """The API returns JSON (the widget inserts text with textContent): no HTML content type."""
    response = client.post("/api/chat", json={"sender_id": "web-1", "text": "<img src=x onerror=alert(1)>"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


# -- broken requests: clear 4xx -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"sender_id": "web-1", "text": "\xff\xfe\xe3\x81"}',  # invalid UTF-8 inside a string
        b"\xff\xfe\x00\x00",
        b'{"sender_id": "web-1", "text": "\xe4\xbd\x8f"',  # truncated JSON
    ],
)
def test_invalid_utf8_or_broken_json_is_400_or_422_with_message(
    client: TestClient, rasa_mock: respx.MockRouter, raw: bytes
) -> None:
    response = client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert detail_text(response)  # e.g. 「リクエストの JSON が不正です …」 or FastAPI's "error parsing the body"
    assert not rasa_mock.calls


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", "住民票を取りたい"),
        ("text/plain", '{"sender_id": "web-1", "text": "住民票"}'),
        ("application/x-www-form-urlencoded", "sender_id=web-1&text=住民票"),
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n住民票\r\n--x--"),
    ],
)
def test_wrong_content_type_is_a_clear_4xx(
    client: TestClient, rasa_mock: respx.MockRouter, content_type: str | None, body: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/chat", content=body.encode("utf-8"), headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert "JSON" in detail_text(response)
    assert not rasa_mock.calls


def test_json_without_content_type_is_accepted(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    """curl -d without -H: FastAPI reads a body without content type as JSON → a normal answer."""
    response = client.post("/api/chat", content='{"sender_id": "web-1", "text": "住民票"}'.encode("utf-8"))
    assert response.status_code == 200
    assert sent_texts(rasa_mock) == ["住民票"]


@pytest.mark.parametrize("body", [[], "住民票", 42, None, {"sender_id": "web-1", "text": ["住民票"]},
                                  {"sender_id": "web-1", "text": {"$ne": ""}}, {"sender_id": 1, "text": "a"}])
def test_wrong_json_shape_is_422_with_message(client: TestClient, rasa_mock: respx.MockRouter, body: Any) -> None:
    response = client.post("/api/chat", json=body)
    assert response.status_code == 422, response.text
    assert detail_text(response)
    assert not rasa_mock.calls


@pytest.mark.parametrize("sender_id", ["", "a" * 129, "web 1", "web/../1", "<script>", "ユーザー", "web-1\n"])
def test_bad_sender_id_is_422(client: TestClient, rasa_mock: respx.MockRouter, sender_id: str) -> None:
    response = client.post("/api/chat", json={"sender_id": sender_id, "text": "住民票"})
    assert response.status_code == 422
    assert "sender_id" in detail_text(response)
    assert not rasa_mock.calls


def test_oversized_json_is_413_before_parsing(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    """A body larger than MAX_BODY_BYTES (the LINE helper's middleware) → 413 with a message."""
    settings = client.app.state.settings  # type: ignore[attr-defined]
    big = json.dumps({"sender_id": "web-1", "text": "a", "padding": "x" * (settings.MAX_BODY_BYTES + 10)})
    response = client.post("/api/chat", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert str(settings.MAX_BODY_BYTES) in detail_text(response)
    assert not rasa_mock.calls


def test_deeply_nested_json_is_4xx_not_500(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    body = "[" * 5000 + "]" * 5000
    response = client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert not rasa_mock.calls


def test_unknown_fields_are_ignored(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    response = client.post("/api/chat", json={"sender_id": "web-1", "text": "住民票", "admin": True})
    assert response.status_code == 200
    assert sent_texts(rasa_mock) == ["住民票"]


def test_get_is_405(client: TestClient) -> None:
    assert client.get("/api/chat").status_code == 405


# -- duplicates and privacy of bad input ---------------------------------------------------------


def test_duplicate_delivery_gets_two_answers_nothing_lost(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    """The same message sent twice (a retried request) is answered twice; both reach rasa."""
    body = {"sender_id": "web-dup", "text": "住民票を取りたい"}
    first = client.post("/api/chat", json=body)
    second = client.post("/api/chat", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"messages": [{"text": "受け付けました: 住民票を取りたい"}]}
    assert sent_texts(rasa_mock) == ["住民票を取りたい", "住民票を取りたい"]


def test_many_interleaved_conversations_each_get_their_own_answer(
    client: TestClient, rasa_mock: respx.MockRouter
) -> None:
    for turn in range(3):
        for sender in range(5):
            text = f"質問{sender}-{turn}"
            response = client.post("/api/chat", json={"sender_id": f"web-{sender}", "text": text})
            assert response.json() == {"messages": [{"text": f"受け付けました: {text}"}]}
    assert len(rasa_mock.calls) == 15


def test_personal_data_is_redacted_before_rasa_and_never_logged(
    client: TestClient, rasa_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    text = "住民票を取りたい。電話090-1234-5678、mail taro@example.jp、番号1234 5678 9012"
    with caplog.at_level(logging.DEBUG):
        response = client.post("/api/chat", json={"sender_id": "web-privacy", "text": text})
    assert response.status_code == 200
    assert sent_texts(rasa_mock) == ["住民票を取りたい。電話[電話番号]、mail [メール]、番号[マイナンバー]"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("090-1234-5678", "taro@example.jp", "1234 5678 9012", "web-privacy", "住民票を取りたい"):
        assert secret not in logged


def test_rasa_error_on_strange_input_is_still_an_apology(
    client: TestClient, rasa_mock: respx.MockRouter
) -> None:
    rasa_mock["webhook"].mock(side_effect=None, return_value=httpx.Response(500, text="internal error"))
    response = client.post("/api/chat", json={"sender_id": "web-1", "text": "🙂" * 50})
    assert response.status_code == 200
    assert "019" in response.json()["messages"][0]["text"]  # the city's phone number
