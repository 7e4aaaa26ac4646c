"""bot/bench.py: the load benchmark's levels, pacing and counting (against a small fake gateway).

The numbers themselves come from ``make bench`` on the real stack; these tests only check that the
benchmark measures what it says: paced levels do not send faster than offered, replies that differ
from the reference run count as lost, and failed requests count as errors.
"""

from __future__ import annotations

import time

import aiohttp
import pytest
from aiohttp import web

from bot.bench import measured_run, parse_levels, reference_run, signature

APOLOGY = "申し訳ありません。ただいま応答できません。"


def test_levels_with_and_without_an_offered_rate() -> None:
    assert parse_levels("1,20,50,20@45") == [(1, 0.0), (20, 0.0), (50, 0.0), (20, 45.0)]
    assert parse_levels(" 20 ,") == [(20, 0.0)]
    for bad in ("", "x", "0", "20@-1", "20@fast"):
        with pytest.raises(ValueError):
            parse_levels(bad)


@pytest.fixture
async def gateway():
    """A fake ``/api/chat``: echoes the text; answers 500 to 「壊れて」 and the apology to 「謝って」;
    answers 「変わる」 differently each time."""
    state = {"calls": 0}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        state["calls"] += 1
        text = body["text"]
        if text == "壊れて":
            return web.json_response({"detail": "boom"}, status=500)
        if text == "謝って":
            text = APOLOGY
        if text == "変わる":
            text = f"変わる{'ア' * state['calls']}"
        return web.json_response({"messages": [{"text": text}]})

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
        yield client
    await runner.cleanup()


async def test_paced_level_sends_no_faster_than_offered(gateway: aiohttp.ClientSession) -> None:
    scripts = [["住民票", "手数料は？"], ["戸籍", "必要なものは？"]]
    reference = await reference_run(gateway, scripts)
    start = time.perf_counter()
    stats = await measured_run(gateway, scripts, reference, conversations=4, concurrency=2,
                               apology=APOLOGY, rate=20.0)
    wall = time.perf_counter() - start
    # 8 messages over 2 conversations at a time, 20 messages/s in all: each of the 2 sends one
    # message per 0.1 s, so its 4 messages span at least 0.3 s after its first
    assert wall >= 0.3
    assert len(stats.latencies_ms) == 8 and stats.errors == 0 and stats.lost == 0


async def test_errors_and_lost_replies_are_counted(gateway: aiohttp.ClientSession) -> None:
    scripts = [["住民票", "変わる"], ["謝って"], ["戸籍", "壊れて"]]
    # what a correct stack would say
    reference = [[signature([{"text": text}]) for text in script] for script in scripts]
    stats = await measured_run(gateway, scripts, reference, conversations=3, concurrency=3, apology=APOLOGY)
    assert len(stats.latencies_ms) == 5
    assert stats.errors == 1  # HTTP 500
    assert stats.lost == 2  # the apology, and a reply that differs from the reference run


def test_sampler_measures_a_process_tree_and_lists_children_only_now_and_then(monkeypatch) -> None:
    """Peak RSS and CPU include a child process; children are re-listed at most once per
    TREE_REFRESH_S, not every sample (listing scans all of /proc and loaded the benchmark machine)."""
    import subprocess
    import sys

    import psutil

    from bot import bench

    listings = []
    real_children = psutil.Process.children

    def children(self, recursive=False):
        listings.append(self.pid)
        return real_children(self, recursive=recursive)

    monkeypatch.setattr(psutil.Process, "children", children)
    monkeypatch.setattr(bench, "SAMPLE_PERIOD_S", 0.01)
    hog = "import time; x = bytearray(300_000_000); t = time.time()\nwhile time.time() - t < 2: pass"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hog!r}])"])
    try:
        time.sleep(0.5)  # the child has started and allocated
        with bench.RssSampler({"parent": parent.pid}) as sampler:
            time.sleep(1.0)
    finally:
        parent.wait(timeout=30)
    assert sampler.peak_mb["parent"] > 300  # the child's 300 MB counted under its parent
    assert sampler.cpu_s["parent"] >= 0.5   # the child's busy loop counted too
    assert len(listings) <= 3, listings     # start, end (CPU), one sampling pass: not ~100
