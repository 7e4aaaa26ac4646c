"""Load benchmark of the whole bot (負荷測定): concurrent multi-turn conversations through ``/api/chat``.

``python -m bot.bench --concurrency 1,20,50,20@45 --turns 4 --conversations 100 [--replicas N] [--url URL]``

Without ``--url`` the real stack (action server, rasa with ``models/current.tar.gz``, gateway) is
started on free ports with :class:`bot.stack.Stack`, exactly as the end-to-end tests do, with a
throw-away SQLite tracker store; it is stopped at the end.

Method:

1. Conversation scripts: a question from ``tests/data/procedure_questions.yml`` (only those with one
   expected procedure) followed by ``turns - 1`` follow-ups (「手数料は？」「必要なものは？」…),
   which rasa answers from the ``procedure`` slot of the same conversation.
2. Warm-up / reference run: each distinct script is played once, one message at a time, and the
   *signature* of every reply is recorded (procedure card id, else the button payloads, else the
   text without digits so that clock times do not matter).
3. Measured run: ``--conversations`` conversations (scripts reused round-robin, fresh sender ids),
   at most ``--concurrency`` at the same time; turns of one conversation are sequential, as a
   citizen types them. Latency = time from sending a message to receiving the gateway's reply.
   Two kinds of level (``--concurrency``, see :func:`parse_levels`):

   - ``20``: no pause: each conversation sends its next message the moment the reply arrives. This
     measures the stack's capacity (messages/s at saturation); latency is then mostly queueing:
     by Little's law the mean latency is concurrency ÷ messages/s.
   - ``20@45``: the same 20 conversations, offered 45 messages/s in all (each waits so that it sends
     at most one message every 20/45 s; the pause stands for the citizen reading and typing). This
     measures the latency at a given load, as a service-level target "p95 at N messages/s" means;
     the achieved messages/s is measured, so a stack that cannot keep up shows fewer.

Counts:
    errors: HTTP status other than 200, timeouts and connection errors.
    lost: a message answered with 200 but with no reply, with the apology
        (``utter_service_unavailable``: rasa did not answer), or with a reply whose signature differs
        from the reference run (a reply out of order / for another question or conversation).

Output: human-readable lines, then for each level one JSON line with the keys
``msgs_per_s``, ``p50_ms``, ``p95_ms``, ``p99_ms``, ``errors``, ``lost``, ``concurrency`` (+ details:
``offered_msgs_per_s`` (null without pause),
``messages``, ``conversations``, ``turns``, ``wall_s``, ``rss_peak_mb`` and ``cpu_s`` per process,
``cpu_ms_per_msg`` (CPU ms of all processes per message), ``client_cpu_ms_per_msg`` (CPU ms of this
load generator per message: it shares the machine's cores with the stack), ``rasa_processes``,
``loadavg`` of the machine before the run). The last line is the JSON object of the last level.
Peak RSS (resident memory, MB) is sampled every 0.1 s with psutil for each process and its children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from bot.config import get_settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "data" / "procedure_questions.yml"
#: Follow-up questions (answered from the ``procedure`` slot), in the order they are asked.
FOLLOW_UPS = ("手数料は？", "必要なものは？", "何時まで？", "代理でもいいですか？", "郵送でもできますか？")
#: Seconds one request may take before it counts as an error.
REQUEST_TIMEOUT_S = 30.0
#: Seconds an idle client connection is kept; below uvicorn's default timeout_keep_alive (5 s).
CLIENT_KEEPALIVE_S = 2.0
#: RSS sampling period, seconds.
SAMPLE_PERIOD_S = 0.1
#: Seconds between re-listing each process's children. Listing them scans every process in /proc
#: (psutil's ``children``): done every sample, it took 60 % of the benchmark process's own CPU.
TREE_REFRESH_S = 5.0

_DIGITS = re.compile(r"[0-9０-９]+")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def load_scripts(turns: int, limit: int, path: Path = QUESTIONS) -> list[list[str]]:
    """Conversation scripts: ``[question, follow-up, ...]`` of ``turns`` messages each.

    Args:
        turns: messages per conversation (>= 1).
        limit: number of distinct scripts (questions with one expected procedure, file order).
        path: the questions file (``questions: [{text, procedure}, ...]``).
    """
    questions = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    texts = [q["text"] for q in questions if q.get("procedure")][:limit]
    return [[text, *(FOLLOW_UPS[i % len(FOLLOW_UPS)] for i in range(turns - 1))] for text in texts]


def signature(messages: list[dict[str, Any]]) -> str:
    """What identifies a reply: the procedure card id, else button payloads, else digit-free text."""
    for message in messages:
        custom = message.get("custom") or {}
        if custom.get("type") == "procedure":
            return "card:" + str((custom.get("procedure") or {}).get("id"))
    payloads = [b.get("payload", "") for m in messages for b in (m.get("buttons") or [])]
    if payloads:
        return "buttons:" + "|".join(payloads)
    return "text:" + _DIGITS.sub("#", "\n".join(m.get("text", "") for m in messages))


@dataclass
class RunStats:
    """Results of one measured run (latencies in ms)."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    lost: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        """Keep the first few problem descriptions for the report."""
        if len(self.examples) < 5:
            self.examples.append(what)


class RssSampler:
    """Samples the peak RSS (MB) and CPU seconds of named processes (with children) in a thread.

    Args:
        pids: process name → pid, e.g. ``{"gateway": 123, "rasa": 456, "action_server": 789}``.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak_mb: dict[str, float] = {name: 0.0 for name in pids}
        self._trees: dict[str, list[psutil.Process]] = {}
        self._trees_at = -TREE_REFRESH_S
        self._cpu_start: dict[str, float] = {}  # taken on __enter__
        self.cpu_s: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree(pid: int) -> list[psutil.Process]:
        try:
            proc = psutil.Process(pid)
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []

    def _current_trees(self, refresh: bool = False) -> dict[str, list[psutil.Process]]:
        """Each name's process and children, re-listed at most every :data:`TREE_REFRESH_S` s."""
        now = time.monotonic()
        if refresh or now - self._trees_at >= TREE_REFRESH_S:
            self._trees = {name: self._tree(pid) for name, pid in self.pids.items()}
            self._trees_at = now
        return self._trees

    def _cpu(self) -> dict[str, float]:
        out = {}
        for name, tree in self._current_trees(refresh=True).items():
            total = 0.0
            for proc in tree:
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
            out[name] = total
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, tree in self._current_trees().items():
                rss = 0
                for proc in tree:
                    try:
                        rss += proc.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak_mb[name] = max(self.peak_mb[name], rss / 1e6)
            self._stop.wait(SAMPLE_PERIOD_S)

    def __enter__(self) -> "RssSampler":
        self._cpu_start = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        end = self._cpu()
        self.cpu_s = {name: round(end[name] - self._cpu_start[name], 1) for name in self.pids}


