"""``GET /healthz``: readiness of rasa and the action server."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from bot.deps import HttpClientDep, RasaClientDep, SettingsDep
from bot.rasa_client import action_server_ready

router = APIRouter(tags=["health"])


class RasaHealth(BaseModel):
    """Rasa readiness: ``ready`` when ``/status`` answers 200 with a loaded model."""

    ready: bool
    model: str | None


class ActionServerHealth(BaseModel):
    """Action server readiness: ``ready`` when ``/health`` answers 200."""

    ready: bool


class Health(BaseModel):
    """Body of ``GET /healthz``; ``status`` is ``ok`` only when both backends are ready."""

    status: str
    rasa: RasaHealth
    action_server: ActionServerHealth


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "rasa or the action server is not ready"}},
)
async def healthz(
    response: Response, settings: SettingsDep, rasa: RasaClientDep, http: HttpClientDep
) -> Health:
    """Probe both backends concurrently (2 s timeout each).

    Returns:
        ``{"status": "ok"|"unavailable", "rasa": {"ready", "model"}, "action_server": {"ready"}}``
        with HTTP 200 when both are ready, 503 otherwise. Never raises.
    """
    model, actions_ready = await asyncio.gather(
        rasa.loaded_model(), action_server_ready(http, settings.ACTION_SERVER_URL)
    )
    ok = model is not None and actions_ready
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if ok else "unavailable",
        rasa=RasaHealth(ready=model is not None, model=model),
        action_server=ActionServerHealth(ready=actions_ready),
    )
