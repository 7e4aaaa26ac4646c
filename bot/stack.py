"""Start the whole stack: action server, rasa and the gateway, as child processes.

Used by ``make run`` (``python -m bot stack``) and, through :func:`running_stack`,
by the end-to-end tests. Only the gateway may listen on a public interface; the
action server and rasa bind 127.0.0.1:

* action server: ``python -m rasa_sdk --actions actions -p PORT`` with
  ``SANIC_HOST=127.0.0.1`` (rasa-sdk 3.6 has no host option; ``rasa_sdk.endpoint.run``
  reads the bind address from ``SANIC_HOST``, default 0.0.0.0);
* rasa: ``.venv-rasa/bin/rasa run --enable-api -i 127.0.0.1 -p PORT ...`` (one process, or
  several replicas on several ports sharing a tracker and a lock store, e.g. with
  ``deploy/endpoints.postgres.yml``; the gateway then gets ``RASA_URLS``);
* gateway: ``python -m bot serve --host HOST --port PORT``.

Each child writes stdout+stderr to ``logs/<name>.log`` and runs in its own session,
so Ctrl-C reaches only this process, which then stops the children (SIGTERM, then
SIGKILL after 10 s).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import httpx
import yaml

from bot.config import Settings, get_settings

#: Default seconds to wait for every process to become ready.
READY_TIMEOUT_S = 180.0
#: Seconds between readiness probes.
POLL_INTERVAL_S = 1.0
#: Seconds a child gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
#: Lines of a child's log shown in error messages.
LOG_TAIL_LINES = 30


class StackError(RuntimeError):
    """A process could not start, exited early or did not become ready in time.

    The message names the process and includes the last lines of its log file.
    """


class _NeverReady(Exception):
    """Raised by a readiness probe when waiting longer is pointless (message = reason)."""


@dataclass(frozen=True)
class StackUrls:
    """Base URLs of a running stack (no trailing slash).

    Attributes:
        gateway: e.g. ``http://127.0.0.1:8000`` (``/api/chat``, ``/healthz``).
        rasa: e.g. ``http://127.0.0.1:5005`` (the first replica).
        action_server: e.g. ``http://127.0.0.1:5055``.
        rasa_replicas: every rasa replica, ``rasa`` first (``(rasa,)`` without scale-out).
    """

    gateway: str
    rasa: str
    action_server: str
    rasa_replicas: tuple[str, ...] = ()


@dataclass
class _Child:
    """A started child process and how to tell it is ready."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    is_ready: Callable[[], bool]
    started: float = field(default_factory=time.monotonic)
    ready_s: float | None = None
    ready: bool = field(default=False)
    argv: list[str] = field(default_factory=list)  # kept for Stack.restart
    env: dict[str, str] = field(default_factory=dict)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file, colour codes removed ("" if missing)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(_ANSI.sub("", line) for line in text.splitlines()[-lines:])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _probe(url: str) -> bool:
    """GET ``url`` with a 2 s timeout; True when it answers 200."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _rasa_ready(base_url: str, model: Path) -> bool:
    """Rasa ``/status`` answers 200 with a non-empty ``model_file``.

    Raises:
        _NeverReady: ``/status`` answers 409 (no agent). Rasa loads the model before it
            starts serving, so a 409 means the model failed to load, and rasa keeps running.
    """
    try:
        response = httpx.get(f"{base_url}/status", timeout=2.0)
    except httpx.HTTPError:
        return False
    if response.status_code == 409:
        raise _NeverReady(f"rasa がモデルを読み込めませんでした / rasa could not load the model {model}")
    try:
        body = response.json()
    except ValueError:
        return False
    return response.status_code == 200 and isinstance(body, dict) and bool(body.get("model_file"))


def _child_env(repo_root: Path, extra: dict[str, str]) -> dict[str, str]:
    """Environment for children: the current one plus the stack's fixed variables."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(repo_root),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "RASA_TELEMETRY_ENABLED": "false",
            "SANIC_REGISTER": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def tf_threads_env(threads: int) -> dict[str, str]:
    """TensorFlow thread variables for a rasa process (``RASA_TF_THREADS``; 0 → none, TF's default)."""
    if threads <= 0:
        return {}
    return {"TF_INTRA_OP_PARALLELISM_THREADS": str(threads), "TF_INTER_OP_PARALLELISM_THREADS": str(threads)}


