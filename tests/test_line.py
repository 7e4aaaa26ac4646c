"""LINE webhook tests: signed requests built exactly as LINE does, a local fake LINE API server
(tests/fake_line.py, real HTTP), rasa faked with respx. No network.

One app (and one fake LINE server) serves the whole module, because the gateway's startup loads
the catalogue (seconds on a busy machine); every test uses its own LINE user ids so rate limits and
the redelivery cache do not mix between tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.line.render import to_line_messages
from bot.main import create_app
from bot.privacy import pseudonymize
from procedures import hours
from procedures.answer import Templates, to_card
from tests.conftest import FAKE_ACTIONS_URL, FAKE_RASA_URL, REAL_DOMAIN, REPO_ROOT
from tests.fake_line import (
    FakeLine,
    follow_event,
    image_event,
    postback_event,
    sign,
    sticker_event,
    text_event,
    unfollow_event,
    webhook_body,
)

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "test-channel-access-token"
KEY = "test-pseudonym-key"
WEBHOOK = f"{FAKE_RASA_URL}/webhooks/rest/webhook"
SATURDAY_NIGHT = dt.datetime(2026, 11, 21, 22, 0, tzinfo=hours.JST)


def line_settings(fake: FakeLine, **overrides: Any) -> Settings:
    """Gateway settings with LINE pointed at the fake server (fast retries, short timeout)."""
    values: dict[str, Any] = dict(
        _env_file=None, REPO_ROOT=REPO_ROOT, CITY="morioka", RASA_URL=FAKE_RASA_URL,
        ACTION_SERVER_URL=FAKE_ACTIONS_URL, RASA_TIMEOUT_S=1.0, MAX_TEXT_CHARS=1000, DOMAIN_FILE=REAL_DOMAIN,
        LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_BASE_URL=fake.base_url,
        LINE_API_TIMEOUT_S=0.5, LINE_RETRY_ATTEMPTS=3, LINE_RETRY_BACKOFF_S=0.01, PSEUDONYM_KEY=KEY,
        RATE_LIMIT="1000/minute",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def fake_line() -> Iterator[FakeLine]:
    with FakeLine() as fake:
        yield fake


@pytest.fixture(scope="module")
def rasa_router() -> Iterator[respx.MockRouter]:
    """respx router for rasa (httpx only; the LINE client uses aiohttp and reaches the fake server)."""
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture(scope="module")
def module_client(fake_line: FakeLine, rasa_router: respx.MockRouter) -> Iterator[TestClient]:
    with TestClient(create_app(line_settings(fake_line))) as client:
        yield client


@dataclass
class Env:
    client: TestClient
    fake: FakeLine
    rasa: respx.MockRouter

    def post(self, body: bytes, signature: str | None = "sign") -> httpx.Response:
        """POST /line/webhook; ``signature="sign"`` signs the body with the channel secret."""
        headers = {"content-type": "application/json; charset=utf-8"}
        if signature == "sign":
            headers["x-line-signature"] = sign(body, SECRET)
        elif signature is not None:
            headers["x-line-signature"] = signature
        return self.client.post("/line/webhook", content=body, headers=headers)

    def drain(self) -> None:
        """Wait (event-based, with a timeout) until every started event task is done."""
        assert self.client.portal is not None
        assert self.client.portal.call(self.client.app.state.line.drain, 15.0), "LINE event tasks still running"

    def rasa_answers(self, *messages: dict[str, Any]) -> respx.Route:
        return self.rasa.post(WEBHOOK).respond(200, json=[{"recipient_id": "x", **m} for m in messages])


def _reset(client: TestClient, fake: FakeLine, rasa: respx.MockRouter) -> Env:
    rasa.routes.clear()
    rasa.reset()
    with fake._cond:  # noqa: SLF001 - test helper of our own fake
        fake.replies.clear()
        fake._failures.clear()  # noqa: SLF001
        fake.attempts = 0
    return Env(client, fake, rasa)


@pytest.fixture
def env(module_client: TestClient, fake_line: FakeLine, rasa_router: respx.MockRouter) -> Env:
    return _reset(module_client, fake_line, rasa_router)


def sent_to_rasa(route: respx.Route) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in route.calls]


def only_reply(fake: FakeLine) -> dict[str, Any]:
    replies = fake.wait_for_replies(1)
    assert len(replies) == 1, replies
    return replies[0]["body"]


# -- signature ----------------------------------------------------------------------------------


def test_good_signature_text_reaches_rasa_and_one_reply(env: Env, city_profile: dict) -> None:
    route = env.rasa_answers({"text": "住民票の写しはコンビニで取れます。"})
    user = "U" + "1" * 32
    response = env.post(webhook_body(text_event("住民票をコンビニで取れますか", user, reply_token="tok-1")))
    assert response.status_code == 200
    env.drain()

    body = only_reply(env.fake)
    assert body["replyToken"] == "tok-1"
    assert body["messages"] == [{"type": "text", "text": "住民票の写しはコンビニで取れます。"}]
    assert env.fake.replies[0]["authorization"] == f"Bearer {TOKEN}"
    # rasa got the pseudonymous id, never the LINE user id
    assert sent_to_rasa(route) == [{"sender": pseudonymize(user, KEY, prefix="line-"), "message": "住民票をコンビニで取れますか"}]


@pytest.mark.parametrize(
    "signature",
    [None, "", "not-base64!", sign(b"other body", SECRET), sign(b"{}", "wrong-secret")],
    ids=["missing", "empty", "garbage", "other-body", "wrong-secret"],
)
def test_bad_or_missing_signature_is_401_and_nothing_processed(env: Env, signature: str | None) -> None:
    route = env.rasa_answers({"text": "x"})
    body = webhook_body(text_event("住民票", "U" + "2" * 32), follow_event("U" + "2" * 32))
    response = env.post(body, signature=signature)
    assert response.status_code == 401
    assert "X-Line-Signature" in response.json()["detail"]
    assert env.client.app.state.line.pending == 0  # no task was started
    env.drain()
    assert not route.called
    assert env.fake.attempts == 0


def test_tampered_body_is_401(env: Env) -> None:
    route = env.rasa_answers({"text": "x"})
    body = webhook_body(text_event("住民票", "U" + "3" * 32))
    signature = sign(body, SECRET)
    tampered = body.replace("住民票".encode(), "印鑑証明".encode())
    assert env.post(tampered, signature=signature).status_code == 401
    env.drain()
    assert not route.called and env.fake.attempts == 0


def test_verify_call_without_events_is_200(env: Env) -> None:
    """LINE Developers' 「検証」 button posts a signed body with no events."""
    assert env.post(webhook_body()).status_code == 200
    env.drain()
    assert env.fake.attempts == 0


