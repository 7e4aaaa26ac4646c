"""Custom actions for the rasa-sdk action server (``python -m rasa_sdk --actions actions``).

Each action only reads the tracker, calls a plain function in procedures/ and sends what it returns.
If anything inside fails, the citizen gets an apology with the city's contact (utter_action_error)
and the failure is logged: the bot never goes silent.
"""
from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from procedures.answer import Templates
from procedures.catalogue import default_catalogue
from procedures.hours import JST
from procedures.reply import reply_to, selected_procedure
from procedures.search import ProcedureIndex

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def procedure_index() -> ProcedureIndex:
    """The search index over the configured city's catalogue (env CITY), built once per process."""
    return ProcedureIndex(default_catalogue())


def current_time() -> datetime:
    """The current time in Japan (Asia/Tokyo), the only clock the actions read (tests replace it)."""
    return datetime.now(JST)


def city_slots() -> List[EventType]:
    """SlotSet events for city_name, city_contact and city_website from the city profile."""
    city = default_catalogue().city
    return [
        SlotSet("city_name", city.name),
        SlotSet("city_contact", city.contact_text),
        SlotSet("city_website", city.website),
    ]


class ActionSessionStart(Action):
    """Starts a session (セッション開始) and fills the city slots used in responses."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Returns [SessionStarted, SlotSet×3, ActionExecuted(action_listen)]."""
        try:
            slots = city_slots()
        except Exception:  # the catalogue is broken: still start the session
            logger.exception("city profile could not be loaded")
            slots = []
        return [SessionStarted(), *slots, ActionExecuted("action_listen")]


class ActionAnswerProcedure(Action):
    """Answers a question about a procedure (手続きの案内), asks back, or gives the contact."""

    def name(self) -> Text:
        return "action_answer_procedure"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Sends the reply of :func:`procedures.reply.reply_to`; sets slot ``procedure`` when answered."""
        message = tracker.latest_message or {}
        try:
            reply = reply_to(
                procedure_index(),
                Templates(domain.get("responses", {})),
                default_catalogue().city,
                intent=(message.get("intent") or {}).get("name", ""),
                text=message.get("text") or "",
                procedure_entities=[str(v) for v in tracker.get_latest_entity_values("procedure")],
                channel_entities=[str(v) for v in tracker.get_latest_entity_values("channel")],
                current=tracker.get_slot("procedure"),
                predicted=selected_procedure(message),
                now=current_time(),
                life_event=next(tracker.get_latest_entity_values("life_event"), None),
            )
        except Exception:
            logger.exception("action_answer_procedure failed")
            dispatcher.utter_message(response="utter_action_error")
            return []
        for msg in reply.messages:
            dispatcher.utter_message(**msg)
        logger.info("answered intent=%s resolved=%s procedure=%s",
                    (message.get("intent") or {}).get("name"), reply.resolved, reply.procedure)
        return [SlotSet("procedure", reply.procedure)] if reply.procedure else []