@dataclass
class Reply:
    """One answered request: HTTP status and the parsed JSON body (None when not JSON)."""

    status_code: int
    body: Any


async def _post(client: aiohttp.ClientSession, sender: str, text: str) -> tuple[float, Reply | None, str]:
    """POST one message; returns (latency ms, reply or None, error description).

    Latency runs from sending until the whole body is read and parsed.
    """
    start = time.perf_counter()
    try:
        async with client.post("/api/chat", json={"sender_id": sender, "text": text}) as response:
            body = await response.json(content_type=None)
            reply = Reply(response.status, body)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return (time.perf_counter() - start) * 1000, None, type(exc).__name__
    return (time.perf_counter() - start) * 1000, reply, ""


async def reference_run(client: aiohttp.ClientSession, scripts: list[list[str]]) -> list[list[str]]:
    """Play every script once, sequentially (warm-up); return the reply signatures per turn.

    Raises:
        RuntimeError: a reference message failed (the stack is not usable for a benchmark).
    """
    reference = []
    for number, script in enumerate(scripts):
        sender = f"bench-ref-{uuid.uuid4().hex[:8]}-{number}"
        sigs = []
        for text in script:
            _, response, error = await _post(client, sender, text)
            if response is None or response.status_code != 200:
                raise RuntimeError(f"warm-up failed: {error or response.status_code}")  # type: ignore[union-attr]
            sigs.append(signature(response.body["messages"]))
        reference.append(sigs)
    return reference