@pytest.mark.parametrize("raw", [b"not json", b'{"destination": "x"}', b"\xff\xfe"], ids=["not-json", "no-events", "not-utf8"])
def test_signed_garbage_is_400(env: Env, raw: bytes) -> None:
    response = env.post(raw)
    assert response.status_code == 400
    assert "LINE" in response.json()["detail"]


def test_answers_200_before_the_event_is_processed(env: Env) -> None:
    gate = threading.Event()

    async def slow_rasa(request: httpx.Request) -> httpx.Response:
        await asyncio.to_thread(gate.wait, 10)
        return httpx.Response(200, json=[{"recipient_id": "x", "text": "お待たせしました。"}])

    env.rasa.post(WEBHOOK).side_effect = slow_rasa
    response = env.post(webhook_body(text_event("住民票", "U" + "4" * 32)))
    assert response.status_code == 200  # while rasa is still "thinking"
    assert env.fake.replies == []
    gate.set()
    env.drain()
    assert only_reply(env.fake)["messages"][0]["text"] == "お待たせしました。"


# -- message kinds ----------------------------------------------------------------------------------


def _card(env: Env) -> dict[str, Any]:
    """The real card of 住民票の写し on a Saturday at 22:00 (catalogue loaded by the app)."""
    return to_card(env.client.app.state.catalogue.get("juminhyo_copy"), now=SATURDAY_NIGHT)


