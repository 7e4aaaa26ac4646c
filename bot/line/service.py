"""LINE webhook events → rasa → one reply call per event (LINE イベントの処理).

Flow (``POST /line/webhook``, see :mod:`bot.routers.line`):

1. :meth:`LineService.parse` checks ``X-Line-Signature`` (base64 HMAC-SHA256 of the raw body with
   the channel secret, line-bot-sdk's :class:`~linebot.v3.WebhookParser`) and parses the events.
2. :meth:`LineService.dispatch` drops events whose ``webhookEventId`` was already seen (LINE
   redelivers an event when our 200 did not arrive) and starts one background task per event, so
   the webhook answers 200 at once. Tasks are kept in a set until done; their errors are logged.
3. :meth:`LineService.handle` answers one event:
   - text message → rasa (``RasaClient.send_message``, sender id = ``pseudonymize(userId, key,
     prefix="line-")``; the text passes :func:`bot.privacy.redact` first);
   - postback (a tapped quick reply) → its ``data`` (a Rasa payload) is sent to rasa as text;
   - follow (友だち追加) → ``utter_line_follow``; sticker / image / video / audio / file / location
     → ``utter_non_text``; a text longer than ``MAX_TEXT_CHARS`` → ``utter_text_too_long``;
   - over ``RATE_LIMIT`` → ``utter_rate_limited`` without calling rasa;
   - rasa down, timing out or answering nothing → ``utter_service_unavailable`` (apology with the
     city's contact); any other failure → the same apology, logged.
   Other events (unfollow, join, standby mode, …) get no reply.
4. :meth:`LineService.reply` sends ONE ``POST /v2/bot/message/reply`` with at most 5 messages
   (the reply token is single-use), retrying HTTP 429 / 5xx, timeouts and connection errors with
   exponential backoff (tenacity), and logs a failure; it never raises.

Privacy: raw LINE user ids are never logged, sent to rasa or stored; logs carry
:func:`bot.privacy.log_id` of the pseudonymous sender id. Message texts are never logged.

Scale-out: the ``webhookEventId`` cache is in memory, per process (bounded: 100 000 ids, TTL
``LINE_DEDUP_TTL_S``). With several gateway processes a redelivery may reach another process; a
shared store (e.g. Redis ``SET key NX EX ttl``) would be needed there. Rate-limit counters can be
shared already (``RATE_LIMIT_STORAGE_URI``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from cachetools import TTLCache
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import AsyncMessagingApi, ReplyMessageRequest
from linebot.v3.messaging.exceptions import ApiException
from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
)
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from bot.config import Settings
from bot.messages import GatewayMessages
from bot.privacy import log_id, pseudonymize, redact
from bot.line.render import to_line_messages
from bot.ratelimit import SenderRateLimiter
from bot.rasa_client import RasaClient, RasaUnavailable, normalize_messages
from procedures.answer import Templates

logger = logging.getLogger(__name__)

#: At most this many webhookEventIds are remembered (oldest dropped first).
DEDUP_MAX_IDS = 100_000
#: Longest wait between two reply attempts, seconds.
MAX_BACKOFF_S = 8.0
#: Prefix of LINE sender ids sent to rasa (keeps them apart from web sender ids).
SENDER_PREFIX = "line-"

__all__ = ["BadWebhookBody", "InvalidSignatureError", "LineService"]


class BadWebhookBody(ValueError):
    """The body had a valid signature but is not a LINE webhook (not UTF-8 JSON with ``events``)."""


def _retryable(exc: BaseException) -> bool:
    """HTTP 429 and 5xx, timeouts and connection errors are worth another try; other 4xx are not
    (e.g. 400 "Invalid reply token": the token is used up or expired)."""
    if isinstance(exc, ApiException):
        return exc.status == 429 or (exc.status or 0) >= 500
    return isinstance(exc, (asyncio.TimeoutError, aiohttp.ClientError))


def _describe(exc: BaseException) -> str:
    """A log-safe description of a LINE API failure (status and reason, never request data)."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    return type(exc).__name__


