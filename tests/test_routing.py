"""Scale-out routing in the gateway: rendezvous hashing by sender id, fail-over, /healthz per replica.

No network: rasa replicas are mocked with respx. The real replicas are exercised in
tests/test_scaleout.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from bot.config import Settings
from bot.main import create_app
from bot.rasa_client import RasaClient, RasaUnavailable, rank_replicas
from tests.conftest import FAKE_ACTIONS_URL

R1, R2, R3 = "http://rasa-1.test:5005", "http://rasa-2.test:5005", "http://rasa-3.test:5005"
SENDERS = [f"web-{i:05d}" for i in range(3000)]


def webhook(base: str) -> str:
    return f"{base}/webhooks/rest/webhook"


# -- rank_replicas ------------------------------------------------------------------------


def test_same_sender_always_gets_the_same_replica_whatever_the_configured_order() -> None:
    for sender in SENDERS[:200]:
        first = rank_replicas(sender, [R1, R2, R3])
        assert rank_replicas(sender, [R3, R1, R2]) == first
        assert sorted(first) == sorted([R1, R2, R3])


def test_known_values_are_the_same_in_every_process() -> None:
    """Python's hash() is salted per process; the routing must not be, or two gateways would
    send one conversation to different replicas. Expected values: blake2b(replica NUL sender)."""
    expected = {"a": R1, "b": R2, "c": R1, "d": R1, "e": R2, "f": R1, "g": R2, "h": R2}
    assert {s: rank_replicas(s, [R1, R2])[0] for s in expected} == expected


def test_conversations_spread_evenly() -> None:
    counts = Counter(rank_replicas(s, [R1, R2, R3])[0] for s in SENDERS)
    for replica in (R1, R2, R3):
        assert 0.28 < counts[replica] / len(SENDERS) < 0.39, counts


def test_adding_a_replica_moves_only_the_conversations_it_takes_over() -> None:
    before = {s: rank_replicas(s, [R1, R2])[0] for s in SENDERS}
    after = {s: rank_replicas(s, [R1, R2, R3])[0] for s in SENDERS}
    moved = [s for s in SENDERS if before[s] != after[s]]
    assert all(after[s] == R3 for s in moved), "a conversation moved between the old replicas"
    assert 0.28 < len(moved) / len(SENDERS) < 0.39  # about 1/3, not a reshuffle


def test_removing_a_replica_keeps_the_others_conversations() -> None:
    before = {s: rank_replicas(s, [R1, R2, R3]) for s in SENDERS}
    for sender, order in before.items():
        if order[0] != R3:
            assert rank_replicas(sender, [R1, R2])[0] == order[0]
        else:  # its conversations go where the fail-over order said
            assert rank_replicas(sender, [R1, R2])[0] == order[1]


# -- settings ------------------------------------------------------------------------------


def test_rasa_urls_setting_lists_replicas_and_defaults_to_rasa_url() -> None:
    base = dict(_env_file=None, RASA_URL="http://127.0.0.1:5005/")
    assert Settings(**base).rasa_replicas == ["http://127.0.0.1:5005"]
    many = Settings(**base, RASA_URLS=f" {R1}/, {R2} ,,{R1}")
    assert many.rasa_replicas == [R1, R2]


# -- RasaClient -------------------------------------------------------------------------------


@pytest.fixture
def rasa_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def echo(base: str) -> Any:
    """respx side effect answering which replica got the message."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"recipient_id": "x", "text": base}])

    return answer


async def test_messages_of_a_conversation_all_go_to_its_replica(rasa_mock: respx.MockRouter) -> None:
    for base in (R1, R2, R3):
        rasa_mock.post(webhook(base)).mock(side_effect=echo(base))
    async with httpx.AsyncClient() as http:
        client = RasaClient(http, [R1, R2, R3], timeout_s=1.0)
        for sender in SENDERS[:60]:
            served = {(await client.send_message(sender, text))[0]["text"] for text in ("住民票", "手数料は？")}
            assert served == {rank_replicas(sender, [R1, R2, R3])[0]}


