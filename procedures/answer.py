"""Compose the answer about a procedure (手続きの案内文と案内カード) from catalogue data.

All citizen-facing wording comes from text fragments in domain.yml ``responses`` (names below);
this module only chooses and orders them. Channels are listed so that the options that spare a
visit come first (オンライン → コンビニ交付 → 郵送 → 窓口), as the city's 「行かない・待たない・
書かない」 plan asks; the channel the citizen asked about comes first of all.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from procedures.catalogue import CHANNELS, Channel, City, Procedure

#: Aspects a citizen can ask about (intent → aspect is set in actions/).
ASPECTS = ("overview", "fee", "documents", "proxy", "hours")


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


def _channel_line(channel: Channel, t: Templates, aspect: str) -> str:
    parts: List[str] = []
    if aspect in ("overview", "hours") and channel.hours:
        parts.append(channel.hours.text)
    if aspect in ("overview", "fee"):
        parts.append(fee_text(channel, t))
    if aspect in ("overview", "documents") and channel.requirements:
        parts.append(t.render("utter_requirements", items="、".join(channel.requirements)))
    if aspect == "overview" and channel.note:
        parts.append(channel.note)
    return t.render("utter_line_channel", label=_label(channel.id, t), detail="。".join(p.rstrip("。") for p in parts if p))


def to_card(procedure: Procedure) -> Dict[str, Any]:
    """The structured card sent as ``custom`` for the web page and LINE.

    Shape: {"type": "procedure", "procedure": {"id", "name", "summary", "channels": {channel_id:
    {"available", "how", "url", "hours", "fee_yen", "fee_note", "requirements", "note"}},
    "channel_order", "documents", "deadline", "proxy", "department", "phone", "source_url",
    "checked" (YYYY-MM-DD or "unverified"), "verified"}}. Fees in yen; hours as display text (JST).
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


def compose(
    procedure: Procedure,
    city: City,
    t: Templates,
    aspect: str = "overview",
    channel: Optional[str] = None,
) -> Answer:
    """Answer ``aspect`` of ``procedure`` for ``city``; ``channel`` is the one the citizen asked about.

    Args:
        procedure: the catalogue entry.
        city: the municipality profile (name for the unverified note).
        t: text fragments from domain.yml.
        aspect: one of :data:`ASPECTS`.
        channel: online / convenience_store / mail / counter, or None.
    Raises:
        ValueError: unknown aspect. TemplateError: a fragment is missing in domain.yml.
    """
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect {aspect!r}; expected one of {ASPECTS}")
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
        lines.extend(_channel_line(c, t, aspect) for c in shown)
        if not channels:
            lines.append(t.render("utter_answer_no_channel", department=procedure.department, phone=procedure.phone))
    if aspect == "overview" and procedure.deadline:
        lines.append(t.render("utter_deadline", deadline=procedure.deadline))

    lines.append(t.render("utter_contact_line", department=procedure.department, phone=procedure.phone))
    if not procedure.verified:
        lines.append(t.render("utter_unverified_note", city_name=city.name))
    lines.append(t.render("utter_official_link", url=procedure.source_url))
    return Answer(text="\n".join(lines), card=to_card(procedure))
