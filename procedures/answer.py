"""Compose the answer about a procedure (手続きの案内文と案内カード) from catalogue data.

All citizen-facing wording comes from text fragments in domain.yml ``responses`` (names below);
this module only chooses and orders them. Channels are listed so that the options that spare a
visit come first (オンライン → コンビニ交付 → 郵送 → 窓口), as the city's 「行かない・待たない・
書かない」 plan asks; the channel the citizen asked about comes first of all.

Given the current time (``now``), the answer also says what can be done right now (窓口は時間外、
コンビニ交付は23:00まで、オンラインは24時間…) and the card carries ``open_now`` / ``next_open`` per
channel; the opening-hours arithmetic is in procedures/hours.py (JST).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from procedures import hours
from procedures.catalogue import CHANNELS, Channel, City, Procedure

logger = logging.getLogger(__name__)

#: Aspects a citizen can ask about (intent → aspect is set in actions/).
ASPECTS = ("overview", "fee", "documents", "proxy", "hours")

#: Aspects whose answer gets the 「今できること」 line when the current time is known.
NOW_ASPECTS = ("overview", "hours")


class TemplateError(KeyError):
    """A text fragment is missing from domain.yml or a placeholder has no value."""


class Templates:
    """Text fragments (文面) from domain.yml ``responses``: name → [{"text": ...}, ...].

    Only the first variant is used, so answers are deterministic.
    """

    def __init__(self, responses: Mapping[str, Sequence[Mapping[str, Any]]]):
        self._responses = responses

    @classmethod
    def from_domain_file(cls, path: Path) -> "Templates":
        """Read the ``responses`` of a domain.yml file."""
        with Path(path).open(encoding="utf-8") as fh:
            return cls((yaml.safe_load(fh) or {}).get("responses", {}))

    def render(self, template: str, /, **values: Any) -> str:
        """The fragment named ``template`` with ``{placeholders}`` filled from ``values``.

        Raises:
            TemplateError: unknown fragment or a placeholder without a value.
        """
        try:
            text = self._responses[template][0]["text"]
        except (KeyError, IndexError, TypeError) as exc:
            raise TemplateError(f"domain.yml has no response {template!r} with text") from exc
        try:
            return text.format(**values)
        except (KeyError, IndexError) as exc:
            raise TemplateError(f"response {template!r} needs a value for {exc}") from exc


@dataclass(frozen=True)
class Answer:
    """A composed answer: ``text`` (polite Japanese, lines joined by \\n) and the procedure ``card``."""

    text: str
    card: Dict[str, Any]


def channel_order(procedure: Procedure, preferred: Optional[str] = None) -> List[Channel]:
    """Available channels, ``preferred`` first, then online, convenience_store, mail, counter."""
    order = list(CHANNELS)
    if preferred in order:
        order.remove(preferred)
        order.insert(0, preferred)
    return [procedure.channels[c] for c in order if c in procedure.channels and procedure.channels[c].available]


def fee_text(channel: Channel, t: Templates) -> str:
    """「手数料200円（1通につき）」, 「手数料は無料」 or 「手数料は公式ページでご確認ください」."""
    if channel.fee_yen is None:
        return t.render("utter_fee_unknown")
    text = t.render("utter_fee_free") if channel.fee_yen == 0 else t.render("utter_fee_yen", fee_yen=f"{channel.fee_yen:,}")
    return text + (f"（{channel.fee_note}）" if channel.fee_note else "")


def _label(channel_id: str, t: Templates) -> str:
    return t.render(f"utter_label_{channel_id}")


def _channel_line(channel: Channel, t: Templates, aspect: str) -> Optional[str]:
    """「・コンビニ：毎日 6:30〜23:00。手数料…」 for ``aspect``; the channel's ``how`` when the
    catalogue has nothing for that aspect; None when it has nothing at all."""
    parts: List[str] = []
    if aspect in ("overview", "hours") and channel.hours:
        parts.append(channel.hours.text)
    if aspect in ("overview", "fee"):
        parts.append(fee_text(channel, t))
    if aspect in ("overview", "documents") and channel.requirements:
        parts.append(t.render("utter_requirements", items="、".join(channel.requirements)))
    if aspect == "overview" and channel.note:
        parts.append(channel.note)
    parts = [p for p in parts if p] or [channel.how]
    if not any(parts):
        return None
    return t.render("utter_line_channel", label=_label(channel.id, t), detail="。".join(p.rstrip("。") for p in parts if p))


def channel_status(channel: Channel, now: dt.datetime) -> Optional[hours.Status]:
    """Whether ``channel`` takes requests at ``now`` (see :func:`procedures.hours.status`).

    None when the channel is not available, has no opening hours in the catalogue, or its hours
    cannot be read (logged; the answer is still given without the time-aware part).
    Raises:
        ValueError: ``now`` is a naive datetime.
    """
    hours.require_aware(now)
    if not channel.available or channel.hours is None:
        return None
    try:
        return hours.status(channel.hours, now)
    except ValueError:
        logger.warning("opening hours %r of channel %s cannot be read", channel.hours.name, channel.id, exc_info=True)
        return None


def _iso(moment: Optional[dt.datetime]) -> Optional[str]:
    return moment.isoformat() if moment else None


def _time_fields(channel: Channel, now: dt.datetime) -> Dict[str, Any]:
    st = channel_status(channel, now)
    if st is None:
        return {"open_now": None, "next_open": None, "closes_at": None}
    return {
        "open_now": st.open_now,
        "next_open": None if st.open_now else _iso(st.next_open),
        "closes_at": _iso(st.closes_at),
    }


def to_card(procedure: Procedure, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """The structured card sent as ``custom`` for the web page and LINE.

    Shape: {"type": "procedure", "procedure": {"id", "name", "summary", "channels": {channel_id:
    {"available", "how", "url", "hours", "fee_yen", "fee_note", "requirements", "note"}},
    "channel_order", "documents", "deadline", "proxy", "department", "phone", "source_url",
    "checked" (YYYY-MM-DD or "unverified"), "verified"}}. Fees in yen; hours as display text (JST).

    With ``now`` (an aware datetime; the current time in Asia/Tokyo), each channel also has:
    "open_now" (bool: takes requests at ``now``); "next_open" (ISO 8601 with +09:00, e.g.
    "2026-11-24T08:30:00+09:00": when it opens next while closed now; null when open now, always
    open, or nothing opens within 14 days); "closes_at" (ISO 8601 +09:00 while open now; null when
    closed, always open, or open beyond 14 days). All three are null for a channel that is not
    available or has no opening hours in the catalogue. Without ``now`` these keys are absent.
    Raises:
        ValueError: ``now`` is a naive datetime.
    """
    channels = {
        c.id: {
            "available": c.available,
            "how": c.how,
            "url": c.url,
            "hours": c.hours.text if c.hours else None,
            "fee_yen": c.fee_yen,
            "fee_note": c.fee_note,
            "requirements": list(c.requirements),
            "note": c.note,
            **(_time_fields(c, now) if now is not None else {}),
        }
        for c in procedure.channels.values()
    }
    return {
        "type": "procedure",
        "procedure": {
            "id": procedure.id,
            "name": procedure.name,
            "summary": procedure.summary,
            "channels": channels,
            "channel_order": [c.id for c in channel_order(procedure)],
            "documents": list(procedure.documents),
            "deadline": procedure.deadline,
            "proxy": procedure.proxy,
            "department": procedure.department,
            "phone": procedure.phone,
            "source_url": procedure.source_url,
            "checked": procedure.checked.isoformat() if procedure.checked else "unverified",
            "verified": procedure.verified,
        },
    }


def format_datetime(moment: dt.datetime, t: Templates) -> str:
    """「11月24日(火) 8:30」 in JST, from the domain.yml fragments utter_datetime, utter_time and
    utter_weekday_mon..sun."""
    moment = moment.astimezone(hours.JST)
    return t.render(
        "utter_datetime",
        month=moment.month,
        day=moment.day,
        weekday=t.render(f"utter_weekday_{hours.DAYS[moment.weekday()]}"),
        time=format_time(moment, t),
    )


def format_time(moment: dt.datetime, t: Templates) -> str:
    """「8:30」 / 「23:00」 in JST, from the domain.yml fragment utter_time."""
    moment = moment.astimezone(hours.JST)
    return t.render("utter_time", hour=moment.hour, minute=f"{moment.minute:02d}")


def now_line(channels: Sequence[Channel], t: Templates, now: dt.datetime) -> Optional[str]:
    """One line saying what can be done at ``now`` with each channel, in the given order, e.g.
    「【現在 11月21日(土) 22:00】コンビニ交付は23:00まで利用できます。…窓口は受付時間外です（次は
    11月24日(火) 8:30から）。」. None when no channel has opening hours in the catalogue.

    Fragments (domain.yml): utter_now_line, utter_now_always, utter_now_open_until, utter_now_open,
    utter_now_closed_next, utter_now_closed; dates via :func:`format_datetime`. ``closes_at`` is
    shown as a time only when it is on the same day as ``now``.
    Raises:
        ValueError: ``now`` is a naive datetime.
    """
    now = hours.require_aware(now).astimezone(hours.JST)
    items: List[str] = []
    for channel in channels:
        st = channel_status(channel, now)
        if st is None:
            continue
        label = _label(channel.id, t)
        if st.always:
            items.append(t.render("utter_now_always", label=label))
        elif st.open_now and st.closes_at:
            same_day = st.closes_at.date() == now.date()
            until = format_time(st.closes_at, t) if same_day else format_datetime(st.closes_at, t)
            items.append(t.render("utter_now_open_until", label=label, closes_at=until))
        elif st.open_now:
            items.append(t.render("utter_now_open", label=label))
        elif st.next_open:
            items.append(t.render("utter_now_closed_next", label=label, next_open=format_datetime(st.next_open, t)))
        else:
            items.append(t.render("utter_now_closed", label=label))
    if not items:
        return None
    return t.render("utter_now_line", now=format_datetime(now, t), items="".join(items))


def compose(
    procedure: Procedure,
    city: City,
    t: Templates,
    aspect: str = "overview",
    channel: Optional[str] = None,
    now: Optional[dt.datetime] = None,
) -> Answer:
    """Answer ``aspect`` of ``procedure`` for ``city``; ``channel`` is the one the citizen asked about.

    Args:
        procedure: the catalogue entry.
        city: the municipality profile (name for the unverified note).
        t: text fragments from domain.yml.
        aspect: one of :data:`ASPECTS`.
        channel: online / convenience_store / mail / counter, or None.
        now: the current time (aware datetime, Asia/Tokyo). When given, answers about the overview
            or hours get one line on what can be done now (:func:`now_line`), and the card gets
            ``open_now`` / ``next_open`` / ``closes_at`` per channel (:func:`to_card`).
    Raises:
        ValueError: unknown aspect, or ``now`` is naive. TemplateError: a fragment is missing in domain.yml.
    """
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect {aspect!r}; expected one of {ASPECTS}")
    if now is not None:
        hours.require_aware(now)
    name = procedure.name
    lines: List[str] = []
    channels = channel_order(procedure, channel)
    asked = procedure.channels.get(channel) if channel else None

    if channel and aspect == "overview":
        if asked and asked.available:
            lines.append(t.render("utter_answer_channel_yes", name=name, channel_label=_label(channel, t)))
            if asked.how:
                lines.append(asked.how)
        else:
            lines.append(t.render("utter_answer_channel_no", name=name, channel_label=_label(channel, t)))
    elif aspect == "overview":
        counter_only = [c.id for c in channels] == ["counter"]
        lines.append(t.render("utter_answer_overview_counter_only" if counter_only else "utter_answer_overview", name=name))
    else:
        lines.append(t.render(f"utter_answer_{aspect}", name=name))

    if aspect == "documents" and not (asked and asked.available and asked.requirements):
        lines.extend(t.render("utter_line_item", item=d) for d in procedure.documents)
        if not procedure.documents:
            lines.append(t.render("utter_answer_documents_unknown", department=procedure.department, phone=procedure.phone))
    elif aspect == "proxy":
        lines.append(procedure.proxy or t.render("utter_answer_proxy_unknown", department=procedure.department, phone=procedure.phone))
    else:
        shown = [asked] if (aspect == "documents" and asked) else channels
        lines.extend(line for line in (_channel_line(c, t, aspect) for c in shown) if line)
        if not channels:
            lines.append(t.render("utter_answer_no_channel", department=procedure.department, phone=procedure.phone))
    if now is not None and aspect in NOW_ASPECTS:
        line = now_line(channels, t, now)
        if line:
            lines.append(line)
    if aspect == "overview" and procedure.deadline:
        lines.append(t.render("utter_deadline", deadline=procedure.deadline))

    lines.append(t.render("utter_contact_line", department=procedure.department, phone=procedure.phone))
    if not procedure.verified:
        lines.append(t.render("utter_unverified_note", city_name=city.name))
    lines.append(t.render("utter_official_link", url=procedure.source_url))
    return Answer(text="\n".join(lines), card=to_card(procedure, now=now))


def needs_no_visit(procedure: Procedure) -> bool:
    """True when some available channel other than the counter (窓口) exists: 来庁不要."""
    return any(c.available for c in procedure.channels.values() if c.id != "counter")


def available_via(procedure: Procedure, channel: str) -> bool:
    """Whether ``procedure`` can be done via ``channel``: a catalogue channel id, or "weekend"
    (土日・休日: an available channel other than mail whose hours include Saturday or Sunday, or
    that is always open)."""
    if channel == "weekend":  # mail is posted any day but handled on working days: not counted
        return any(
            c.available and c.id != "mail" and c.hours and (c.hours.always or {"sat", "sun"} & set(c.hours.weekly))
            for c in procedure.channels.values()
        )
    ch = procedure.channels.get(channel)
    return bool(ch and ch.available)


def compose_life_event(key: str, label: str, procedures: Sequence[Procedure], t: Templates) -> Answer:
    """The procedures of a life event (ライフイベント), in the given (deadline) order, with the
    channels of each and a summary 「7件中5件は来庁せずに手続きできます。」.

    Card: {"type": "life_event", "life_event": {"id", "label", "total", "no_visit", "procedures":
    [{"id", "name", "deadline", "channels": [channel ids, visit-free first], "no_visit"}]}}.
    Raises:
        TemplateError: a fragment is missing in domain.yml.
    """
    items = []
    lines = [t.render("utter_life_event_intro", label=label)]
    for p in procedures:
        channels = channel_order(p)
        deadline = t.render("utter_life_event_deadline", deadline=p.deadline) if p.deadline else ""
        lines.append(t.render("utter_life_event_line", name=p.name, deadline=deadline,
                              channels="・".join(_label(c.id, t) for c in channels)))
        items.append({"id": p.id, "name": p.name, "deadline": p.deadline,
                      "channels": [c.id for c in channels], "no_visit": needs_no_visit(p)})
    no_visit = sum(1 for i in items if i["no_visit"])
    lines.append(t.render("utter_life_event_summary", total=len(items), no_visit=no_visit))
    card = {"type": "life_event", "life_event": {"id": key, "label": label, "total": len(items),
                                                 "no_visit": no_visit, "procedures": items}}
    return Answer(text="\n".join(lines), card=card)


def compose_channel_list(channel: str, procedures: Sequence[Procedure], t: Templates, limit: int = 15) -> Answer:
    """Procedures that can be done via ``channel`` (see :func:`available_via`), first ``limit``
    named in the text. Card: {"type": "procedure_list", "channel", "total", "procedures": [{"id", "name"}]}.
    Raises:
        TemplateError: a fragment is missing in domain.yml.
    """
    found = [p for p in procedures if available_via(p, channel)]
    label = _label(channel, t)
    if not found:
        return Answer(text=t.render("utter_channel_list_none", label=label),
                      card={"type": "procedure_list", "channel": channel, "total": 0, "procedures": []})
    lines = [t.render("utter_channel_list_intro", label=label, total=len(found))]
    lines.extend(t.render("utter_line_item", item=p.name) for p in found[:limit])
    if len(found) > limit:
        lines.append(t.render("utter_channel_list_more", rest=len(found) - limit))
    card = {"type": "procedure_list", "channel": channel, "total": len(found),
            "procedures": [{"id": p.id, "name": p.name} for p in found]}
    return Answer(text="\n".join(lines), card=card)