async def measured_run(
    client: aiohttp.ClientSession,
    scripts: list[list[str]],
    reference: list[list[str]],
    conversations: int,
    concurrency: int,
    apology: str,
    rate: float = 0.0,
) -> RunStats:
    """Run ``conversations`` conversations, ``concurrency`` at a time; count errors and lost messages.

    Args:
        rate: offered load in messages/s over all conversations; 0 = no pause (each conversation
            sends its next message the moment the reply arrives). With ``rate`` > 0 each of the
            ``concurrency`` workers sends at most one message every ``concurrency / rate`` seconds
            (the citizen's reading/typing time is the rest of that period; none when the reply came
            later than that), and the workers start staggered over one period. The achieved
            messages/s is measured all the same: a stack that cannot keep up shows fewer.
    """
    stats = RunStats()
    period = concurrency / rate if rate > 0 else 0.0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(conversations):
        queue.put_nowait(number)
    run_id = uuid.uuid4().hex[:8]

    async def worker(slot: int) -> None:
        next_send = time.perf_counter() + period * slot / concurrency
        while True:
            try:
                number = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            index = number % len(scripts)
            sender = f"bench-{run_id}-{number}"
            for turn, text in enumerate(scripts[index]):
                if period:
                    await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
                    next_send = max(next_send + period, time.perf_counter())
                latency, response, error = await _post(client, sender, text)
                stats.latencies_ms.append(latency)
                if response is None or response.status_code != 200:
                    stats.errors += 1
                    stats.note(f"error: {error or response.status_code}")  # type: ignore[union-attr]
                    continue
                messages = (response.body or {}).get("messages") or []
                got = signature(messages)
                if not messages or any(m.get("text") == apology for m in messages):
                    stats.lost += 1
                    stats.note(f"no answer (conversation {number} turn {turn + 1})")
                elif got != reference[index][turn]:
                    stats.lost += 1
                    stats.note(f"wrong reply (conversation {number} turn {turn + 1}): {got[:60]} != "
                               f"{reference[index][turn][:60]}")

    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    return stats


