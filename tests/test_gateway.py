"""Gateway API tests: TestClient + respx (no network, no real rasa)."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.main import create_app
from bot.messages import MessagesError, load_gateway_messages
from bot.rasa_client import normalize_messages
from bot.routers.chat import sender_hash
from tests.conftest import FAKE_ACTIONS_URL, FAKE_RASA_URL, REAL_DOMAIN

WEBHOOK = f"{FAKE_RASA_URL}/webhooks/rest/webhook"
CARD = {
    "type": "procedure",
    "procedure": {"id": "juminhyo", "name": "住民票の写し", "phone": None, "channels": {}},
}


@pytest.fixture
def rasa_mock() -> Iterator[respx.MockRouter]:
    """respx router for the fake rasa and action server (every other host is refused)."""
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def client(settings: Settings, rasa_mock: respx.MockRouter) -> Iterator[TestClient]:
    """TestClient with the lifespan running."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def post_chat(client: TestClient, **body: Any) -> httpx.Response:
    """POST /api/chat with a JSON body."""
    return client.post("/api/chat", json=body)


# -- happy path ------------------------------------------------------------------


def test_chat_merges_text_buttons_and_custom(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    route = rasa_mock.post(WEBHOOK).respond(
        200,
        json=[
            {"recipient_id": "u1", "text": "住民票の写しはコンビニで取れます。"},
            {"recipient_id": "u1", "custom": CARD},
            {"recipient_id": "u1", "text": "どれですか？",
             "buttons": [{"title": "住民票", "payload": '/ask_procedure{"procedure": "juminhyo"}', "type": "postback"}]},
            {"recipient_id": "u1", "image": "https://example.org/a.png"},
        ],
    )
    response = post_chat(client, sender_id="web-abc_1.2:3", text="  住民票をコンビニで取れますか  ")
    assert response.status_code == 200
    assert response.json() == {
        "messages": [
            {"text": "住民票の写しはコンビニで取れます。", "custom": CARD},
            {"text": "どれですか？", "buttons": [{"title": "住民票", "payload": '/ask_procedure{"procedure": "juminhyo"}'}]},
        ]
    }
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"sender": "web-abc_1.2:3", "message": "住民票をコンビニで取れますか"}


def test_normalize_custom_without_preceding_text() -> None:
    assert normalize_messages([{"recipient_id": "u", "custom": {"a": 1}}]) == [{"text": "", "custom": {"a": 1}}]
    # a second custom does not overwrite the first one
    assert normalize_messages(
        [{"text": "t"}, {"custom": {"a": 1}}, {"custom": {"b": 2}}, {"attachment": "x"}]
    ) == [{"text": "t", "custom": {"a": 1}}, {"text": "", "custom": {"b": 2}}]


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sender_id": "u1", "text": ""}, "text"),
        ({"sender_id": "u1", "text": " \n\t　"}, "text"),  # includes an ideographic space
        ({"sender_id": "u1", "text": "あ" * 1001}, "text"),
        ({"sender_id": "u1"}, "text"),
        ({"text": "住民票"}, "sender_id"),
        ({"sender_id": "u1", "text": 123}, "text"),
        ({"sender_id": 5, "text": "住民票"}, "sender_id"),
        ({"sender_id": "田中さん", "text": "住民票"}, "sender_id"),
        ({"sender_id": "a b", "text": "住民票"}, "sender_id"),
        ({"sender_id": "", "text": "住民票"}, "sender_id"),
        ({"sender_id": "x" * 129, "text": "住民票"}, "sender_id"),
    ],
)
def test_invalid_body_is_422_with_message(client: TestClient, rasa_mock: respx.MockRouter, body: dict, field: str) -> None:
    route = rasa_mock.post(WEBHOOK).respond(200, json=[])
    response = client.post("/api/chat", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(err["loc"][-1] == field and err["msg"] for err in detail), detail
    assert not route.called


def test_max_text_chars_boundary(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    rasa_mock.post(WEBHOOK).respond(200, json=[{"recipient_id": "u", "text": "ok"}])
    assert post_chat(client, sender_id="u1", text="あ" * 1000).status_code == 200
    too_long = post_chat(client, sender_id="u1", text="あ" * 1001).json()["detail"][0]
    assert "1000" in too_long["msg"] and too_long["type"] == "text_too_long"


def test_empty_text_message_is_clear(client: TestClient) -> None:
    detail = post_chat(client, sender_id="u1", text="   ").json()["detail"]
    assert detail == [{"loc": ["body", "text"], "msg": "メッセージを入力してください / text must not be empty", "type": "text_empty"}]


@pytest.mark.parametrize("raw", [b'{"sender_id": "u1", "text": ', b"not json", b'{"sender_id": "u1",}'])
def test_invalid_json_is_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


# -- rasa failures ----------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(500, text="boom"),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json=[]),  # rasa answered nothing: never go silent
    ],
    ids=["down", "timeout", "http500", "not-json", "empty"],
)
def test_rasa_failure_answers_apology_with_city_phone(
    client: TestClient, rasa_mock: respx.MockRouter, city_profile: dict, failure: Any
) -> None:
    route = rasa_mock.post(WEBHOOK)
    if isinstance(failure, Exception):
        route.side_effect = failure
    else:
        route.return_value = failure
    response = post_chat(client, sender_id="u1", text="住民票")
    assert response.status_code == 200
    messages = response.json()["messages"]
    assert len(messages) == 1
    assert city_profile["phone"] in messages[0]["text"]
    assert city_profile["name"] in messages[0]["text"]
    assert "{" not in messages[0]["text"]