def _port_of(url: str, default: int) -> int:
    """Port of a base URL like ``http://127.0.0.1:5005`` (``default`` when absent)."""
    return urlsplit(url).port or default


class Stack:
    """The three processes of the bot. Use :func:`running_stack` unless you need
    :meth:`check_alive` (``python -m bot stack`` does).

    Args:
        settings: gateway settings (``REPO_ROOT``, ``CITY``, timeouts).
        gateway_host: gateway bind address (``0.0.0.0`` for ``make run``, 127.0.0.1 in tests).
        gateway_port / rasa_port / action_port: TCP ports.
        model: trained model archive (default ``models/current.tar.gz``).
        log_dir: where ``action_server.log``, ``rasa.log``, ``gateway.log`` go (default ``logs/``).
        tracker_db: SQLite tracker file for rasa (default: as in ``endpoints.yml``).
        python: interpreter of ``.venv`` for the action server and gateway (default: this one).
        rasa_bin: rasa executable (default ``.venv-rasa/bin/rasa``); rasa is run by the ``python``
            next to it as ``python -m bot.rasa_run run ...`` (rasa's CLI plus speed fixes).
        rasa_ports: ports of several rasa replicas (scale-out; default ``[rasa_port]``). Replica
            1 logs to ``rasa.log``, replica N to ``rasa_N.log``; the gateway gets ``RASA_URLS``.
            Replicas share the tracker store: on one machine the SQLite file of endpoints.yml
            (WAL mode, ``RASA_REPLICAS``), across machines PostgreSQL and a Redis lock store
            (``endpoints=deploy/endpoints.postgres.yml``).
        endpoints: rasa endpoints file (default ``endpoints.yml``).
        env: extra environment variables for every child, e.g. ``DB_HOST``… read by the
            endpoints file.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        gateway_host: str = "127.0.0.1",
        gateway_port: int = 8000,
        rasa_port: int = 5005,
        action_port: int = 5055,
        model: Path | None = None,
        log_dir: Path | None = None,
        tracker_db: Path | None = None,
        python: str | None = None,
        rasa_bin: Path | None = None,
        rasa_ports: Sequence[int] | None = None,
        endpoints: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        root = settings.REPO_ROOT
        self.settings = settings
        self.gateway_host = gateway_host
        self.gateway_port = gateway_port
        self.rasa_port = rasa_port
        self.action_port = action_port
        self.model = Path(model) if model else root / "models" / "current.tar.gz"
        self.log_dir = Path(log_dir) if log_dir else root / "logs"
        self.tracker_db = tracker_db
        self.python = python or sys.executable
        self.rasa_bin = Path(rasa_bin) if rasa_bin else root / ".venv-rasa" / "bin" / "rasa"
        self.rasa_ports = list(rasa_ports) if rasa_ports else [rasa_port]
        self.rasa_port = self.rasa_ports[0]
        self.endpoints = Path(endpoints) if endpoints else root / "endpoints.yml"
        self.env = dict(env or {})
        self.urls = StackUrls(
            gateway=f"http://127.0.0.1:{gateway_port}",
            rasa=f"http://127.0.0.1:{self.rasa_port}",
            action_server=f"http://127.0.0.1:{action_port}",
            rasa_replicas=tuple(f"http://127.0.0.1:{port}" for port in self.rasa_ports),
        )
        self.children: list[_Child] = []

    # -- start -----------------------------------------------------------------

    def _endpoints_file(self) -> Path:
        """The endpoints file (``endpoints.yml``), or a derived copy in ``log_dir`` when the
        action port or the tracker database differ from it (``${VAR}`` values stay plain, so
        rasa still expands them)."""
        source = self.endpoints
        config = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        action_url = f"{self.urls.action_server}/webhook"
        changed = (config.get("action_endpoint") or {}).get("url") != action_url
        config.setdefault("action_endpoint", {})["url"] = action_url
        if self.tracker_db is not None:
            config["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(Path(self.tracker_db).resolve())}
            changed = True
        if not changed:
            return source
        derived = self.log_dir / "endpoints.stack.yml"
        derived.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return derived

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], is_ready: Callable[[], bool], append: bool = False
    ) -> _Child:
        """Start one child with its output in ``log_dir/<name>.log`` (appended to when ``append``)."""
        log_path = self.log_dir / f"{name.replace(' ', '_')}.log"
        with log_path.open("ab" if append else "wb") as log:
            popen = subprocess.Popen(
                argv,
                cwd=self.settings.REPO_ROOT,
                env=_child_env(self.settings.REPO_ROOT, {**self.env, **env}),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = _Child(name, popen, log_path, is_ready, argv=list(argv), env=dict(env))
        self.children.append(child)
        return child

    def _wait_ready(self, children: list[_Child], timeout_s: float) -> None:
        """Poll until every child is ready.

        Raises:
            StackError: a child exited, or ``timeout_s`` seconds passed.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            for child in children:
                if not child.ready:
                    self._raise_if_dead(child)
                    try:
                        child.ready = child.is_ready()
                        if child.ready:
                            child.ready_s = time.monotonic() - child.started
                    except _NeverReady as exc:
                        raise StackError(f"{exc}. ログ {child.log_path}:\n{log_tail(child.log_path)}") from None
            if all(c.ready for c in children):
                return
            if time.monotonic() > deadline:
                late = next(c for c in children if not c.ready)
                raise StackError(
                    f"{late.name} が {timeout_s:.0f} 秒以内に起動しませんでした"
                    f" / {late.name} not ready after {timeout_s:.0f} s. ログ {late.log_path}:\n"
                    f"{log_tail(late.log_path)}"
                )
            time.sleep(POLL_INTERVAL_S)

    @staticmethod
    def _raise_if_dead(child: _Child) -> None:
        """Raise :class:`StackError` (with the log tail) if ``child`` has exited."""
        code = child.popen.poll()
        if code is not None:
            raise StackError(
                f"{child.name} が終了しました (exit code {code}) / {child.name} exited."
                f" ログ {child.log_path}:\n{log_tail(child.log_path)}"
            )

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> StackUrls:
        """Start action server and rasa, wait for both, then start the gateway and wait.

        Args:
            timeout_s: seconds to wait for action server + rasa, and again for the gateway.

        Returns:
            The base URLs.

        Raises:
            StackError: missing model / rasa executable, port already in use, a child
                exited or was not ready in time. Children started so far are stopped.
        """
        if not self.model.is_file():
            raise StackError(f"モデルがありません: {self.model}(make model で学習してください)")
        if not self.rasa_bin.is_file():
            raise StackError(f"rasa が見つかりません: {self.rasa_bin}(make setup で環境を作ってください)")
        ports = [("action server", self.action_port), *(("rasa", p) for p in self.rasa_ports), ("gateway", self.gateway_port)]
        for name, port in ports:
            if port_in_use(port):
                raise StackError(f"ポート {port} は使用中です ({name}) / port {port} is already in use")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        try:
            action = self._spawn(
                "action server",
                [self.python, "-m", "rasa_sdk", "--actions", "actions", "-p", str(self.action_port)],
                # KEEP_ALIVE_TIMEOUT: Sanic (rasa-sdk) closes a new connection whose request has not
                # arrived within it (default 5 s); a busy rasa event loop can take longer between
                # connecting and writing, which failed actions under bursts (tests/test_scaleout.py).
                {"SANIC_HOST": "127.0.0.1", "SANIC_KEEP_ALIVE_TIMEOUT": "60", "CITY": settings.CITY},
                lambda: _probe(f"{self.urls.action_server}/health"),
            )
            endpoints = self._endpoints_file()
            replicas = [
                self._spawn(
                    "rasa" if number == 1 else f"rasa {number}",
                    [
                        # rasa's CLI with a cached action-response validator (bot/rasa_run.py)
                        str(self.rasa_bin.parent / "python"), "-m", "bot.rasa_run", "run", "--enable-api",
                        "--model", str(self.model),
                        "-i", "127.0.0.1", "-p", str(port),
                        "--endpoints", str(endpoints),
                        "--credentials", str(settings.REPO_ROOT / "credentials.yml"),
                    ],
                    {"CITY": settings.CITY, **tf_threads_env(settings.RASA_TF_THREADS)},
                    lambda url=url: _rasa_ready(url, self.model),
                )
                for number, (port, url) in enumerate(zip(self.rasa_ports, self.urls.rasa_replicas), start=1)
            ]
            self._wait_ready([action, *replicas], timeout_s)
            gateway = self._spawn(
                "gateway",
                [self.python, "-m", "bot", "serve", "--host", self.gateway_host, "--port", str(self.gateway_port)],
                {
                    "CITY": settings.CITY,
                    "RASA_URL": self.urls.rasa,
                    "RASA_URLS": ",".join(self.urls.rasa_replicas),
                    "ACTION_SERVER_URL": self.urls.action_server,
                    "GATEWAY_HOST": self.gateway_host,
                    "GATEWAY_PORT": str(self.gateway_port),
                },
                lambda: _probe(f"{self.urls.gateway}/healthz"),
            )
            self._wait_ready([gateway], timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.urls

    # -- run / stop --------------------------------------------------------------

    def child(self, name: str) -> _Child:
        """The running child called ``name`` (``action server``, ``rasa``, ``rasa 2`` …, ``gateway``).

        Raises:
            KeyError: no such child.
        """
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    def restart(self, name: str, timeout_s: float = READY_TIMEOUT_S) -> _Child:
        """Kill one child (SIGKILL to its process group, if still running) and start it again with
        the same command, port and environment (log appended); used by the fault tests.

        Returns:
            The new child, once ready.
        Raises:
            KeyError: no such child. StackError: it did not become ready within ``timeout_s`` s.
        """
        old = self.child(name)
        if old.popen.poll() is None:
            try:
                os.killpg(old.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        old.popen.wait()
        index = self.children.index(old)
        self.children.remove(old)
        new = self._spawn(name, old.argv, old.env, old.is_ready, append=True)
        self.children.remove(new)
        self.children.insert(index, new)
        self._wait_ready([new], timeout_s)
        return new

    def check_alive(self) -> None:
        """Raise :class:`StackError` (naming the process, with its log tail) if any child exited."""
        for child in self.children:
            self._raise_if_dead(child)

    def stop(self) -> None:
        """Stop all children, newest first: SIGTERM to each child's process group,
        SIGKILL after ``STOP_GRACE_S`` seconds. Safe to call twice."""
        for child in reversed(self.children):
            if child.popen.poll() is None:
                try:
                    os.killpg(child.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for child in reversed(self.children):
            try:
                child.popen.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(child.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.popen.wait()
        self.children.clear()


@contextmanager
def running_stack(
    *,
    gateway_port: int = 8000,
    rasa_port: int = 5005,
    action_port: int = 5055,
    model: Path | None = None,
    gateway_host: str = "127.0.0.1",
    log_dir: Path | None = None,
    tracker_db: Path | None = None,
    timeout_s: float = READY_TIMEOUT_S,
    settings: Settings | None = None,
    rasa_ports: Sequence[int] | None = None,
    endpoints: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[StackUrls]:
    """Start action server, rasa and gateway (all subprocesses); stop them on exit.

    Example (end-to-end test)::

        with running_stack(gateway_port=18000, rasa_port=15005, action_port=15055,
                           log_dir=tmp_path, tracker_db=tmp_path / "trackers.db") as urls:
            httpx.post(f"{urls.gateway}/api/chat", json={"sender_id": "e2e", "text": "こんにちは"})

    Args:
        gateway_port / rasa_port / action_port: TCP ports (all must be free).
        model: model archive (default ``models/current.tar.gz``).
        gateway_host: gateway bind address.
        log_dir: log directory (default ``logs/``); a derived ``endpoints.stack.yml``
            is written there when ``action_port`` or ``tracker_db`` differ from ``endpoints.yml``.
        tracker_db: SQLite tracker file (default: ``trackers.db`` from ``endpoints.yml``).
        timeout_s: readiness timeout, seconds (per phase).
        settings: defaults to :func:`bot.config.get_settings`.
        rasa_ports / endpoints / env: several rasa replicas with a shared-store endpoints
            file and the variables it reads (see :class:`Stack`; tests/test_scaleout.py).

    Yields:
        :class:`StackUrls` once ``GET {gateway}/healthz`` answers 200.

    Raises:
        StackError: see :meth:`Stack.start`.
    """
    stack = Stack(
        settings or get_settings(),
        gateway_host=gateway_host,
        gateway_port=gateway_port,
        rasa_port=rasa_port,
        action_port=action_port,
        model=model,
        log_dir=log_dir,
        tracker_db=tracker_db,
        rasa_ports=rasa_ports,
        endpoints=endpoints,
        env=env,
    )
    urls = stack.start(timeout_s)
    try:
        yield urls
    finally:
        stack.stop()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: unwind like Ctrl-C so the children get stopped."""
    raise KeyboardInterrupt


def serve_stack(settings: Settings | None = None, model: Path | None = None) -> int:
    """Run the stack in the foreground for ``make run`` until Ctrl-C / SIGTERM or a child dies.

    Ports come from ``RASA_URL``, ``ACTION_SERVER_URL`` and ``GATEWAY_PORT``; the gateway
    binds ``GATEWAY_HOST``. ``RASA_REPLICAS`` rasa processes run on consecutive ports from
    ``RASA_URL``'s, sharing the tracker store of endpoints.yml.

    Returns:
        Process exit code: 0 after Ctrl-C / SIGTERM, 1 on a :class:`StackError`
        (message printed to stderr).
    """
    settings = settings or get_settings()
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stack = Stack(
        settings,
        gateway_host=settings.GATEWAY_HOST,
        gateway_port=settings.GATEWAY_PORT,
        rasa_ports=[_port_of(settings.RASA_URL, 5005) + i for i in range(settings.RASA_REPLICAS)],
        action_port=_port_of(settings.ACTION_SERVER_URL, 5055),
        model=model,
    )
    try:
        print("起動中です（rasa のモデル読み込みに 1〜2 分かかることがあります）…", flush=True)
        stack.start()
        port = settings.GATEWAY_PORT
        print(f"チャットボットを起動しました: http://localhost:{port}/", flush=True)
        print(f"API: POST http://localhost:{port}/api/chat  (状態: GET http://localhost:{port}/healthz)")
        timings = ", ".join(f"{c.name} {c.ready_s:.1f} s" for c in stack.children if c.ready_s is not None)
        print(f"起動にかかった時間 / time to ready: {timings}")
        print(f"ログ: {stack.log_dir}/  停止: Ctrl-C", flush=True)
        while True:
            stack.check_alive()
            time.sleep(POLL_INTERVAL_S)
    except KeyboardInterrupt:
        print("\n停止しています…", flush=True)
        return 0
    except StackError as exc:
        print(f"起動に失敗しました / stack failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()
