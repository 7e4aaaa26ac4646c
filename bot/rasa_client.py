"""Async client for the private rasa server, and normalization of its REST output.

One :class:`httpx.AsyncClient` is created per app lifespan (see ``bot.main``) and
shared by :class:`RasaClient` and the health checks.
"""

from __future__ import annotations

from typing import Any

import httpx

#: Timeout of each readiness probe (``/status``, ``/health``), seconds.
HEALTH_TIMEOUT_S = 2.0


class RasaUnavailable(RuntimeError):
    """Rasa could not answer: connection error, timeout, non-200 or a malformed body.

    The message never contains the citizen's text or sender id.
    """


class RasaClient:
    """Talks to rasa's REST channel (``POST {RASA_URL}/webhooks/rest/webhook``).

    Args:
        http: the lifespan-wide async HTTP client.
        base_url: rasa base URL, e.g. ``http://127.0.0.1:5005`` (no trailing slash).
        timeout_s: timeout of one webhook call, seconds (connect + read).
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, timeout_s: float) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    async def send_message(self, sender_id: str, text: str) -> list[dict[str, Any]]:
        """Send one citizen message and return rasa's raw reply messages.

        Args:
            sender_id: conversation id (rasa tracker key).
            text: the citizen's message.

        Returns:
            Rasa REST messages, e.g. ``[{"recipient_id": "...", "text": "...",
            "buttons": [...]}, {"recipient_id": "...", "custom": {...}}]`` (may be empty).

        Raises:
            RasaUnavailable: connection error, timeout, HTTP status other than 200,
                or a body that is not a JSON list.
        """
        url = f"{self.base_url}/webhooks/rest/webhook"
        try:
            response = await self._http.post(
                url, json={"sender": sender_id, "message": text}, timeout=self.timeout_s
            )
        except httpx.TimeoutException as exc:
            raise RasaUnavailable(f"rasa timed out after {self.timeout_s} s ({url})") from exc
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"rasa is unreachable ({url}): {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise RasaUnavailable(f"rasa answered HTTP {response.status_code} ({url})")
        try:
            body = response.json()
        except ValueError as exc:
            raise RasaUnavailable(f"rasa answered a non-JSON body ({url})") from exc
        if not isinstance(body, list):
            raise RasaUnavailable(f"rasa answered {type(body).__name__}, expected a list ({url})")
        return [m for m in body if isinstance(m, dict)]

    async def loaded_model(self, timeout_s: float = HEALTH_TIMEOUT_S) -> str | None:
        """Return the loaded model file from ``GET {RASA_URL}/status``, or None if not ready.

        Args:
            timeout_s: probe timeout, seconds.

        Returns:
            ``model_file`` (non-empty) when rasa answers 200 with a loaded model, else None.
            Never raises for network errors.
        """
        try:
            response = await self._http.get(f"{self.base_url}/status", timeout=timeout_s)
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
