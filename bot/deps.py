"""FastAPI dependencies. Everything is built once in the app lifespan (``bot.main``)
and stored on ``app.state``; these functions only hand it out per request.

They are ``async def`` because they do no blocking work: FastAPI runs a plain ``def`` dependency
in its thread pool, one thread hop per dependency and request (4 per ``/api/chat`` message, seen
as ``run_in_threadpool`` in a py-spy profile of the gateway under ``python -m bot.bench``).
``get_index`` stays ``def``: its first call builds the search index, which must not block the
event loop."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from bot.config import Settings
from bot.messages import GatewayMessages
from bot.ratelimit import SenderRateLimiter
from bot.rasa_client import RasaClient
from procedures.catalogue import Catalogue
from procedures.search import ProcedureIndex


async def get_app_settings(request: Request) -> Settings:
    """The :class:`Settings` the app was created with."""
    return request.app.state.settings


async def get_http_client(request: Request) -> httpx.AsyncClient:
    """The lifespan-wide async HTTP client (for health probes)."""
    return request.app.state.http


async def get_rasa_client(request: Request) -> RasaClient:
    """The lifespan-wide :class:`RasaClient`."""
    return request.app.state.rasa


async def get_messages(request: Request) -> GatewayMessages:
    """Gateway texts (apology + city profile) loaded at startup."""
    return request.app.state.messages


async def get_rate_limiter(request: Request) -> SenderRateLimiter:
    """The per-sender rate limiter (``RATE_LIMIT``) shared by ``/api/chat`` and LINE."""
    return request.app.state.rate_limiter


async def get_catalogue(request: Request) -> Catalogue:
    """The city's procedures catalogue, loaded at startup."""
    return request.app.state.catalogue


def get_index(request: Request) -> ProcedureIndex:
    """The search index over the catalogue, built on first use and then kept on ``app.state``."""
    if request.app.state.index is None:
        request.app.state.index = ProcedureIndex(request.app.state.catalogue)
    return request.app.state.index


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
HttpClientDep = Annotated[httpx.AsyncClient, Depends(get_http_client)]
RasaClientDep = Annotated[RasaClient, Depends(get_rasa_client)]
MessagesDep = Annotated[GatewayMessages, Depends(get_messages)]
RateLimiterDep = Annotated[SenderRateLimiter, Depends(get_rate_limiter)]
CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
IndexDep = Annotated[ProcedureIndex, Depends(get_index)]
