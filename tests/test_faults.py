"""Faults (障害時の動作) against the REAL stack: processes are killed (SIGKILL), frozen (SIGSTOP) and
restarted, and the citizen must always get a polite answer with the city's contact (HTTP 200),
and the conversation must go on where it was once the process is back.

One stack for the whole module (rasa loads the model in ~40-60 s; restarting rasa costs that
again), so the tests run in file order and each uses its own conversation. About 3 minutes.
The privacy check (personal data never reaches rasa's tracker store nor any log) lives here too,
because it needs the real tracker store.

LINE API errors / timeouts (retries with backoff) are tested by the LINE helper's tests.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import get_settings
from bot.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "current.tar.gz"
CITY_PHONE = "019-651-4111"
#: Gateway timeout for one rasa call during these tests (the slow-action case waits this long).
RASA_TIMEOUT_S = 8
pytestmark = pytest.mark.e2e


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not MODEL.is_file():
        pytest.fail("models/current.tar.gz がありません。make model（または make test）で学習してください。")
    tmp = tmp_path_factory.mktemp("faults")
    stack = Stack(get_settings(), gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                  model=MODEL, log_dir=tmp, tracker_db=tmp / "trackers.db",
                  env={"RASA_TIMEOUT_S": str(RASA_TIMEOUT_S), "RATE_LIMIT": "off", "REVIEW_DB": ""})
    stack.start(timeout_s=600)  # generous: CI machines may be busy
    try:
        yield stack
    finally:
        stack.stop()


def warm_up(client: httpx.Client, within_s: float = 180) -> None:
    """Ask in a throw-away conversation until rasa answers for real (the first message after a
    start loads TensorFlow graphs and can take longer than RASA_TIMEOUT_S on a busy machine)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        sender = f"warm-{uuid.uuid4().hex[:8]}"
        response = client.post("/api/chat", json={"sender_id": sender, "text": "住民票の写しが欲しい"})
        if response.status_code == 200 and card_id(response.json()["messages"]):
            return
        time.sleep(1)
    pytest.fail(f"the stack did not answer within {within_s} s")


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.urls.gateway, timeout=60) as http:
        warm_up(http)
        yield http


class Conversation:
    """One citizen's conversation through POST /api/chat."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.sender = f"fault-{uuid.uuid4().hex[:10]}"

    def ask(self, text: str) -> list[dict[str, Any]]:
        response = self.client.post("/api/chat", json={"sender_id": self.sender, "text": text})
        assert response.status_code == 200, response.text
        messages = response.json()["messages"]
        assert messages, "never silent"
        return messages


def card_id(messages: list[dict[str, Any]]) -> str | None:
    for message in messages:
        custom = message.get("custom") or {}
        if custom.get("type") == "procedure":
            return custom["procedure"]["id"]
    return None


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def assert_apology_with_contact(messages: list[dict[str, Any]]) -> None:
    text = text_of(messages)
    assert "申し訳ありません" in text and CITY_PHONE in text, text
    assert card_id(messages) is None


def test_stack_answers_before_any_fault(client: httpx.Client) -> None:
    assert card_id(Conversation(client).ask("住民票の写しをコンビニで取れますか")) == "juminhyo_copy"


def test_action_server_down_apology_then_conversation_continues(stack: Stack, client: httpx.Client) -> None:
    talk = Conversation(client)
    assert card_id(talk.ask("住民票の写しが欲しい")) == "juminhyo_copy"

    action = stack.child("action server")
    os.killpg(action.popen.pid, signal.SIGKILL)
    action.popen.wait()
    assert_apology_with_contact(talk.ask("手数料は？"))
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["action_server"]["ready"] is False

    stack.restart("action server")
    warm_up(client)
    answer = talk.ask("手数料は？")  # the slot `procedure` survived: answered for 住民票
    assert card_id(answer) == "juminhyo_copy", answer
    assert "手数料" in text_of(answer)


def test_action_server_frozen_apology_within_timeout_then_continues(stack: Stack, client: httpx.Client) -> None:
    talk = Conversation(client)
    assert card_id(talk.ask("印鑑証明が欲しいのですが何が必要ですか")) == "inkan_certificate"

    action = stack.child("action server")
    os.killpg(action.popen.pid, signal.SIGSTOP)  # hangs: accepts connections, never answers
    try:
        start = time.monotonic()
        assert_apology_with_contact(talk.ask("何時まで？"))
        assert time.monotonic() - start < RASA_TIMEOUT_S + 5
    finally:
        os.killpg(action.popen.pid, signal.SIGCONT)
    answer = talk.ask("手数料は？")  # rasa finishes the held message first, then this one
    assert card_id(answer) == "inkan_certificate", answer


def test_rasa_killed_apology_then_restart_continues_from_sqlite_tracker(stack: Stack, client: httpx.Client) -> None:
    talk = Conversation(client)
    assert card_id(talk.ask("戸籍謄本を郵送で取り寄せたい")) == "koseki_certificate"

    rasa = stack.child("rasa")
    os.killpg(rasa.popen.pid, signal.SIGKILL)
    rasa.popen.wait()
    assert_apology_with_contact(talk.ask("手数料は？"))

    stack.restart("rasa", timeout_s=600)  # loads the model again (~1 min)
    warm_up(client)
    answer = talk.ask("手数料は？")  # the tracker (slot procedure) came back from trackers.db
    assert card_id(answer) == "koseki_certificate", answer
    assert "手数料" in text_of(answer)


def test_personal_data_never_reaches_tracker_store_or_logs(stack: Stack, client: httpx.Client) -> None:
    talk = Conversation(client)
    secrets = ("090-1234-5678", "taro.yamada@example.jp", "1234 5678 9012")
    answer = talk.ask(f"住民票を取りたい。電話番号は{secrets[0]}、メールは{secrets[1]}、マイナンバーは{secrets[2]}です")
    assert card_id(answer) == "juminhyo_copy", "NLU still works on the redacted text"

    with sqlite3.connect(stack.tracker_db) as db:  # type: ignore[arg-type]
        rows = db.execute("SELECT data FROM events WHERE sender_id = ?", (talk.sender,)).fetchall()
    stored = "\n".join(json.dumps(json.loads(row[0]), ensure_ascii=False) for row in rows)
    assert "[電話番号]" in stored and "[メール]" in stored and "[マイナンバー]" in stored
    logs = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in stack.log_dir.glob("*.log"))
    for secret in secrets:
        assert secret not in stored
        assert secret not in logs
    assert talk.sender not in logs  # sender ids are logged hashed
