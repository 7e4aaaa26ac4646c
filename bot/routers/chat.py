"""``POST /api/chat``: one citizen message in, the bot's messages out.

Privacy: the raw text and the raw sender id are never logged; logs carry
:func:`sender_hash` (first 12 hex chars of sha256) and the text length. The text passes
:func:`bot.privacy.redact` before it is sent to rasa, so rasa's tracker store never holds
phone numbers, e-mail addresses, マイナンバー or addresses (NLU reads the placeholders).
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from bot.deps import MessagesDep, RasaClientDep, RateLimiterDep, SettingsDep
from bot.privacy import redact
from bot.rasa_client import RasaUnavailable, normalize_messages

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["chat"])

SENDER_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
#: Removed from the text: control characters except tab / newline / CR (C0, DEL, C1) and lone
#: surrogates (JSON ``"\ud800"``), which cannot be encoded to UTF-8 for rasa.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def sender_hash(sender_id: str) -> str:
    """Pseudonymous id for logs: first 12 hex chars of sha256(sender_id)."""
    return hashlib.sha256(sender_id.encode("utf-8")).hexdigest()[:12]


class ChatRequest(BaseModel):
    """Request body.

    Attributes:
        sender_id: conversation id chosen by the client, 1-128 chars of ``[A-Za-z0-9_.:-]``.
        text: the citizen's message; stripped, must be non-empty. Its maximum length
            (``MAX_TEXT_CHARS``) is checked in the endpoint because it is a setting.
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sender_id": "web-3f2a9c", "text": "住民票をコンビニで取れますか"}]}
    )

    sender_id: str = Field(min_length=1, max_length=128, pattern=SENDER_ID_PATTERN)
    text: str

    @field_validator("text")
    @classmethod
    def _strip_text(cls, value: str) -> str:
        """Remove control characters / lone surrogates, strip surrounding whitespace; reject an
        empty result (error type ``text_empty``)."""
        value = _UNPRINTABLE.sub("", value).strip()
        if not value:
            raise PydanticCustomError("text_empty", "メッセージを入力してください / text must not be empty")
        return value


class Button(BaseModel):
    """A quick-reply choice; sending ``payload`` as the next ``text`` selects it."""

    title: str
    payload: str


class BotMessage(BaseModel):
    """One bot message. ``custom`` carries e.g. the procedure card
    ``{"type": "procedure", "procedure": {...}}`` (see docs/architecture.md)."""

    text: str
    buttons: list[Button] | None = None
    custom: dict[str, Any] | None = None


class ChatResponse(BaseModel):
    """Response body: the bot's messages in order (never empty)."""

    messages: list[BotMessage]


@router.post("/chat", response_model=ChatResponse, response_model_exclude_none=True)
async def chat(
    request: ChatRequest, settings: SettingsDep, rasa: RasaClientDep, messages: MessagesDep,
    limiter: RateLimiterDep,
) -> dict[str, Any]:
    """Forward the message to rasa and return its normalized reply.

    Returns:
        ``{"messages": [{"text", "buttons"?, "custom"?}, ...]}``, HTTP 200. When rasa is
        unreachable, times out (``RASA_TIMEOUT_S``), fails, or answers nothing, the
        reply is one apology message with the city's contact (the bot never goes silent).

    Raises:
        RequestValidationError: text longer than ``MAX_TEXT_CHARS`` characters (→ 422).
        HTTPException: 429 ``{"detail": <utter_rate_limited>}`` with ``Retry-After`` (seconds) when
            the sender is over ``RATE_LIMIT``; rasa is not called.
    """
    who = sender_hash(request.sender_id)
    chars = len(request.text)
    if chars > settings.MAX_TEXT_CHARS:
        raise RequestValidationError(
            [
                {
                    "type": "text_too_long",
                    "loc": ("body", "text"),
                    "msg": f"メッセージは{settings.MAX_TEXT_CHARS}文字以内で入力してください"
                    f" / text must be at most {settings.MAX_TEXT_CHARS} characters",
                }
            ]
        )
    logger.info("chat sender=%s chars=%d", who, chars)
    if not await limiter.hit("web", request.sender_id):  # per-sender rate limit (bot/ratelimit.py)
        logger.warning("chat sender=%s over the rate limit: 429", who)
        retry_after = await limiter.retry_after_s("web", request.sender_id)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail=messages.rate_limited,
                            headers={"Retry-After": str(retry_after)})
    try:
        reply = normalize_messages(await rasa.send_message(request.sender_id, redact(request.text)))
    except RasaUnavailable:
        logger.exception("rasa failed; answering the apology (sender=%s chars=%d)", who, chars)
        reply = []
    else:
        if not reply:
            logger.warning("rasa answered no message; answering the apology (sender=%s chars=%d)", who, chars)
    if not reply:
        reply = [{"text": messages.service_unavailable}]
    return {"messages": reply}