def test_procedure_card_becomes_a_flex_message(env: Env) -> None:
    card = _card(env)
    env.rasa_answers({"text": "住民票の写しの交付は、次の方法で手続きできます。"}, {"custom": card})
    env.post(webhook_body(text_event("住民票", "U" + "5" * 32)))
    env.drain()
    messages = only_reply(env.fake)["messages"]
    assert [m["type"] for m in messages] == ["text", "flex"]
    flex = messages[1]
    assert "住民票の写しの交付" in flex["altText"]
    bubble = json.dumps(flex["contents"], ensure_ascii=False)
    # channels in the card's order (visit-free first), with their open-now state and hours
    assert bubble.index("コンビニ") < bubble.index("郵送") < bubble.index("窓口")
    assert "23:00まで利用できます" in bubble  # Saturday 22:00: convenience stores still open
    assert "窓口は受付時間外です（次は11月24日(火) 8:30から）" in bubble
    assert "公式ページ" in bubble  # unverified note + official page button
    uris = [b["action"]["uri"] for b in flex["contents"]["footer"]["contents"]]
    assert card["procedure"]["channels"]["convenience_store"]["url"] in uris
    assert card["procedure"]["source_url"] in uris
    assert "tel:019-651-4111" in uris
    assert all(len(b["action"]["label"]) <= 20 for b in flex["contents"]["footer"]["contents"])


def test_quick_replies_at_most_13_with_short_labels(env: Env) -> None:
    buttons = [{"title": f"とても長い手続きの名前その{i}番目の選択肢です", "payload": f'/ask_procedure{{"procedure": "p{i}"}}'}
               for i in range(16)]
    env.rasa_answers({"text": "どれですか。", "buttons": buttons})
    env.post(webhook_body(text_event("引っ越し", "U" + "6" * 32)))
    env.drain()
    messages = only_reply(env.fake)["messages"]
    items = messages[-1]["quickReply"]["items"]
    assert len(items) == 13
    for item, button in zip(items, buttons):
        action = item["action"]
        assert action["type"] == "postback"
        assert len(action["label"]) <= 20 and action["label"].endswith("…")
        assert action["data"] == button["payload"]
        assert action["displayText"] == button["title"]


def test_postback_data_is_forwarded_to_rasa_as_text(env: Env) -> None:
    route = env.rasa_answers({"text": "印鑑登録証明書の交付は…"})
    user = "U" + "7" * 32
    payload = '/ask_procedure{"procedure": "inkan_shomei"}'
    env.post(webhook_body(postback_event(payload, user, reply_token="tok-pb")))
    env.drain()
    assert sent_to_rasa(route) == [{"sender": pseudonymize(user, KEY, prefix="line-"), "message": payload}]
    body = only_reply(env.fake)
    assert body["replyToken"] == "tok-pb" and body["messages"][0]["text"] == "印鑑登録証明書の交付は…"


def test_follow_gets_the_greeting_from_the_domain(env: Env, city_profile: dict) -> None:
    route = env.rasa_answers({"text": "x"})
    env.post(webhook_body(follow_event("U" + "8" * 32, reply_token="tok-follow")))
    env.drain()
    body = only_reply(env.fake)
    assert body["replyToken"] == "tok-follow"
    text = body["messages"][0]["text"]
    assert city_profile["name"] in text and "友だち追加" in text and "{" not in text
    assert env.client.app.state.messages.line_follow == text
    assert not route.called


@pytest.mark.parametrize("make_event", [sticker_event, image_event], ids=["sticker", "image"])
def test_sticker_and_image_get_a_polite_text(env: Env, make_event: Any) -> None:
    route = env.rasa_answers({"text": "x"})
    env.post(webhook_body(make_event("U" + "9" * 32)))
    env.drain()
    messages = only_reply(env.fake)["messages"]
    assert messages == [{"type": "text", "text": env.client.app.state.messages.non_text}]
    assert "文字" in messages[0]["text"]
    assert not route.called


