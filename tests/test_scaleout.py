"""Scale-out: two rasa replicas sharing PostgreSQL (tracker store) and Redis (lock store) behind
the gateway, which routes each conversation by its sender id (``RASA_URLS``); and first, the
one-machine variant (``RASA_REPLICAS=2``): two replicas sharing the SQLite file of endpoints.yml.

Starts throwaway PostgreSQL and Redis with ``.ci/services.sh`` (installs the Debian packages
when absent, as root), one action server, two rasa replicas with ``deploy/endpoints.postgres.yml``
and two gateways: one sending everything to replica 1, one routing over both replicas. Then
100 concurrent conversations of 4 turns each go through each gateway; every answer must be
about the procedure of *that* conversation's earlier turns, and PostgreSQL must hold each
conversation's messages in the order sent. Prints the throughput with 1 vs 2 replicas.

Needs models/current.tar.gz. Takes about 3 minutes (two model loads, 800 messages).
The gateways get ``RASA_TIMEOUT_S=120`` so that a burst of 100 simultaneous messages measures
throughput instead of hitting the production timeout (10 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.bench import CLIENT_KEEPALIVE_S
from bot.config import get_settings
from bot.rasa_client import rank_replicas
from bot.stack import Stack, log_tail

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "current.tar.gz"
SERVICES = ROOT / ".ci" / "services.sh"
ENDPOINTS = ROOT / "deploy" / "endpoints.postgres.yml"
pytestmark = pytest.mark.e2e

CONVERSATIONS = 100
#: Two models load at once; on a busy 2-core machine that took up to 3-4 minutes.
STARTUP_TIMEOUT_S = 480.0
#: (question, procedure id it must be answered with); conversation i asks P = i % 3, then Q = i+1.
PROCEDURES = [
    ("住民票が欲しいです", "juminhyo_copy"),
    ("印鑑証明が欲しいのですが何が必要ですか", "inkan_certificate"),
    ("戸籍謄本を郵送で取り寄せたい", "koseki_certificate"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(i: int) -> list[tuple[str, str]]:
    """Turns of conversation ``i`` as (text, expected procedure id). Turns 2 and 4 name no
    procedure: the right answer exists only if the earlier turns were applied, in order."""
    (p_text, p_id), (q_text, q_id) = PROCEDURES[i % 3], PROCEDURES[(i + 1) % 3]
    return [(p_text, p_id), ("手数料は？", p_id), (q_text, q_id), ("必要なものは？", q_id)]


def nfkc(text: str) -> str:
    """The gateway normalizes width (「？」→「?」) before rasa stores the text."""
    return unicodedata.normalize("NFKC", text)


def card_id(messages: list[dict[str, Any]]) -> str | None:
    ids = [m["custom"]["procedure"]["id"] for m in messages if (m.get("custom") or {}).get("type") == "procedure"]
    return ids[0] if len(ids) == 1 else None


# -- services and processes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, str]]:
    """Throwaway PostgreSQL + Redis; yields the variables of DIR/env (DB_*, REDIS_*, PG_BIN)."""
    # not under pytest's tmp_path: its 0700 parents keep the postgres user out
    work = Path(tempfile.mkdtemp(prefix="chatbot-scaleout-", dir="/tmp"))
    try:
        done = subprocess.run(["bash", str(SERVICES), "start", str(work), str(free_port()), str(free_port())],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f".ci/services.sh start failed:\n{done.stdout}\n{done.stderr}")
        env = dict(line.split("=", 1) for line in (work / "env").read_text().splitlines() if "=" in line)
        yield env
    finally:
        subprocess.run(["bash", str(SERVICES), "stop", str(work)], timeout=120)


@pytest.fixture(scope="module")
def stack(services: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Action server + rasa replicas 1 and 2 (shared stores) + a gateway routing over both."""
    if not MODEL.is_file():
        pytest.fail("models/current.tar.gz がありません。make model（または make test）で学習してください。")
    logs = tmp_path_factory.mktemp("scaleout")
    env = {k: v for k, v in services.items() if k.startswith(("DB_", "REDIS_"))}
    env.update(RASA_TIMEOUT_S="120", RATE_LIMIT="off", REVIEW_DB=str(logs / "review.db"))
    stack = Stack(get_settings(), gateway_port=free_port(), action_port=free_port(),
                  rasa_ports=[free_port(), free_port()], model=MODEL, log_dir=logs,
                  endpoints=ENDPOINTS, env=env)
    started = time.monotonic()
    stack.start(timeout_s=STARTUP_TIMEOUT_S)
    print(f"\nstack with 2 replicas ready in {time.monotonic() - started:.0f} s "
          f"({', '.join(f'{c.name} {c.ready_s:.0f} s' for c in stack.children if c.ready_s)})")
    try:
        yield stack
    finally:
        stack.stop()


