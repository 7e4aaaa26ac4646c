"""FastAPI application factory for the gateway (the one public port).

Run with ``python -m bot serve`` or ``uvicorn --factory bot.main:create_app``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot.config import Settings, get_settings
from bot.messages import load_gateway_messages
from bot.middleware import add_middlewares
from bot.ratelimit import SenderRateLimiter
from bot.rasa_client import RasaClient
from bot.routers import chat, furigana, health, line, procedures, web
from procedures.catalogue import load_catalogue

logger = logging.getLogger(__name__)

#: Clear messages (Japanese / English) for pydantic error types.
_ERROR_MESSAGES: dict[str, str] = {
    "missing": "必須項目です / field required",
    "string_type": "文字列で指定してください / must be a string",
    "model_attributes_type": 'JSON オブジェクト {"sender_id": ..., "text": ...} を送ってください'
    " / body must be a JSON object",
    "dict_type": 'JSON オブジェクト {"sender_id": ..., "text": ...} を送ってください / body must be a JSON object',
}
_SENDER_ID_MESSAGE = (
    "sender_id は 1〜128 文字の英数字と _ . : - で指定してください"
    " / sender_id must be 1-128 characters of A-Z a-z 0-9 _ . : -"
)


def _clean_error(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error → ``{"loc", "msg", "type"}`` with a clear message (no echoed input)."""
    loc = list(error.get("loc", ()))
    kind = str(error.get("type", "value_error"))
    msg = _ERROR_MESSAGES.get(kind, str(error.get("msg", "invalid value")))
    if loc and loc[-1] == "sender_id" and kind not in ("missing", "string_type"):
        msg = _SENDER_ID_MESSAGE
    return {"loc": loc, "msg": msg, "type": kind}


async def _validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Invalid JSON → 400 ``{"detail": str}``; other validation errors → 422 ``{"detail": [...]}``."""
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        reason = (bad_json.get("ctx") or {}).get("error")
        position = bad_json.get("loc", ("body", None))[-1]
        detail = "リクエストの JSON が不正です / invalid JSON body"
        if reason:
            detail += f": {reason} (position {position})"
        return JSONResponse(status_code=status.HTTP_400_BAD_REQUEST, content={"detail": detail})
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        content={"detail": [_clean_error(e) for e in errors]},
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app.

    Args:
        settings: configuration; defaults to :func:`bot.config.get_settings`.

    Returns:
        The FastAPI app. Its lifespan loads the gateway messages (``domain.yml`` +
        ``city.yml``) and the catalogue, opens one ``httpx.AsyncClient`` and freezes what is
        loaded (``gc.freeze()``; unfrozen on shutdown).

    Raises:
        bot.messages.MessagesError: at startup (lifespan), when ``domain.yml`` or
            ``city.yml`` is missing or lacks ``utter_service_unavailable`` / required keys.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Load messages and open the shared HTTP client; close it on shutdown."""
        assert settings.DOMAIN_FILE is not None  # derived in Settings
        app.state.settings = settings
        app.state.messages = load_gateway_messages(settings.DOMAIN_FILE, settings.city_file)
        app.state.catalogue = load_catalogue(settings.CITY, settings.city_file.parent.parent)
        app.state.index = None  # built on first use (bot.deps.get_index)
        app.state.rate_limiter = SenderRateLimiter(settings.RATE_LIMIT, settings.RATE_LIMIT_STORAGE_URI)
        async with httpx.AsyncClient(timeout=settings.RASA_TIMEOUT_S) as http:
            app.state.http = http
            app.state.rasa = RasaClient(http, settings.rasa_replicas, settings.RASA_TIMEOUT_S)
            # Full garbage collections would otherwise walk everything loaded so far (~190,000
            # objects, ~0.1 s of stall each); frozen objects are skipped by them (bot.rasa_run does
            # the same for rasa: https://docs.python.org/3/library/gc.html#gc.freeze).
            gc.collect()
            gc.freeze()
            logger.info("gateway ready: city=%s rasa=%s", settings.CITY, ",".join(settings.rasa_replicas))
            try:
                yield
            finally:
                gc.unfreeze()  # on shutdown: what the app held becomes collectable again

    app = FastAPI(
        title=f"{settings.CITY} 手続き案内チャットボット API",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error_handler)  # type: ignore[arg-type]
    app.include_router(chat.router)
    app.include_router(health.router)
    app.include_router(procedures.router)
    app.include_router(furigana.router)
    app.include_router(web.router)
    app.include_router(line.router)  # its lifespan (LINE client) runs inside the one above
    add_middlewares(app, settings)  # request size limit (413) and CORS_ORIGINS
    return app
