"""``POST /line/webhook``: the LINE Messaging API webhook (LINE公式アカウントの Webhook URL).

Answers at once; the events are handled in background tasks by :class:`bot.line.service.LineService`
(one reply call per event). Status codes:

- 200 ``{"status": "ok"}``: signature valid; events accepted (also for LINE's empty 「検証」 call).
- 401: ``X-Line-Signature`` missing or wrong; nothing is processed.
- 400: signed but not a LINE webhook body (not UTF-8 JSON with ``events``).
- 503: LINE is not configured (``LINE_CHANNEL_SECRET`` / ``LINE_CHANNEL_ACCESS_TOKEN`` empty).

The router's lifespan (merged into the app's by ``include_router``, runs after the app's own, so
``app.state.settings`` / ``messages`` / ``rasa`` / ``rate_limiter`` exist) opens the line-bot-sdk
async client against ``LINE_API_BASE_URL``, and on shutdown waits for running event tasks
(at most ``SHUTDOWN_DRAIN_S``) before closing it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, HTTPException, Request, status
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration

from bot.line.service import BadWebhookBody, InvalidSignatureError, LineService
from procedures.answer import Templates

logger = logging.getLogger(__name__)

#: How long shutdown waits for event tasks still running, seconds.
SHUTDOWN_DRAIN_S = 10.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build ``app.state.line`` (a :class:`LineService`, or None when LINE is not configured)."""
    settings = app.state.settings
    app.state.line = None
    if not settings.line_enabled:
        logger.info("LINE webhook off: LINE_CHANNEL_SECRET / LINE_CHANNEL_ACCESS_TOKEN not set")
        yield
        return
    assert settings.DOMAIN_FILE is not None  # derived in Settings
    templates = Templates.from_domain_file(settings.DOMAIN_FILE)
    configuration = Configuration(host=settings.LINE_API_BASE_URL, access_token=settings.LINE_CHANNEL_ACCESS_TOKEN)
    api_client = AsyncApiClient(configuration)
    try:
        app.state.line = LineService(
            settings, AsyncMessagingApi(api_client), app.state.rasa, app.state.messages, templates,
            app.state.rate_limiter,
        )
        logger.info("LINE webhook on: api=%s", settings.LINE_API_BASE_URL)
        yield
        if not await app.state.line.drain(SHUTDOWN_DRAIN_S):
            logger.warning("LINE: %d event task(s) still running at shutdown", app.state.line.pending)
    finally:
        await api_client.close()


router = APIRouter(prefix="/line", tags=["line"], lifespan=lifespan)


@router.post("/webhook", status_code=status.HTTP_200_OK)
async def webhook(
    request: Request,
    x_line_signature: Annotated[str | None, Header(alias="X-Line-Signature")] = None,
) -> dict[str, str]:
    """Verify the signature, start handling the events, and answer 200 at once.

    Raises:
        HTTPException: 503 (LINE not configured), 401 (signature missing or wrong),
            400 (signed body that is not a LINE webhook).
    """
    service: LineService | None = request.app.state.line
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="LINE 連携が設定されていません / LINE is not configured")
    if not x_line_signature:
        logger.warning("LINE webhook without X-Line-Signature: rejected")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="X-Line-Signature がありません / missing X-Line-Signature")
    body = await request.body()
    try:
        events = service.parse(body, x_line_signature)
    except InvalidSignatureError:
        logger.warning("LINE webhook with a wrong X-Line-Signature: rejected (%d bytes)", len(body))
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="X-Line-Signature が正しくありません / invalid X-Line-Signature") from None
    except BadWebhookBody as exc:
        logger.warning("LINE webhook body rejected: %s", exc)
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            detail=f"LINE の Webhook の形式ではありません / not a LINE webhook body: {exc}") from None
    started = service.dispatch(events)
    logger.info("LINE webhook: %d event(s), %d started", len(events), started)
    return {"status": "ok"}
