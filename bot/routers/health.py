"""``GET /healthz``: readiness of rasa (every replica) and the action server."""

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


class RasaReplicaHealth(BaseModel):
    """One rasa replica of ``RASA_URLS``: ``replica`` is its 1-based position there (the URL
    itself is private and not shown on this public endpoint)."""

    replica: int
    ready: bool
    model: str | None


class ActionServerHealth(BaseModel):
    """Action server readiness: ``ready`` when ``/health`` answers 200."""

    ready: bool


class Health(BaseModel):
    """Body of ``GET /healthz``; ``status`` is ``ok`` only when both backends are ready.

    With several rasa replicas (``RASA_URLS``), ``rasa_replicas`` lists each one; ``rasa.ready``
    is true when at least one replica is ready (conversations of a down replica fail over), and
    ``status`` is ``degraded`` (still HTTP 200) while some but not all replicas are ready.
    """

    status: str
    rasa: RasaHealth
    action_server: ActionServerHealth
    rasa_replicas: list[RasaReplicaHealth] | None = None


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "rasa or the action server is not ready"}},
    response_model_exclude_unset=True,
)
async def healthz(
    response: Response, settings: SettingsDep, rasa: RasaClientDep, http: HttpClientDep
) -> Health:
    """Probe both backends concurrently (2 s timeout each).

    Returns:
        ``{"status": "ok"|"degraded"|"unavailable", "rasa": {"ready", "model"},
        "action_server": {"ready"}}``, plus ``"rasa_replicas": [{"replica", "ready", "model"}]``
        when there are several replicas; HTTP 200 when the action server and at least one
        rasa replica are ready, 503 otherwise. Never raises.
    """
    models, actions_ready = await asyncio.gather(
        rasa.replica_models(), action_server_ready(http, settings.ACTION_SERVER_URL)
    )
    ready_models = [m for m in models if m is not None]
    model = ready_models[0] if ready_models else None
    ok = model is not None and actions_ready
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    health = Health(
        status="unavailable" if not ok else "ok" if len(ready_models) == len(models) else "degraded",
        rasa=RasaHealth(ready=model is not None, model=model),
        action_server=ActionServerHealth(ready=actions_ready),
    )
    if len(models) > 1:
        health.rasa_replicas = [
            RasaReplicaHealth(replica=i, ready=m is not None, model=m) for i, m in enumerate(models, start=1)
        ]
    return health