def test_unfollow_gets_no_reply(env: Env) -> None:
    env.post(webhook_body(unfollow_event("U" + "a" * 32)))
    env.drain()
    assert env.fake.attempts == 0


def test_too_long_text_is_answered_without_rasa(env: Env) -> None:
    route = env.rasa_answers({"text": "x"})
    env.post(webhook_body(text_event("あ" * 1001, "U" + "b" * 32)))
    env.drain()
    assert only_reply(env.fake)["messages"][0]["text"] == env.client.app.state.messages.text_too_long
    assert not route.called


def test_many_rasa_messages_fit_in_one_reply_of_five(env: Env) -> None:
    texts = [f"案内{i}です。" for i in range(8)]
    env.rasa_answers(*({"text": t} for t in texts), {"custom": _card(env)})
    env.post(webhook_body(text_event("全部教えて", "U" + "c" * 32)))
    env.drain()
    messages = only_reply(env.fake)["messages"]
    assert len(messages) <= 5
    joined = "\n".join(m.get("text", "") for m in messages)
    assert all(t in joined for t in texts)  # nothing the citizen should read is lost
    assert messages[-1]["type"] == "flex"


def test_redelivered_event_is_handled_once(env: Env) -> None:
    route = env.rasa_answers({"text": "はい。"})
    user = "U" + "d" * 32
    first = text_event("住民票", user, event_id="01JREDELIVERY000000000001", reply_token="tok-a")
    again = text_event("住民票", user, event_id="01JREDELIVERY000000000001", reply_token="tok-b", redelivery=True)
    assert env.post(webhook_body(first)).status_code == 200
    assert env.post(webhook_body(again)).status_code == 200
    other = text_event("住民票", user, event_id="01JREDELIVERY000000000002", reply_token="tok-c")
    assert env.post(webhook_body(other)).status_code == 200
    env.drain()
    replies = env.fake.wait_for_replies(2)
    assert sorted(r["body"]["replyToken"] for r in replies) == ["tok-a", "tok-c"]
    assert route.call_count == 2


# -- failures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "delay_s"), [(500, 0.0), (429, 0.0), (200, 2.0)], ids=["http500", "http429", "timeout"]
)
def test_line_api_errors_are_retried_and_logged(
    env: Env, caplog: pytest.LogCaptureFixture, status: int, delay_s: float
) -> None:
    caplog.set_level(logging.INFO)
    env.rasa_answers({"text": "はい。"})
    env.fake.fail_next(status, times=2, delay_s=delay_s)
    env.post(webhook_body(text_event("住民票", "U" + "e" * 32, reply_token="tok-retry")))
    env.drain()
    assert only_reply(env.fake)["replyToken"] == "tok-retry"
    assert env.fake.attempts == 3
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "LINE reply sent" in caplog.text


def test_line_api_failing_for_good_is_logged_and_the_gateway_goes_on(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.rasa_answers({"text": "はい。"})
    env.fake.fail_next(500, times=3)
    env.post(webhook_body(text_event("住民票", "U" + "f" * 32, reply_token="tok-lost")))
    env.drain()
    assert env.fake.attempts == 3 and env.fake.replies == []
    assert any(r.levelno == logging.ERROR and "LINE reply failed after 3 attempt(s): HTTP 500" in r.getMessage()
               for r in caplog.records)
    # the next event is answered normally
    env.post(webhook_body(text_event("住民票", "U" + "f" * 32, reply_token="tok-next")))
    env.drain()
    assert only_reply(env.fake)["replyToken"] == "tok-next"


def test_invalid_reply_token_is_not_retried(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.rasa_answers({"text": "はい。"})
    env.fake.fail_next(400)
    env.post(webhook_body(text_event("住民票", "U" + "0" * 32)))
    env.drain()
    assert env.fake.attempts == 1
    assert "HTTP 400" in caplog.text


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("refused"), httpx.Response(500), httpx.Response(200, json=[])],
    ids=["down", "http500", "empty"],
)
def test_rasa_failure_answers_the_apology_with_contact(env: Env, city_profile: dict, failure: Any) -> None:
    route = env.rasa.post(WEBHOOK)
    if isinstance(failure, Exception):
        route.side_effect = failure
    else:
        route.return_value = failure
    env.post(webhook_body(text_event("住民票", "U" + "g" * 32)))
    env.drain()
    text = only_reply(env.fake)["messages"][0]["text"]
    assert text == env.client.app.state.messages.service_unavailable
    assert city_profile["phone"] in text


