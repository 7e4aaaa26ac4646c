"""``GET /api/procedures`` and ``GET /api/procedures/{id}``: the city's catalogue as JSON.

For the web page, LINE and other systems of the city. Facts come from the catalogue only
(procedures/cities/<CITY>/); ``checked`` is the date they were checked or "unverified".
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from bot.deps import CatalogueDep, IndexDep
from procedures.answer import to_card
from procedures.catalogue import CHANNELS, Procedure

router = APIRouter(prefix="/api/procedures", tags=["procedures"])

ChannelId = Literal["online", "convenience_store", "mail", "counter"]

class ChannelOut(BaseModel):
    """One way to do the procedure: 電子申請 / コンビニ交付 / 郵送 / 窓口. ``fee_yen`` in yen (null: see the official page)."""

    available: bool
    how: str
    url: str | None
    hours: str | None
    fee_yen: int | None
    fee_note: str
    requirements: list[str]
    note: str


class ProcedureOut(BaseModel):
    """A catalogue entry (手続き). ``checked``: YYYY-MM-DD or "unverified"."""

    id: str
    name: str
    aliases: list[str]
    category: str
    area: str
    summary: str
    life_events: list[str]
    national_priority: bool
    channels: dict[str, ChannelOut]
    channel_order: list[str]
    documents: list[str]
    deadline: str
    who: str
    proxy: str
    department: str
    phone: str
    source_url: str
    checked: str
    verified: bool


class ProcedureList(BaseModel):
    """Matching procedures, best match first when ``q`` is given, else in catalogue order."""

    count: int
    procedures: list[ProcedureOut]


def to_out(p: Procedure) -> ProcedureOut:
    """The API shape of a catalogue entry: the chat card's fields (procedures.answer.to_card) plus
    the catalogue-only ones."""
    return ProcedureOut(
        **to_card(p)["procedure"],
        aliases=list(p.aliases),
        category=p.category,
        area=p.area,
        life_events=list(p.life_events),
        national_priority=p.national_priority,
        who=p.who,
    )


@router.get("", response_model=ProcedureList)
def list_procedures(
    catalogue: CatalogueDep,
    index: IndexDep,
    q: str | None = Query(None, max_length=200, description="自由文検索（例: 住民票 コンビニ）"),
    channel: ChannelId | None = Query(None, description="この方法でできる手続きだけ"),
    life_event: str | None = Query(None, max_length=40, description="ライフイベント（例: moving_in, birth）"),
) -> ProcedureList:
    """List procedures, optionally searched by ``q`` and filtered by ``channel`` and ``life_event``."""
    procs = index.search(q) if q and q.strip() else list(catalogue)
    if channel:
        procs = [p for p in procs if channel in p.channels and p.channels[channel].available]
    if life_event:
        procs = [p for p in procs if life_event in p.life_events]
    return ProcedureList(count=len(procs), procedures=[to_out(p) for p in procs])


@router.get("/{procedure_id}", response_model=ProcedureOut, responses={404: {"description": "no such procedure"}})
def get_procedure(procedure_id: str, catalogue: CatalogueDep) -> ProcedureOut:
    """One procedure by id. Raises 404 with a message when the id is unknown."""
    p = catalogue.get(procedure_id)
    if p is None:
        raise HTTPException(status_code=404, detail=f"手続き {procedure_id!r} はありません / unknown procedure id")
    return to_out(p)


assert set(CHANNELS) == set(ChannelId.__args__)  # the API enum follows the catalogue
