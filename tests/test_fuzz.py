"""Property-based fuzz of POST /api/chat (hypothesis): whatever the body, never a 5xx, and every
accepted message is answered (HTTP 200 with at least one message), every refused one gets a
clear 4xx message. The fake rasa (respx) echoes the text it received.

Short on purpose (max_examples 200 per property, no deadline): runs in a few seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.main import create_app
from tests.conftest import FAKE_ACTIONS_URL, FAKE_RASA_URL, REAL_DOMAIN, REPO_ROOT

WEBHOOK = f"{FAKE_RASA_URL}/webhooks/rest/webhook"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def echo(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    return httpx.Response(200, json=[{"recipient_id": sent["sender"], "text": f"echo: {sent['message']}"}])


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app_settings = Settings(_env_file=None, REPO_ROOT=REPO_ROOT, CITY="morioka", RASA_URL=FAKE_RASA_URL,
                            ACTION_SERVER_URL=FAKE_ACTIONS_URL, RASA_TIMEOUT_S=1.0, MAX_TEXT_CHARS=1000,
                            DOMAIN_FILE=REAL_DOMAIN, RATE_LIMIT="off")
    with respx.mock(assert_all_called=False) as router:
        router.post(WEBHOOK).mock(side_effect=echo)
        with TestClient(create_app(app_settings), raise_server_exceptions=False) as test_client:
            yield test_client


def check(response: httpx.Response) -> None:
    """The invariant: 200 with messages, or a 4xx with a non-empty detail — never 5xx."""
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert body["messages"] and all(isinstance(m.get("text"), str) for m in body["messages"])
    else:
        assert 400 <= response.status_code < 500 and body.get("detail")


sender_ids = st.one_of(st.from_regex(r"\A[A-Za-z0-9_.:-]{1,128}\Z"), st.text(max_size=140))
texts = st.one_of(
    st.text(max_size=1200),  # any Unicode, incl. control characters and surrogates
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60),
    st.sampled_from(["住民票", "手数料は？", "<script>alert(1)</script>", "'; DROP TABLE events; --",
                     "😀" * 10, "\x00", " ", "090-1234-5678", "1234 5678 9012"]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(sender_id=sender_ids, text=texts)
def test_any_sender_and_text(client: TestClient, sender_id: str, text: str) -> None:
    body = json.dumps({"sender_id": sender_id, "text": text})  # ensure_ascii keeps surrogates sendable
    response = client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    check(response)
    valid_sender = response.status_code == 200
    if valid_sender:
        assert response.json()["messages"][0]["text"].startswith("echo: ")


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["sender_id", "text", "extra"]), json_values, max_size=3) | json_values)
def test_any_json_shape(client: TestClient, body: Any) -> None:
    raw = json.dumps(body)  # NaN / Infinity become the non-standard literals some clients send
    check(client.post("/api/chat", content=raw, headers={"content-type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""]))
def test_any_bytes(client: TestClient, raw: bytes, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    check(client.post("/api/chat", content=raw, headers=headers))
