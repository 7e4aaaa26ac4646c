"""Async client for the private rasa server(s), and normalization of its REST output.

One :class:`httpx.AsyncClient` is created per app lifespan (see ``bot.main``) and
shared by :class:`RasaClient` and the health checks.

Scale-out: with several rasa replicas (``RASA_URLS``) each conversation goes to the replica
that :func:`rank_replicas` puts first for its sender id, so one conversation's messages are
handled by one process in order while the gateway itself keeps no state. When that replica
refuses the connection, the message fails over to the next one in the ranking; this is
consistent only because the replicas share the tracker store (PostgreSQL) and the lock store
(Redis), see ``deploy/endpoints.postgres.yml`` and ``docs/deploy.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import httpx

logger = logging.getLogger(__name__)

#: Timeout of each readiness probe (``/status``, ``/health``), seconds.
HEALTH_TIMEOUT_S = 2.0


class RasaUnavailable(RuntimeError):
    """Rasa could not answer: connection error, timeout, non-200 or a malformed body.

    The message never contains the citizen's text or sender id.
    """


def rank_replicas(sender_id: str, replicas: Sequence[str]) -> list[str]:
    """Order rasa replicas for one conversation by rendezvous hashing (最高ランダム重み法).

    Each replica gets the weight ``blake2b(replica + NUL + sender_id)`` (64 bits); the highest
    weight serves the conversation, the next ones are its fail-over order. The result depends
    only on the sender id and the set of replica URLs (not on their order, the process or
    the time), so every gateway instance routes a conversation to the same replica, and
    adding or removing one replica moves only about 1/N of the conversations.

    Source: D. G. Thaler and C. V. Ravishankar, "Using name-based mappings to increase hit
    rates", IEEE/ACM Transactions on Networking 6(1), 1998 (highest random weight hashing).

    Args:
        sender_id: conversation id (rasa tracker key).
        replicas: rasa base URLs, e.g. ``["http://10.0.0.5:5005", "http://10.0.0.6:5005"]``.

    Returns:
        The same URLs, the replica serving this conversation first.
    """

    def weight(replica: str) -> int:
        digest = hashlib.blake2b(f"{replica}\x00{sender_id}".encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return sorted(replicas, key=lambda replica: (weight(replica), replica), reverse=True)


class RasaClient:
    """Talks to rasa's REST channel (``POST {RASA_URL}/webhooks/rest/webhook``).

    Args:
        http: the lifespan-wide async HTTP client.
        base_url: rasa base URL, e.g. ``http://127.0.0.1:5005`` (no trailing slash), or a
            sequence of replica base URLs (``Settings.rasa_replicas``); a conversation is routed
            by :func:`rank_replicas`.
        timeout_s: timeout of one webhook call, seconds (connect + read).

    Raises:
        ValueError: an empty sequence of URLs.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str | Sequence[str], timeout_s: float) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("at least one rasa URL is needed")
        self._http = http
        #: Every replica, in the configured order (``RASA_URLS``).
        self.base_urls: tuple[str, ...] = tuple(url.rstrip("/") for url in urls)
        #: The first replica (the only one without scale-out).
        self.base_url = self.base_urls[0]
        self.timeout_s = timeout_s

    def replicas_for(self, sender_id: str) -> list[str]:
        """Replicas in the order tried for this conversation (see :func:`rank_replicas`)."""
        if len(self.base_urls) == 1:
            return list(self.base_urls)
        return rank_replicas(sender_id, self.base_urls)

    async def send_message(self, sender_id: str, text: str) -> list[dict[str, Any]]:
        """Send one citizen message and return rasa's raw reply messages.

        Args:
            sender_id: conversation id (rasa tracker key).
            text: the citizen's message.

        Returns:
            Rasa REST messages, e.g. ``[{"recipient_id": "...", "text": "...",
            "buttons": [...]}, {"recipient_id": "...", "custom": {...}}]`` (may be empty).

        The message goes to the conversation's replica (:meth:`replicas_for`); only when a
        replica cannot be connected to (refused / connect timeout: the message never reached
        it) is the next replica tried. A read timeout or an error status is not retried,
        since rasa may already have processed the message.

        Raises:
            RasaUnavailable: connection error or timeout (on the last replica tried), HTTP
                status other than 200, or a body that is not a JSON list.
        """
        replicas = self.replicas_for(sender_id)
        for position, base_url in enumerate(replicas):
            url = f"{base_url}/webhooks/rest/webhook"
            try:
                response = await self._http.post(
                    url, json={"sender": sender_id, "message": text}, timeout=self.timeout_s
                )
            except httpx.HTTPError as exc:
                not_connected = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if not_connected and position + 1 < len(replicas):
                    logger.warning("rasa replica %s unreachable (%s); failing over to %s",
                                   base_url, type(exc).__name__, replicas[position + 1])
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise RasaUnavailable(f"rasa timed out after {self.timeout_s} s ({url})") from exc
                raise RasaUnavailable(f"rasa is unreachable ({url}): {type(exc).__name__}: {exc}") from exc
            break
        if response.status_code != 200:
            raise RasaUnavailable(f"rasa answered HTTP {response.status_code} ({url})")
        try:
            body = response.json()
        except ValueError as exc:
            raise RasaUnavailable(f"rasa answered a non-JSON body ({url})") from exc
        if not isinstance(body, list):
            raise RasaUnavailable(f"rasa answered {type(body).__name__}, expected a list ({url})")
        return [m for m in body if isinstance(m, dict)]

    async def replica_models(self, timeout_s: float = HEALTH_TIMEOUT_S) -> list[str | None]:
        """Probe every replica concurrently (:meth:`loaded_model`).

        Returns:
            One entry per replica, in the order of :attr:`base_urls`: its model file, or None
            when it is not ready. Never raises for network errors.
        """
        return list(await asyncio.gather(*(self.loaded_model(timeout_s, url) for url in self.base_urls)))

    async def loaded_model(self, timeout_s: float = HEALTH_TIMEOUT_S, base_url: str | None = None) -> str | None:
        """Return the loaded model file from ``GET {RASA_URL}/status``, or None if not ready.

        Args:
            timeout_s: probe timeout, seconds.
            base_url: the replica to probe (default: the first, :attr:`base_url`).

        Returns:
            ``model_file`` (non-empty) when rasa answers 200 with a loaded model, else None.
            Never raises for network errors.
        """
        try:
            response = await self._http.get(f"{base_url or self.base_url}/status", timeout=timeout_s)
            if response.status_code != 200:
                return None
            model = response.json().get("model_file")
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return model if isinstance(model, str) and model else None