@contextmanager
def gateway_for(stack: Stack, replicas: list[str]) -> Iterator[str]:
    """An extra gateway process routing over ``replicas`` only; yields its base URL."""
    port = free_port()
    log = stack.log_dir / f"gateway_{len(replicas)}_replicas.log"
    env = {**os.environ, **stack.env, "PYTHONPATH": str(ROOT), "RASA_URL": replicas[0],
           "RASA_URLS": ",".join(replicas), "ACTION_SERVER_URL": stack.urls.action_server}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if proc.poll() is not None:
                pytest.fail(f"gateway exited:\n{log_tail(log)}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"gateway not ready:\n{log_tail(log)}")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def psql(services: dict[str, str], query: str) -> list[list[str]]:
    """Rows of a query on the tracker database (tab-separated psql output)."""
    done = subprocess.run(
        [f"{services['PG_BIN']}/psql", "-h", services["DB_HOST"], "-p", services["DB_PORT"], "-U", services["DB_USER"],
         "-d", services["DB_DATABASE"], "-At", "-F", "\t", "-c", query],
        env={**os.environ, "PGPASSWORD": services["DB_PASSWORD"]}, capture_output=True, text=True, check=True,
    )
    return [line.split("\t") for line in done.stdout.splitlines()]


def events_by_sender(services: dict[str, str], prefix: str) -> dict[str, list[tuple[str, str]]]:
    """sender id → [(event type, user text or action name)] in the order stored."""
    rows = psql(services, "SELECT sender_id, type_name, CASE type_name WHEN 'user' THEN data::json->>'text'"
                          " WHEN 'action' THEN data::json->>'name' ELSE '' END"
                          f" FROM events WHERE sender_id LIKE '{prefix}%' ORDER BY id")
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for sender, kind, value in rows:
        out[sender].append((kind, value))
    return out


def redis_commands(services: dict[str, str]) -> int:
    """Redis ``total_commands_processed`` so far."""
    done = subprocess.run(["redis-cli", "-h", services["REDIS_HOST"], "-p", services["REDIS_PORT"],
                           "--no-auth-warning", "-a", services["REDIS_PASSWORD"], "info", "stats"],
                          capture_output=True, text=True, check=True)
    return int(next(line.split(":")[1] for line in done.stdout.splitlines() if line.startswith("total_commands_processed")))


# -- load -------------------------------------------------------------------------------------


async def run_conversations(url: str, prefix: str, n: int = CONVERSATIONS) -> dict[str, Any]:
    """``n`` conversations at once, each sending its turns one after the other.

    Returns {"senders", "answers": {sender: [card id per turn]}, "expected", "seconds", "latencies_ms"}.
    """
    senders = [f"{prefix}{i:03d}" for i in range(n)]
    answers: dict[str, list[str | None]] = {}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10,
                          keepalive_expiry=CLIENT_KEEPALIVE_S)  # see bot/bench.py
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:

        async def talk(i: int, sender: str) -> None:
            got = []
            for text, _ in script(i):
                start = time.perf_counter()
                response = await client.post("/api/chat", json={"sender_id": sender, "text": text})
                latencies.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text
                got.append(card_id(response.json()["messages"]))
            answers[sender] = got

        start = time.perf_counter()
        await asyncio.gather(*(talk(i, s) for i, s in enumerate(senders)))
        seconds = time.perf_counter() - start
    expected = {s: [pid for _, pid in script(i)] for i, s in enumerate(senders)}
    return {"senders": senders, "answers": answers, "expected": expected, "seconds": seconds, "latencies_ms": latencies}