def test_logs_never_hold_the_line_user_id_or_text(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = "U" + "h" * 32
    text = "私の電話番号は090-1234-5678です"
    route = env.rasa_answers({"text": "はい。"})
    env.fake.fail_next(500)
    env.post(webhook_body(text_event(text, user), follow_event(user), postback_event("/greet", user)))
    env.drain()
    env.fake.wait_for_replies(3)
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert user not in logged
    assert text not in logged and "090-1234-5678" not in logged
    # the phone number did not reach rasa either (bot.privacy.redact)
    assert all("090-1234-5678" not in m["message"] for m in sent_to_rasa(route))


# -- settings -----------------------------------------------------------------------------------------


def test_rate_limit_on_line_answers_politely_without_rasa(fake_line: FakeLine, rasa_router: respx.MockRouter) -> None:
    with TestClient(create_app(line_settings(fake_line, RATE_LIMIT="2/minute"))) as client:
        env = _reset(client, fake_line, rasa_router)
        route = env.rasa_answers({"text": "はい。"})
        user = "U" + "i" * 32
        for n in range(3):
            env.post(webhook_body(text_event("住民票", user, reply_token=f"tok-{n}")))
            env.drain()
        replies = {r["body"]["replyToken"]: r["body"]["messages"][0]["text"] for r in fake_line.wait_for_replies(3)}
        assert replies["tok-0"] == replies["tok-1"] == "はい。"
        assert replies["tok-2"] == client.app.state.messages.rate_limited
        assert "時間をおいて" in replies["tok-2"]
        assert route.call_count == 2
        # another citizen is not affected
        env.post(webhook_body(text_event("住民票", "U" + "j" * 32, reply_token="tok-other")))
        env.drain()
        assert route.call_count == 3


def test_line_not_configured_is_503(fake_line: FakeLine, rasa_router: respx.MockRouter) -> None:
    with TestClient(create_app(line_settings(fake_line, LINE_CHANNEL_SECRET="", LINE_CHANNEL_ACCESS_TOKEN=""))) as client:
        body = webhook_body(text_event("住民票", "U" + "k" * 32))
        response = client.post("/line/webhook", content=body, headers={"x-line-signature": sign(body, SECRET)})
        assert response.status_code == 503
        assert "LINE" in response.json()["detail"]


# -- rendering (no server) ----------------------------------------------------------------------------


def test_render_text_limits_and_no_empty_messages() -> None:
    t = Templates.from_domain_file(REAL_DOMAIN)
    out = to_line_messages([{"text": ""}, {"text": "🍎" * 3000}, {"text": "  "}], t, "盛岡市")
    assert len(out) == 1
    assert len(out[0]["text"].encode("utf-16-le")) // 2 <= 5000 and out[0]["text"].endswith("…")
    assert to_line_messages([], t, "盛岡市") == []


def test_render_card_without_time_and_with_fee() -> None:
    t = Templates.from_domain_file(REAL_DOMAIN)
    card = {"type": "procedure", "procedure": {
        "id": "x", "name": "テスト手続き", "summary": "", "channel_order": ["counter"], "verified": True,
        "channels": {"counter": {"available": True, "hours": "平日 8:30〜17:15", "fee_yen": 300, "fee_note": "", "url": None}},
        "source_url": "javascript:alert(1)", "phone": None}}
    flex = to_line_messages([{"text": "", "custom": card}], t, "盛岡市")[0]
    bubble = json.dumps(flex, ensure_ascii=False)
    assert "手数料300円" in bubble and "平日 8:30〜17:15" in bubble
    assert "javascript:" not in bubble and "footer" not in flex["contents"]  # unsafe link dropped
    assert "公式ページでまだ確認できていない" not in bubble  # verified: no note
