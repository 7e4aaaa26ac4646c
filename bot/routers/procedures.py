"""``GET /api/procedures`` and ``GET /api/procedures/{id}``: the city's catalogue as JSON.

For the web page, LINE and other systems of the city. Facts come from the catalogue only
(procedures/cities/<CITY>/); ``checked`` is the date they were checked or "unverified".
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from bot.deps import CatalogueDep, IndexDep
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
    """The API shape of a catalogue entry."""
    return ProcedureOut(
        id=p.id,
        name=p.name,
        aliases=list(p.aliases),
        category=p.category,
        area=p.area,
        summary=p.summary,
        life_events=list(p.life_events),
        national_priority=p.national_priority,
        channels={
            c.id: ChannelOut(
                available=c.available, how=c.how, url=c.url, hours=c.hours.text if c.hours else None,
                fee_yen=c.fee_yen, fee_note=c.fee_note, requirements=list(c.requirements), note=c.note,
            )
            for c in p.channels.values()
        },
        channel_order=[c.id for c in p.available_channels()],
        documents=list(p.documents),
        deadline=p.deadline,
        who=p.who,
        proxy=p.proxy,
        department=p.department,
        phone=p.phone,
        source_url=p.source_url,
        checked=p.checked.isoformat() if p.checked else "unverified",
        verified=p.verified,
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
