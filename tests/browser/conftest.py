"""Fixtures for the browser tests: the real stack (action server, rasa with the trained model,
gateway), Debian's chromium driven by Playwright, and axe-core from tests/browser/node_modules.

Nothing is downloaded at test time: chromium comes from apt (``/usr/bin/chromium``) and axe-core
from ``npm ci`` (both installed by ``make browser-deps``). When either is missing the tests FAIL
with the command to run, they are never skipped.
"""

from __future__ import annotations

import html
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.stack import running_stack

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "current.tar.gz"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: Default Playwright timeout (ms); the first answer warms rasa up.
ANSWER_TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _CitySite(BaseHTTPRequestHandler):
    """Plays the city's website: ``GET /city-site.html?gateway=<url>`` is a page that embeds the
    widget with ``<script src="<url>/widget.js" async>`` as the README tells the city to."""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        query = parse_qs(urlsplit(self.path).query)
        gateway = html.escape(query.get("gateway", [""])[0], quote=True)
        body = (
            '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
            "<title>盛岡市公式ホームページ（テスト用）</title></head>"
            "<body><header><h1>盛岡市</h1></header><main><h2>お知らせ</h2><p>市役所からのお知らせです。</p></main>"
            f'<script src="{gateway}/widget.js" async></script></body></html>'
        ).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="session")
def city_site() -> Iterator[str]:
    """Origin of a stand-in for the city's website on 127.0.0.1 (a real loopback server: Chromium
    refuses requests from a page of unknown address space to the loopback gateway). Port:
    ``BROWSER_HOST_PORT`` or a free one."""
    port = int(os.environ.get("BROWSER_HOST_PORT") or free_port())
    server = ThreadingHTTPServer(("127.0.0.1", port), _CitySite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, city_site: str) -> Iterator[dict[str, Any]]:
    """The real stack; yields ``{"url": "http://127.0.0.1:<port>", "city_site": <origin>}``.
    The city site may embed the page: ``WEB_FRAME_ANCESTORS`` is set for the gateway, which
    inherits this process's environment.

    To test a gateway that is already running, set ``BROWSER_GATEWAY_URL`` (e.g.
    ``http://127.0.0.1:8000``) and ``BROWSER_HOST_PORT``; that gateway must have been started
    with ``WEB_FRAME_ANCESTORS="'self' http://127.0.0.1:<BROWSER_HOST_PORT>"``.
    """
    running = os.environ.get("BROWSER_GATEWAY_URL")
    if running:
        yield {"url": running.rstrip("/"), "city_site": city_site}
        return
    if not MODEL.is_file():
        pytest.fail("models/current.tar.gz がありません。make model（または make test）で学習してください。")
    tmp = tmp_path_factory.mktemp("browser-stack")
    saved = os.environ.get("WEB_FRAME_ANCESTORS")
    os.environ["WEB_FRAME_ANCESTORS"] = f"'self' {city_site}"
    try:
        started = time.monotonic()
        with running_stack(gateway_port=free_port(), rasa_port=free_port(), action_port=free_port(),
                           log_dir=tmp, tracker_db=tmp / "trackers.db", model=MODEL) as urls:
            print(f"\nstack ready in {time.monotonic() - started:.1f} s")
            yield {"url": urls.gateway, "city_site": city_site}
    finally:
        if saved is None:
            os.environ.pop("WEB_FRAME_ANCESTORS", None)
        else:
            os.environ["WEB_FRAME_ANCESTORS"] = saved


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright (never ``playwright install``)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} がありません。make browser-deps（apt-get install chromium）を実行してください。")
    if not AXE.is_file():
        pytest.fail(f"{AXE} がありません。make browser-deps（tests/browser で npm ci）を実行してください。")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (empty session/local storage) with axe-core preloaded in every
    frame (an init script, so the page's Content-Security-Policy does not block it)."""
    ctx = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1024, "height": 900})
    ctx.add_init_script(path=str(AXE))
    ctx.set_default_timeout(ANSWER_TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, gateway: dict[str, Any]) -> Any:
    """The chat page, loaded; page errors (uncaught exceptions) are collected in ``page.errors``."""
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.goto(gateway["url"] + "/")
    return pg
