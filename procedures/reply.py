"""Decide the bot's reply to a question about procedures (手続きの質問への返答).

Plain function used by the Rasa action ``action_answer_procedure`` (actions/actions.py) and tested
on its own. It identifies the procedure (procedures/search.py), then either answers it
(procedures/answer.py), asks back with up to 3 candidate buttons, or says nothing fits and gives the
city's contact. It never invents a fact: every fact comes from the catalogue entry.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from procedures.answer import Templates, compose, compose_channel_list, compose_life_event
from procedures.catalogue import CHANNELS, City
from procedures.search import Identification, ProcedureIndex

#: intent → aspect of the procedure the citizen asks about.
INTENT_ASPECT: Dict[str, str] = {
    "ask_procedure": "overview",
    "ask_fee": "fee",
    "ask_documents": "documents",
    "ask_proxy": "proxy",
    "ask_hours": "hours",
    "nlu_fallback": "overview",
    "ask_channel_procedures": "overview",
}
#: Channel values a list can be asked for: the catalogue channels and 土日・休日 (weekend).
LIST_CHANNELS = (*CHANNELS, "weekend")
#: At most this many procedure buttons under a life-event list (LINE allows 13 quick replies).
MAX_LIST_BUTTONS = 10


@dataclass
class Reply:
    """What to send: ``messages`` as keyword arguments for ``dispatcher.utter_message`` (text,
    buttons [{"title", "payload"}], json_message = card), and the ``procedure`` id to keep in the
    slot (None leaves the slot unchanged). ``resolved`` tells how the procedure was found."""

    messages: List[Dict[str, Any]] = field(default_factory=list)
    procedure: Optional[str] = None
    resolved: str = "none"


def selected_procedure(parse: Dict[str, Any]) -> Optional[Tuple[str, float]]:
    """(key, confidence) chosen by the ResponseSelector for ``ask_procedure`` in a Rasa parse result.

    ``parse`` is ``tracker.latest_message``: {"response_selector": {"ask_procedure": {"response":
    {"intent_response_key": "ask_procedure/juminhyo_copy", "confidence": 0.93}}}}. None when absent.
    """
    response = ((parse.get("response_selector") or {}).get("ask_procedure") or {}).get("response") or {}
    key = response.get("intent_response_key") or ""
    if "/" not in key:
        return None
    return key.split("/", 1)[1], float(response.get("confidence") or 0.0)


def button_payload(intent: str, **entities: str) -> str:
    """Rasa payload that re-asks ``intent`` with entities, e.g. /ask_fee{"procedure": "juminhyo_copy"}
    or /ask_procedure{"life_event": "moving_here"}."""
    intent = intent if intent in INTENT_ASPECT and intent != "nlu_fallback" else "ask_procedure"
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}"


def reply_to(
    index: ProcedureIndex,
    templates: Templates,
    city: City,
    intent: str,
    text: str,
    procedure_entities: Sequence[str] = (),
    channel_entities: Sequence[str] = (),
    current: Optional[str] = None,
    predicted: Optional[Tuple[str, float]] = None,
    now: Optional[dt.datetime] = None,
    life_event: Optional[str] = None,
) -> Reply:
    """Reply to one message about a procedure.

    Args:
        index: search index over the city's catalogue.
        templates: text fragments (domain.yml responses).
        city: municipality profile (contact for "not found").
        intent: the NLU intent (see :data:`INTENT_ASPECT`; others are answered as an overview).
        text: the citizen's message.
        procedure_entities: values of ``procedure`` entities (ids or raw text).
        channel_entities: values of ``channel`` entities: catalogue channel ids, or ``weekend``
            (土日・休日) for channel-list questions.
        current: procedure id kept from earlier turns (slot), for follow-up questions.
        predicted: (key, confidence) of the NLU ResponseSelector for ask_procedure/<key>. It is used
            for ask_procedure and nlu_fallback, and for follow-up intents only when no procedure is
            being talked about yet (a 「手数料は？」 must not switch procedures on a guess).
        now: the current time (aware datetime, Asia/Tokyo), or None. When given, the answer says
            what can be done now and the card carries open_now / next_open per channel
            (see :func:`procedures.answer.compose`).
        life_event: a life-event key chosen with a button (entity ``life_event``).
    Returns:
        A :class:`Reply`.
    Raises:
        TemplateError: a text fragment is missing in domain.yml.
        ValueError: ``now`` is a naive datetime.
    """
    aspect = INTENT_ASPECT.get(intent, "overview")
    channel = next((c for c in channel_entities if c in CHANNELS), None)
    list_channel = next((c for c in channel_entities if c in LIST_CHANNELS), None)
    if intent not in ("ask_procedure", "nlu_fallback") and current:
        predicted = None
    if intent == "ask_channel_procedures":
        # 「コンビニで取れる証明書は？」: a list, unless the text itself names a procedure.
        current, predicted = None, None
    found = index.identify(text, procedure_entities, current=current, predicted=predicted, life_event=life_event)
    weak = found.procedure is None and found.how in ("fuzzy", "bm25")
    if list_channel and (weak or (intent == "ask_channel_procedures" and found.how not in ("entity", "alias", "reading"))):
        # A channel was named but no procedure clearly: answer with that channel's list.
        found = Identification()
    if found.procedure:
        answer = compose(found.procedure, city, templates, aspect=aspect, channel=channel, now=now)
        return Reply(
            messages=[{"text": answer.text, "json_message": answer.card}],
            procedure=found.procedure.id,
            resolved=found.how,
        )
    if found.life_event:
        answer = compose_life_event(found.life_event, found.topic, index.event_procedures(found.life_event), templates)
        buttons = [{"title": p["name"], "payload": button_payload("ask_procedure", procedure=p["id"])}
                   for p in answer.card["life_event"]["procedures"][:MAX_LIST_BUTTONS]]
        return Reply(messages=[{"text": answer.text, "buttons": buttons, "json_message": answer.card}],
                     resolved=found.how)
    if found.choices:
        prompt = templates.render("utter_ask_which_life_event", topic=found.topic)
        buttons = [
            {"title": index.life_events[key]["label"],
             "payload": button_payload("ask_procedure", life_event=key)}
            for key in found.choices
        ]
        return Reply(messages=[{"text": prompt, "buttons": buttons}], resolved=found.how)
    if found.candidates:
        prompt = (
            templates.render("utter_ask_which_topic", topic=found.topic)
            if found.topic
            else templates.render("utter_ask_which")
        )
        buttons = [{"title": p.name, "payload": button_payload(intent, procedure=p.id)} for p in found.candidates]
        return Reply(messages=[{"text": prompt, "buttons": buttons}], resolved=found.how)
    if list_channel:
        # 「郵送でできる手続きは？」 or a channel question with no procedure in sight: list them.
        answer = compose_channel_list(list_channel, list(index.catalogue), templates)
        return Reply(messages=[{"text": answer.text, "json_message": answer.card}], resolved="channel")
    text_out = templates.render("utter_not_found", city_contact=city.contact_text, city_website=city.website)
    return Reply(messages=[{"text": text_out}], resolved="none")