class LineService:
    """Handles LINE webhook events for one app (built in the LINE router's lifespan).

    Args:
        settings: ``LINE_CHANNEL_SECRET`` (signature), ``PSEUDONYM_KEY`` (sender ids; the channel
            secret when empty), ``MAX_TEXT_CHARS``, ``LINE_API_TIMEOUT_S``, ``LINE_RETRY_ATTEMPTS``,
            ``LINE_RETRY_BACKOFF_S``, ``LINE_DEDUP_TTL_S``.
        api: line-bot-sdk v3 async Messaging API client (``Configuration(host=LINE_API_BASE_URL,
            access_token=LINE_CHANNEL_ACCESS_TOKEN)``).
        rasa: the gateway's rasa client.
        messages: gateway texts (apology, greeting, non-text, rate-limited, too long).
        templates: domain.yml fragments for the Flex card.
        limiter: the per-sender rate limiter shared with ``/api/chat``.
    """

    def __init__(
        self,
        settings: Settings,
        api: AsyncMessagingApi,
        rasa: RasaClient,
        messages: GatewayMessages,
        templates: Templates,
        limiter: SenderRateLimiter,
    ) -> None:
        self.settings = settings
        self.api = api
        self.rasa = rasa
        self.messages = messages
        self.templates = templates
        self.limiter = limiter
        self.parser = WebhookParser(settings.LINE_CHANNEL_SECRET)
        self._key = settings.PSEUDONYM_KEY or settings.LINE_CHANNEL_SECRET
        self._seen: TTLCache[str, bool] = TTLCache(maxsize=DEDUP_MAX_IDS, ttl=settings.LINE_DEDUP_TTL_S)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- webhook ---------------------------------------------------------------------------------

    def parse(self, body: bytes, signature: str) -> list[Event]:
        """Verify the signature over the raw ``body`` and parse its events.

        Raises:
            InvalidSignatureError: the signature does not match (nothing is parsed).
            BadWebhookBody: signed, but not UTF-8 JSON with an ``events`` list.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadWebhookBody("body is not UTF-8") from exc
        if not self.parser.signature_validator.validate(text, signature):
            raise InvalidSignatureError("invalid X-Line-Signature")
        try:
            return list(self.parser.parse(text, signature))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadWebhookBody(f"not a LINE webhook body: {type(exc).__name__}") from exc

    def dispatch(self, events: list[Event]) -> int:
        """Start one background task per new event; return how many were started.

        Events whose ``webhookEventId`` was seen within ``LINE_DEDUP_TTL_S`` are dropped (logged).
        Must be called on the event loop (from the webhook endpoint).
        """
        started = 0
        for event in events:
            event_id = getattr(event, "webhook_event_id", None)
            if event_id:
                if event_id in self._seen:
                    redelivery = bool(getattr(getattr(event, "delivery_context", None), "is_redelivery", False))
                    logger.info("LINE event %s already handled; dropped (redelivery=%s)", event_id, redelivery)
                    continue
                self._seen[event_id] = True
            task = asyncio.create_task(self.handle(event), name=f"line-event-{event_id or started}")
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
            started += 1
        return started

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("LINE event task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def pending(self) -> int:
        """Number of event tasks still running."""
        return len(self._tasks)

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every event task started so far is done (at most ``timeout_s`` seconds).

        Returns:
            True when all finished in time.
        """
        pending = set(self._tasks)
        if not pending:
            return True
        _, not_done = await asyncio.wait(pending, timeout=timeout_s)
        return not not_done

    # -- one event -------------------------------------------------------------------------------

    def sender_id(self, event: Event) -> str | None:
        """Pseudonymous rasa sender id ``line-<32 hex>`` of the event's user (or group / room)."""
        source = getattr(event, "source", None)
        raw = (getattr(source, "user_id", None) or getattr(source, "group_id", None)
               or getattr(source, "room_id", None))
        return pseudonymize(raw, self._key, prefix=SENDER_PREFIX) if raw else None

    @staticmethod
    def _text(text: str) -> list[dict[str, Any]]:
        return [{"type": "text", "text": text}]

    async def handle(self, event: Event) -> None:
        """Answer one event with one reply call (see the module docstring). Never raises."""
        kind = type(event).__name__
        token = getattr(event, "reply_token", None)
        mode = getattr(event, "mode", None)  # EventMode enum: "active" or "standby" (another channel answers)
        if getattr(mode, "value", mode) == "standby":
            logger.info("LINE %s in standby mode: not answered", kind)
            return
        sender = self.sender_id(event)
        who = log_id(sender) if sender else "-"
        try:
            messages = await self._answer(event, sender, who)
        except Exception:  # noqa: BLE001 - the citizen must still get an answer
            logger.exception("LINE %s failed; answering the apology (sender=%s)", kind, who)
            messages = self._text(self.messages.service_unavailable)
        if not messages or not token:
            logger.debug("LINE %s: nothing to reply (sender=%s)", kind, who)
            return
        await self.reply(token, messages, who=who)

    async def _answer(self, event: Event, sender: str | None, who: str) -> list[dict[str, Any]] | None:
        """The LINE messages answering ``event``; None for events that get no reply."""
        kind = type(event).__name__
        if isinstance(event, FollowEvent):
            logger.info("LINE follow (sender=%s)", who)
            return self._text(self.messages.line_follow)
        if not isinstance(event, (MessageEvent, PostbackEvent)) or sender is None:
            logger.info("LINE %s ignored", kind)
            return None
        if not await self.limiter.hit("line", sender):
            logger.warning("LINE sender over the rate limit; answering the polite message (sender=%s)", who)
            return self._text(self.messages.rate_limited)
        if isinstance(event, PostbackEvent):
            data = (event.postback.data or "").strip()
            logger.info("LINE postback sender=%s chars=%d", who, len(data))
            return await self._ask_rasa(sender, data, who) if data else None
        if not isinstance(event.message, TextMessageContent):
            logger.info("LINE %s message (sender=%s): non-text answer", event.message.type, who)
            return self._text(self.messages.non_text)
        text = (event.message.text or "").strip()
        if len(text) > self.settings.MAX_TEXT_CHARS:
            logger.info("LINE text too long (sender=%s chars=%d)", who, len(text))
            return self._text(self.messages.text_too_long)
        if not text:
            return self._text(self.messages.non_text)
        logger.info("LINE text sender=%s chars=%d", who, len(text))
        return await self._ask_rasa(sender, redact(text), who)

    async def _ask_rasa(self, sender: str, text: str, who: str) -> list[dict[str, Any]]:
        """Rasa's answer as LINE messages; the apology when rasa fails or answers nothing."""
        try:
            reply = normalize_messages(await self.rasa.send_message(sender, text))
        except RasaUnavailable:
            logger.exception("rasa failed; answering the apology on LINE (sender=%s)", who)
            reply = []
        messages = to_line_messages(reply, self.templates, self.messages.city.name) if reply else []
        if not messages:
            if reply == []:
                logger.warning("rasa answered nothing for LINE; answering the apology (sender=%s)", who)
            return self._text(self.messages.service_unavailable)
        return messages

    # -- reply -----------------------------------------------------------------------------------

    async def reply(self, reply_token: str, messages: list[dict[str, Any]], who: str = "-") -> bool:
        """Send ``messages`` (≤ 5 LINE message dicts) with ONE reply call, retrying transient errors.

        Retries (``LINE_RETRY_ATTEMPTS`` attempts in all, waits ``LINE_RETRY_BACKOFF_S`` · 2^n s, at
        most 8 s) on HTTP 429 / 5xx, timeouts (``LINE_API_TIMEOUT_S``) and connection errors; each
        retry and the final failure are logged without user ids or texts.

        Returns:
            True when LINE accepted the reply; False when it failed (logged). Never raises.
        """
        try:
            request = ReplyMessageRequest.from_dict({"replyToken": reply_token, "messages": messages[:5]})
        except Exception:  # noqa: BLE001 - a bug in rendering must not kill the task silently
            logger.exception("LINE reply could not be built (sender=%s, %d messages)", who, len(messages))
            return False

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            logger.warning("LINE reply attempt %d failed (%s); retrying in %.2f s (sender=%s)",
                           state.attempt_number, _describe(exc) if exc else "?", wait, who)

        settings = self.settings
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(max(1, settings.LINE_RETRY_ATTEMPTS)),
                wait=wait_exponential(multiplier=settings.LINE_RETRY_BACKOFF_S, max=MAX_BACKOFF_S),
                retry=retry_if_exception(_retryable),
                before_sleep=log_retry,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    await self.api.reply_message(request, _request_timeout=settings.LINE_API_TIMEOUT_S)
        except (ApiException, asyncio.TimeoutError, aiohttp.ClientError) as exc:
            logger.error("LINE reply failed after %d attempt(s): %s (sender=%s)",
                         attempts, _describe(exc), who)
            return False
        logger.info("LINE reply sent: %d message(s) (sender=%s)", len(request.messages), who)
        return True