def check_conversations(result: dict[str, Any], services: dict[str, str], prefix: str) -> None:
    """Every answer about that conversation's procedure; PostgreSQL holds each conversation's
    messages in the order sent, with one session start."""
    wrong = {s: (result["answers"][s], result["expected"][s]) for s in result["senders"]
             if result["answers"][s] != result["expected"][s]}
    assert not wrong, f"{len(wrong)} conversations got answers for another procedure/turn: {list(wrong.items())[:3]}"
    stored = events_by_sender(services, prefix)
    assert set(stored) == set(result["senders"]), "every conversation's tracker is in PostgreSQL"
    for i, sender in enumerate(result["senders"]):
        events = stored[sender]
        assert [nfkc(v) for k, v in events if k == "user"] == [nfkc(text) for text, _ in script(i)], sender
        assert [k for k, _ in events].count("session_started") == 1, (sender, events)


def throughput(result: dict[str, Any]) -> str:
    messages = len(result["latencies_ms"])
    lat = sorted(result["latencies_ms"])
    return (f"{messages} messages in {result['seconds']:.1f} s = {messages / result['seconds']:.1f} messages/s, "
            f"p50 {statistics.median(lat):.0f} ms, p95 {lat[int(0.95 * (len(lat) - 1))]:.0f} ms")


def warm_up(url: str) -> None:
    """One conversation per replica first, so model/graph warm-up is not measured."""
    with httpx.Client(timeout=120) as client:
        for text, _ in script(0):
            client.post(f"{url}/webhooks/rest/webhook", json={"sender": f"warm-{uuid.uuid4().hex[:8]}", "message": text})


# -- tests ------------------------------------------------------------------------------------