async def test_refused_replica_fails_over_to_the_next_in_the_ranking(rasa_mock: respx.MockRouter) -> None:
    sender = SENDERS[0]
    first, second, _ = rank_replicas(sender, [R1, R2, R3])
    for base in (R1, R2, R3):
        rasa_mock.post(webhook(base)).mock(side_effect=echo(base))
    rasa_mock.post(webhook(first)).mock(side_effect=httpx.ConnectError("refused"))
    async with httpx.AsyncClient() as http:
        client = RasaClient(http, [R1, R2, R3], timeout_s=1.0)
        assert (await client.send_message(sender, "住民票"))[0]["text"] == second


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.Response(500, json={}), httpx.RemoteProtocolError("closed")],
    ids=["read-timeout", "http-500", "dropped"],
)
async def test_no_retry_when_the_replica_may_have_processed_the_message(
    rasa_mock: respx.MockRouter, failure: Any
) -> None:
    """Sending again to another replica could apply one message twice: apology instead."""
    sender = SENDERS[1]
    first = rank_replicas(sender, [R1, R2])[0]
    other = R2 if first == R1 else R1
    route = rasa_mock.post(webhook(first))
    if isinstance(failure, Exception):
        route.side_effect = failure
    else:
        route.return_value = failure
    other_route = rasa_mock.post(webhook(other)).mock(side_effect=echo(other))
    async with httpx.AsyncClient() as http:
        client = RasaClient(http, [R1, R2], timeout_s=1.0)
        with pytest.raises(RasaUnavailable):
            await client.send_message(sender, "住民票")
    assert not other_route.called


# -- gateway: /api/chat and /healthz with two replicas ------------------------------------------


@pytest.fixture
def two_replica_client(settings: Settings, rasa_mock: respx.MockRouter) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"RASA_URLS": f"{R1},{R2}"}))) as client:
        yield client


def test_chat_apologizes_when_every_replica_is_down(two_replica_client: TestClient, rasa_mock) -> None:
    rasa_mock.post(webhook(R1)).mock(side_effect=httpx.ConnectError("refused"))
    rasa_mock.post(webhook(R2)).mock(side_effect=httpx.ConnectError("refused"))
    response = two_replica_client.post("/api/chat", json={"sender_id": "web-1", "text": "住民票"})
    assert response.status_code == 200
    assert "申し訳" in response.json()["messages"][0]["text"]


def test_chat_fails_over_when_a_replica_is_down(two_replica_client: TestClient, rasa_mock) -> None:
    rasa_mock.post(webhook(R1)).mock(side_effect=httpx.ConnectError("refused"))
    rasa_mock.post(webhook(R2)).mock(side_effect=echo(R2))
    for sender in SENDERS[:20]:  # whichever replica they belong to, R2 answers
        response = two_replica_client.post("/api/chat", json={"sender_id": sender, "text": "住民票"})
        assert response.json()["messages"] == [{"text": R2}]


def mock_health(rasa_mock: respx.MockRouter, r1_model: str | None, r2_model: str | None) -> None:
    for base, model in ((R1, r1_model), (R2, r2_model)):
        route = rasa_mock.get(f"{base}/status")
        if model is None:
            route.side_effect = httpx.ConnectError("refused")
        else:
            route.respond(200, json={"model_file": model})
    rasa_mock.get(f"{FAKE_ACTIONS_URL}/health").respond(200, json={"status": "ok"})


def test_healthz_reports_every_replica(two_replica_client: TestClient, rasa_mock) -> None:
    mock_health(rasa_mock, "current.tar.gz", "current.tar.gz")
    response = two_replica_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["rasa_replicas"] == [
        {"replica": 1, "ready": True, "model": "current.tar.gz"},
        {"replica": 2, "ready": True, "model": "current.tar.gz"},
    ]
    assert "rasa-1.test" not in response.text, "private addresses are not shown publicly"


def test_healthz_degraded_when_one_replica_is_down(two_replica_client: TestClient, rasa_mock) -> None:
    mock_health(rasa_mock, None, "current.tar.gz")
    response = two_replica_client.get("/healthz")
    assert response.status_code == 200  # conversations still get answers (fail-over)
    body = response.json()
    assert body["status"] == "degraded" and body["rasa"]["ready"] is True
    assert [r["ready"] for r in body["rasa_replicas"]] == [False, True]


def test_healthz_unavailable_when_every_replica_is_down(two_replica_client: TestClient, rasa_mock) -> None:
    mock_health(rasa_mock, None, None)
    response = two_replica_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
