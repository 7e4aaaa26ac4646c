"""Decide the bot's reply to a question about procedures (手続きの質問への返答).

Plain function used by the Rasa action ``action_answer_procedure`` (actions/actions.py) and tested
on its own. It identifies the procedure (procedures/search.py), then either answers it
(procedures/answer.py), asks back with up to 3 candidate buttons, or says nothing fits and gives the
city's contact. It never invents a fact: every fact comes from the catalogue entry.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from procedures.answer import Templates, compose
from procedures.catalogue import CHANNELS, City
from procedures.search import ProcedureIndex

#: intent → aspect of the procedure the citizen asks about.
INTENT_ASPECT: Dict[str, str] = {
    "ask_procedure": "overview",
    "ask_fee": "fee",
    "ask_documents": "documents",
    "ask_proxy": "proxy",
    "ask_hours": "hours",
    "nlu_fallback": "overview",
}


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


def button_payload(intent: str, procedure_id: str) -> str:
    """Rasa payload that re-asks ``intent`` about a procedure, e.g. /ask_fee{"procedure": "juminhyo_copy"}."""
    intent = intent if intent in INTENT_ASPECT and intent != "nlu_fallback" else "ask_procedure"
    return f"/{intent}{json.dumps({'procedure': procedure_id}, ensure_ascii=False)}"


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
) -> Reply:
    """Reply to one message about a procedure.

    Args:
        index: search index over the city's catalogue.
        templates: text fragments (domain.yml responses).
        city: municipality profile (contact for "not found").
        intent: the NLU intent (see :data:`INTENT_ASPECT`; others are answered as an overview).
        text: the citizen's message.
        procedure_entities: values of ``procedure`` entities (ids or raw text).
        channel_entities: values of ``channel`` entities; only catalogue channel ids are used.
        current: procedure id kept from earlier turns (slot), for follow-up questions.
        predicted: (key, confidence) of the NLU ResponseSelector for ask_procedure/<key>. It is used
            for ask_procedure and nlu_fallback, and for follow-up intents only when no procedure is
            being talked about yet (a 「手数料は？」 must not switch procedures on a guess).
    Returns:
        A :class:`Reply`.
    Raises:
        TemplateError: a text fragment is missing in domain.yml.
    """
    aspect = INTENT_ASPECT.get(intent, "overview")
    channel = next((c for c in channel_entities if c in CHANNELS), None)
    if intent not in ("ask_procedure", "nlu_fallback") and current:
        predicted = None
    found = index.identify(text, procedure_entities, current=current, predicted=predicted)
    if found.procedure:
        answer = compose(found.procedure, city, templates, aspect=aspect, channel=channel)
        return Reply(
            messages=[{"text": answer.text, "json_message": answer.card}],
            procedure=found.procedure.id,
            resolved=found.how,
        )
    if found.candidates:
        prompt = (
            templates.render("utter_ask_which_topic", topic=found.topic)
            if found.topic
            else templates.render("utter_ask_which")
        )
        buttons = [{"title": p.name, "payload": button_payload(intent, p.id)} for p in found.candidates]
        return Reply(messages=[{"text": prompt, "buttons": buttons}], resolved=found.how)
    text_out = templates.render("utter_not_found", city_contact=city.contact_text, city_website=city.website)
    return Reply(messages=[{"text": text_out}], resolved="none")