def test_logs_never_contain_raw_sender_or_text(
    client: TestClient, rasa_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    sender, text = "secret-sender-4711", "私の住所は盛岡市内丸1-1です"
    caplog.set_level(logging.DEBUG)
    rasa_mock.post(WEBHOOK).respond(200, json=[{"recipient_id": sender, "text": "はい"}])
    assert post_chat(client, sender_id=sender, text=text).status_code == 200
    rasa_mock.post(WEBHOOK).side_effect = httpx.ConnectError("refused")
    assert post_chat(client, sender_id=sender, text=text).status_code == 200

    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert sender_hash(sender) in caplog.text
    assert f"chars={len(text)}" in caplog.text
    assert any(r.exc_info for r in caplog.records), "rasa failure must be logged with logger.exception"
    assert sender not in logged
    assert text not in logged and "盛岡市内丸" not in logged


# -- health ---------------------------------------------------------------------------


def test_healthz_ready(client: TestClient, rasa_mock: respx.MockRouter) -> None:
    rasa_mock.get(f"{FAKE_RASA_URL}/status").respond(200, json={"model_file": "current.tar.gz", "model_id": "x"})
    rasa_mock.get(f"{FAKE_ACTIONS_URL}/health").respond(200, json={"status": "ok"})
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "rasa": {"ready": True, "model": "current.tar.gz"}, "action_server": {"ready": True}}


@pytest.mark.parametrize(
    ("rasa_status", "actions_ok", "expected"),
    [
        (httpx.Response(200, json={"model_file": "current.tar.gz"}), False, {"rasa": True, "actions": False}),
        (httpx.Response(409, json={"message": "no model"}), True, {"rasa": False, "actions": True}),
        (httpx.Response(200, json={"model_file": None}), True, {"rasa": False, "actions": True}),
        (httpx.ConnectError("refused"), True, {"rasa": False, "actions": True}),
    ],
    ids=["actions-down", "rasa-409", "rasa-no-model", "rasa-down"],
)
def test_healthz_unavailable_is_503(
    client: TestClient, rasa_mock: respx.MockRouter, rasa_status: Any, actions_ok: bool, expected: dict
) -> None:
    status_route = rasa_mock.get(f"{FAKE_RASA_URL}/status")
    if isinstance(rasa_status, Exception):
        status_route.side_effect = rasa_status
    else:
        status_route.return_value = rasa_status
    health_route = rasa_mock.get(f"{FAKE_ACTIONS_URL}/health")
    if actions_ok:
        health_route.respond(200, json={"status": "ok"})
    else:
        health_route.side_effect = httpx.ConnectTimeout("timeout")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["rasa"]["ready"] is expected["rasa"]
    assert body["action_server"]["ready"] is expected["actions"]


# -- startup / messages ----------------------------------------------------------------


def test_startup_fails_clearly_without_apology_response(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad-domain.yml"
    bad.write_text("responses:\n  utter_greet:\n  - text: こんにちは\n", encoding="utf-8")
    with pytest.raises(MessagesError, match="utter_service_unavailable"):
        with TestClient(create_app(settings.model_copy(update={"DOMAIN_FILE": bad}))):
            pass


def test_startup_freezes_what_is_loaded_and_shutdown_unfreezes(settings: Settings, rasa_mock: respx.MockRouter) -> None:
    """Full garbage collections skip what the gateway loaded at startup (no ~0.1 s stalls)."""
    gc.unfreeze()
    with TestClient(create_app(settings)) as running:
        assert gc.get_freeze_count() > 10_000
        assert running.get("/api/procedures").status_code == 200
    assert gc.get_freeze_count() == 0


def test_real_domain_has_apology_with_city_phone(settings: Settings, city_profile: dict) -> None:
    messages = load_gateway_messages(REAL_DOMAIN, settings.city_file)
    assert city_profile["phone"] in messages.service_unavailable