@pytest.fixture()
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The one-machine set-up with ``RASA_REPLICAS=2``: two rasa replicas sharing the SQLite tracker
    store of endpoints.yml (WAL), in-memory lock stores, one gateway routing by sender id.
    Function-scoped and first in the module, so it is stopped before the PostgreSQL stack starts."""
    if not MODEL.is_file():
        pytest.fail("models/current.tar.gz がありません。make model（または make test）で学習してください。")
    logs = tmp_path_factory.mktemp("replicas-sqlite")
    stack = Stack(get_settings(), gateway_port=free_port(), action_port=free_port(),
                  rasa_ports=[free_port(), free_port()], model=MODEL, log_dir=logs, tracker_db=logs / "trackers.db",
                  env={"RASA_TIMEOUT_S": "120", "RATE_LIMIT": "off", "REVIEW_DB": str(logs / "review.db")})
    stack.start(timeout_s=STARTUP_TIMEOUT_S)
    try:
        yield stack
    finally:
        stack.stop()


def test_two_replicas_on_one_machine_share_the_sqlite_tracker_store(sqlite_stack: Stack) -> None:
    replicas = list(sqlite_stack.urls.rasa_replicas)
    for url in replicas:
        warm_up(url)
    result = asyncio.run(run_conversations(sqlite_stack.urls.gateway, "sq-"))
    print(f"\n2 replicas, shared SQLite: {throughput(result)}")
    wrong = {s: (result["answers"][s], result["expected"][s]) for s in result["senders"]
             if result["answers"][s] != result["expected"][s]}
    assert not wrong, f"{len(wrong)} conversations got answers for another procedure/turn: {list(wrong.items())[:3]}"
    with sqlite3.connect(sqlite_stack.log_dir / "trackers.db") as db:
        rows = db.execute("SELECT sender_id, type_name, json_extract(data, '$.text') FROM events"
                          " WHERE sender_id LIKE 'sq-%' ORDER BY id").fetchall()
    stored: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for sender, kind, text in rows:
        stored[sender].append((kind, text))
    assert set(stored) == set(result["senders"]), "every conversation's tracker is in the SQLite file"
    for i, sender in enumerate(result["senders"]):
        assert [nfkc(t) for k, t in stored[sender] if k == "user"] == [nfkc(text) for text, _ in script(i)], sender
        assert [k for k, _ in stored[sender]].count("session_started") == 1, sender
    shares = Counter(replicas.index(rank_replicas(s, replicas)[0]) for s in result["senders"])
    assert min(shares.values()) >= 30, shares



def test_health_reports_both_replicas(stack: Stack) -> None:
    response = httpx.get(f"{stack.urls.gateway}/healthz", timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok", body
    assert [r["ready"] for r in body["rasa_replicas"]] == [True, True]


def test_100_concurrent_conversations_keep_order_and_state_with_1_and_2_replicas(
    stack: Stack, services: dict[str, str]
) -> None:
    replicas = list(stack.urls.rasa_replicas)
    for url in replicas:
        warm_up(url)
    redis_before = redis_commands(services)
    run = f"s{uuid.uuid4().hex[:6]}-"
    with gateway_for(stack, replicas[:1]) as one_replica_gateway:
        one = asyncio.run(run_conversations(one_replica_gateway, f"{run}one-"))
    two = asyncio.run(run_conversations(stack.urls.gateway, f"{run}two-"))
    shares = Counter(replicas.index(rank_replicas(s, replicas)[0]) + 1 for s in two["senders"])
    print(f"\n1 replica : {throughput(one)}\n2 replicas: {throughput(two)}"
          f"  (conversations per replica: {dict(sorted(shares.items()))})"
          f"\nspeed-up {one['seconds'] / two['seconds']:.2f}x on {os.cpu_count()} CPU cores")
    check_conversations(one, services, f"{run}one-")
    check_conversations(two, services, f"{run}two-")
    assert min(shares.values()) >= 30, shares
    # each message takes and releases its conversation's lock in Redis
    assert redis_commands(services) - redis_before >= 2 * 8 * CONVERSATIONS


def test_one_conversation_sent_to_both_replicas_at_once_stays_consistent(
    stack: Stack, services: dict[str, str]
) -> None:
    """Two messages of one conversation arriving at different replicas at the same moment (what a
    fail-over or gateways with different RASA_URLS could cause) are processed one after the other
    thanks to the Redis lock store: one session start, both user messages kept, each after
    action_listen. Rasa's own RedisLockStore failed this (a user message was lost from the
    tracker); deploy/rasa_lock_store.AtomicRedisLockStore passes."""
    r1, r2 = stack.urls.rasa_replicas
    prefix = f"lock{uuid.uuid4().hex[:6]}-"
    senders = [f"{prefix}{i:02d}" for i in range(20)]

    async def both(client: httpx.AsyncClient, sender: str) -> None:
        responses = await asyncio.gather(
            client.post(f"{r1}/webhooks/rest/webhook", json={"sender": sender, "message": "住民票が欲しいです"}),
            client.post(f"{r2}/webhooks/rest/webhook", json={"sender": sender, "message": "印鑑証明が欲しいのですが何が必要ですか"}),
        )
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        assert all(card_id(r.json()) for r in responses), "both messages answered with a procedure"

    async def main() -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            await asyncio.gather(*(both(client, s) for s in senders))

    asyncio.run(main())
    stored = events_by_sender(services, prefix)
    for sender in senders:
        events = stored[sender]
        kinds = [k for k, _ in events]
        assert kinds.count("session_started") == 1, (sender, events)
        assert kinds.count("user") == 2, (sender, events)
        for position, (kind, _) in enumerate(events):
            if kind == "user":  # rasa was listening: the previous message was fully processed
                assert events[position - 1] == ("action", "action_listen"), (sender, events)


def test_conversations_of_a_stopped_replica_continue_on_the_other(stack: Stack, services: dict[str, str]) -> None:
    """Runs last: stops replica 2. Its conversations fail over to replica 1, which continues them
    from PostgreSQL; /healthz says degraded."""
    replicas = list(stack.urls.rasa_replicas)
    prefix = f"fo{uuid.uuid4().hex[:6]}-"
    senders = [s for s in (f"{prefix}{i:03d}" for i in range(60)) if rank_replicas(s, replicas)[0] == replicas[1]][:8]
    assert senders
    with httpx.Client(base_url=stack.urls.gateway, timeout=60) as client:
        for i, sender in enumerate(senders):  # the first turn is served by replica 2
            first_text, first_id = script(i)[0]
            assert card_id(client.post("/api/chat", json={"sender_id": sender, "text": first_text}).json()["messages"]) == first_id
        replica2 = next(c for c in stack.children if c.name == "rasa 2")
        os.killpg(replica2.popen.pid, signal.SIGTERM)
        replica2.popen.wait(timeout=30)
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
        assert [r["ready"] for r in health.json()["rasa_replicas"]] == [True, False]
        for i, sender in enumerate(senders):  # 手数料は？ needs the procedure of turn 1
            text, expected = script(i)[1]
            messages = client.post("/api/chat", json={"sender_id": sender, "text": text}).json()["messages"]
            assert card_id(messages) == expected, messages
    stored = events_by_sender(services, prefix)
    for i, sender in enumerate(senders):
        assert [nfkc(v) for k, v in stored[sender] if k == "user"] == [nfkc(script(i)[0][0]), nfkc(script(i)[1][0])]
        assert [k for k, _ in stored[sender]].count("session_started") == 1