async def bench(
    url: str,
    levels: list[tuple[int, float]],
    turns: int,
    conversations: int,
    scripts_limit: int,
    pids: dict[str, int],
) -> list[dict[str, Any]]:
    """Warm up, then run each level; print and return one result dict per level.

    Args:
        levels: ``(concurrency, offered messages/s)`` pairs, run in order (rate 0 = no pause, see
            :func:`measured_run`).
    """
    from bot.messages import load_gateway_messages

    settings = get_settings()
    apology = load_gateway_messages(settings.DOMAIN_FILE, settings.city_file).service_unavailable  # type: ignore[arg-type]
    scripts = load_scripts(turns, scripts_limit)
    # Idle connections expire before uvicorn's 5 s keep-alive timeout closes them: reusing one the
    # server is closing at that moment would fail (a client race, not a lost message).
    # aiohttp rather than httpx: the load generator shares the 2 cores with the stack, and aiohttp
    # needs about half of httpx's CPU per request here (client_cpu_ms_per_msg).
    connector = aiohttp.TCPConnector(limit=max(c for c, _ in levels) + 10, keepalive_timeout=CLIENT_KEEPALIVE_S)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    results = []
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout) as client:
        start = time.perf_counter()
        reference = await reference_run(client, scripts)
        print(f"warm-up: {len(scripts)} conversations x {turns} turns, sequential, "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        for concurrency, rate in levels:
            load = os.getloadavg()
            with RssSampler(pids) as sampler:
                start, client_cpu = time.perf_counter(), time.process_time()
                stats = await measured_run(client, scripts, reference, conversations, concurrency, apology, rate)
                wall, client_cpu = time.perf_counter() - start, time.process_time() - client_cpu
            done = len(stats.latencies_ms) - stats.errors
            result = {
                "msgs_per_s": round(done / wall, 1),
                "p50_ms": round(percentile(stats.latencies_ms, 50), 1),
                "p95_ms": round(percentile(stats.latencies_ms, 95), 1),
                "p99_ms": round(percentile(stats.latencies_ms, 99), 1),
                "errors": stats.errors,
                "lost": stats.lost,
                "concurrency": concurrency,
                "offered_msgs_per_s": rate or None,
                "messages": len(stats.latencies_ms),
                "conversations": conversations,
                "turns": turns,
                "wall_s": round(wall, 1),
                "rss_peak_mb": {k: round(v, 1) for k, v in sampler.peak_mb.items()},
                "cpu_s": sampler.cpu_s,
                "cpu_ms_per_msg": round(1000 * sum(sampler.cpu_s.values()) / max(done, 1), 1),
                "client_cpu_ms_per_msg": round(1000 * client_cpu / max(done, 1), 1),
                "rasa_processes": sum(1 for name in pids if name.startswith("rasa")),
                "loadavg": [round(x, 2) for x in load],
            }
            pace = f", offered {rate:g} messages/s" if rate else ", no pause between messages"
            print(f"\n== concurrency {concurrency}{pace}: {result['messages']} messages in {wall:.1f} s "
                  f"(load average before: {result['loadavg'][0]})")
            print(f"  {result['msgs_per_s']} messages/s  p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  "
                  f"p99 {result['p99_ms']} ms  errors {stats.errors}  lost {stats.lost}")
            for name in pids:
                print(f"  {name}: peak RSS {result['rss_peak_mb'][name]} MB, CPU {sampler.cpu_s.get(name)} s")
            for example in stats.examples:
                print(f"  ! {example}")
            print(json.dumps(result, ensure_ascii=False), flush=True)
            results.append(result)
    return results


def parse_levels(text: str) -> list[tuple[int, float]]:
    """Parse ``--concurrency``: comma-separated ``C`` or ``C@R`` items.

    ``C`` concurrent conversations, offered ``R`` messages/s in all (no ``@R``: 0 = no pause).
    Example: ``"1,20,50,20@45"`` → ``[(1, 0.0), (20, 0.0), (50, 0.0), (20, 45.0)]``.

    Raises:
        ValueError: an item that is not a positive integer, optionally with ``@`` and a rate >= 0.
    """
    levels = []
    for item in (x.strip() for x in str(text).split(",")):
        if not item:
            continue
        count, _, offered = item.partition("@")
        try:
            level = (int(count), float(offered) if offered else 0.0)
        except ValueError:
            raise ValueError(f"bad level {item!r}: use C or C@R, e.g. 20 or 20@45") from None
        if level[0] < 1 or level[1] < 0:
            raise ValueError(f"bad level {item!r}: concurrency >= 1, rate >= 0")
        levels.append(level)
    if not levels:
        raise ValueError("no level given")
    return levels


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 even when targets are missed: it measures)."""
    parser = argparse.ArgumentParser(prog="python -m bot.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="20",
                        help="同時会話数。カンマ区切りで複数、@ のあとに全体の毎秒の送信数（例: 1,20,50,20@45）"
                             " / concurrent conversations, each optionally @ offered messages/s, e.g. 1,20,50,20@45")
    parser.add_argument("--turns", type=int, default=4, help="1 会話のメッセージ数 / messages per conversation")
    parser.add_argument("--conversations", type=int, default=100, help="会話数 / conversations per level")
    parser.add_argument("--scripts", type=int, default=30, help="異なる会話の数 / distinct conversation scripts")
    parser.add_argument("--url", help="起動中のゲートウェイ（省略時はスタックを起動）/ running gateway base URL")
    parser.add_argument("--model", type=Path, default=None, help="モデル（既定 models/current.tar.gz）")
    parser.add_argument("--replicas", type=int, default=None,
                        help="rasa の数（既定: 設定 RASA_REPLICAS）/ rasa processes (default: RASA_REPLICAS)")
    parser.add_argument("--pid", action="append", default=[], metavar="NAME=PID",
                        help="--url のとき RSS を測るプロセス（例: rasa=1234）/ processes to sample with --url")
    args = parser.parse_args(argv)
    try:
        levels = parse_levels(args.concurrency)
    except ValueError as exc:
        parser.error(str(exc))
    if args.url:
        pids = {name: int(pid) for name, _, pid in (p.partition("=") for p in args.pid)}
        asyncio.run(bench(args.url.rstrip("/"), levels, args.turns, args.conversations, args.scripts, pids))
        return 0

    from bot.stack import Stack, StackError

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        settings = get_settings()
        replicas = args.replicas or settings.RASA_REPLICAS
        stack = Stack(settings, gateway_port=free_port(), rasa_ports=[free_port() for _ in range(replicas)],
                      action_port=free_port(), model=args.model, log_dir=Path(tmp),
                      tracker_db=Path(tmp) / "trackers.db")
        print(f"starting the stack with {replicas} rasa process(es) (rasa loads the model: ~1 min) …", flush=True)
        try:
            urls = stack.start()
        except StackError as exc:
            print(f"stack failed: {exc}", file=sys.stderr)
            return 1
        try:
            pids = {c.name.replace(" ", "_"): c.popen.pid for c in stack.children}
            timings = ", ".join(f"{c.name} {c.ready_s:.1f} s" for c in stack.children if c.ready_s is not None)
            print(f"stack ready ({timings}); logs in {tmp}", flush=True)
            asyncio.run(bench(urls.gateway, levels, args.turns, args.conversations, args.scripts, pids))
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