async def action_server_ready(
    http: httpx.AsyncClient, base_url: str, timeout_s: float = HEALTH_TIMEOUT_S
) -> bool:
    """Probe ``GET {ACTION_SERVER_URL}/health``.

    Args:
        http: the lifespan-wide async HTTP client.
        base_url: action server base URL, e.g. ``http://127.0.0.1:5055``.
        timeout_s: probe timeout, seconds.

    Returns:
        True when it answers HTTP 200. Never raises for network errors.
    """
    try:
        response = await http.get(f"{base_url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _buttons(raw: Any) -> list[dict[str, str]]:
    """Keep ``title`` and ``payload`` of well-formed rasa buttons."""
    if not isinstance(raw, list):
        return []
    return [
        {"title": str(b["title"]), "payload": str(b.get("payload", b["title"]))}
        for b in raw
        if isinstance(b, dict) and b.get("title") is not None
    ]


def normalize_messages(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn rasa REST messages into the gateway API shape.

    Rules: ``recipient_id`` is dropped; ``buttons`` keep ``title``/``payload``;
    a custom-only message (``custom`` without text/buttons, as rasa sends after
    ``utter_message(text=..., json_message=...)``) is merged into the preceding
    output message if that one has no ``custom`` yet, else it becomes
    ``{"text": "", "custom": ...}``; image/attachment-only messages are dropped.

    Args:
        raw: rasa REST messages, e.g. ``[{"recipient_id": "u", "text": "t",
            "buttons": [{"title": "a", "payload": "/x"}]}, {"recipient_id": "u", "custom": {...}}]``.

    Returns:
        ``[{"text": str, "buttons": [{"title", "payload"}]?, "custom": dict?}, ...]``
        (``buttons``/``custom`` present only when non-empty).
    """
    out: list[dict[str, Any]] = []
    for message in raw:
        text = message.get("text")
        text = text if isinstance(text, str) else ""
        buttons = _buttons(message.get("buttons"))
        custom = message.get("custom")
        custom = custom if isinstance(custom, dict) and custom else None

        if not text and not buttons:
            if custom is None:
                continue  # image / attachment / empty: ignored
            if out and "custom" not in out[-1]:
                out[-1]["custom"] = custom
            else:
                out.append({"text": "", "custom": custom})
            continue

        item: dict[str, Any] = {"text": text}
        if buttons:
            item["buttons"] = buttons
        if custom is not None:
            item["custom"] = custom
        out.append(item)
    return out
