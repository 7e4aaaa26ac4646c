"""CLI tests (``python -m bot ask``) against a gateway mocked with respx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
import respx
from typer.testing import CliRunner

from bot.cli import NOT_RUNNING, app
from bot.config import get_settings

GATEWAY = "http://gateway.test"
REPLY = {
    "messages": [
        {"text": "どの手続きですか？", "buttons": [
            {"title": "住民票の写し", "payload": '/ask_procedure{"procedure": "juminhyo"}'},
            {"title": "印鑑登録証明書", "payload": '/ask_procedure{"procedure": "inkan"}'},
        ]},
        {"text": "住民票の写しはコンビニで取れます。", "custom": {"type": "procedure", "procedure": {"id": "juminhyo"}}},
    ]
}

runner = CliRunner()


@pytest.fixture
def gateway() -> Iterator[respx.MockRouter]:
    """Mocked gateway (every other host is refused)."""
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_ask_prints_texts_and_numbered_buttons(gateway: respx.MockRouter) -> None:
    route = gateway.post(f"{GATEWAY}/api/chat").respond(200, json=REPLY)
    result = runner.invoke(app, ["ask", "住民票をコンビニで取れますか", "--url", GATEWAY, "--sender", "cli-test"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "どの手続きですか？",
        "  [1] 住民票の写し",
        "  [2] 印鑑登録証明書",
        "住民票の写しはコンビニで取れます。",
    ]
    assert json.loads(route.calls.last.request.content) == {"sender_id": "cli-test", "text": "住民票をコンビニで取れますか"}


def test_ask_json_prints_response_unescaped(gateway: respx.MockRouter) -> None:
    gateway.post(f"{GATEWAY}/api/chat").respond(200, json=REPLY)
    result = runner.invoke(app, ["ask", "住民票", "--url", GATEWAY, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == REPLY
    assert "住民票の写し" in result.output  # ensure_ascii=False


def test_ask_default_url_and_random_sender(gateway: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "18123")
    get_settings.cache_clear()
    try:
        route = gateway.post("http://127.0.0.1:18123/api/chat").respond(200, json=REPLY)
        assert runner.invoke(app, ["ask", "こんにちは"]).exit_code == 0
    finally:
        get_settings.cache_clear()
    assert json.loads(route.calls.last.request.content)["sender_id"].startswith("cli-")


def test_ask_gateway_down_exits_1_with_message(gateway: respx.MockRouter) -> None:
    gateway.post(f"{GATEWAY}/api/chat").side_effect = httpx.ConnectError("refused")
    result = runner.invoke(app, ["ask", "住民票", "--url", GATEWAY])
    assert result.exit_code == 1
    assert NOT_RUNNING in result.output
    assert NOT_RUNNING == "ボットが起動していません。make run で起動してください。"


def test_ask_nothing_listening_exits_1() -> None:
    with socket.socket() as sock:  # a free loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = runner.invoke(app, ["ask", "住民票", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert NOT_RUNNING in result.output


def test_ask_rejected_request_shows_detail(gateway: respx.MockRouter) -> None:
    gateway.post(f"{GATEWAY}/api/chat").respond(
        422, json={"detail": [{"loc": ["body", "text"], "msg": "メッセージを入力してください", "type": "text_empty"}]}
    )
    result = runner.invoke(app, ["ask", " ", "--url", GATEWAY])
    assert result.exit_code == 1
    assert "メッセージを入力してください" in result.output
