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

from bot.config import get_settings
from bot.faq.answer import city_faq_index, faq_entry_reply, faq_or, faq_reply, not_known_reply
from bot.review.record import FEEDBACK_SLOT, awaiting_feedback, feedback_turn, question_turn, record_safely
from bot.review.store import ReviewStore
from procedures.answer import Templates
from procedures.catalogue import default_catalogue
from procedures.hours import JST
from procedures.reply import Reply, reply_to, selected_procedure
from procedures.search import ProcedureIndex

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def procedure_index() -> ProcedureIndex:
    """The search index over the configured city's catalogue (env CITY), built once per process."""
    return ProcedureIndex(default_catalogue())


@lru_cache(maxsize=1)
def review_store() -> "ReviewStore | None":
    """The review store (Settings.REVIEW_DB, default var/review.db), None when recording is off."""
    path = get_settings().review_db_path
    return ReviewStore(path) if path else None


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
            # Nothing in the catalogue fits: try the city's FAQ before the "not found" reply.
            reply = faq_or(reply, message.get("text") or "", Templates(domain.get("responses", {})),
                           default_catalogue().city)
        except Exception:
            logger.exception("action_answer_procedure failed")
            dispatcher.utter_message(response="utter_action_error")
            return []
        for msg in reply.messages:
            dispatcher.utter_message(**msg)
        logger.info("answered intent=%s resolved=%s procedure=%s",
                    (message.get("intent") or {}).get("name"), reply.resolved, reply.procedure)
        events: List[EventType] = [SlotSet("procedure", reply.procedure)] if reply.procedure else []
        # 「解決しましたか？」 once per procedure answered (not again for its follow-up questions).
        offer = bool(reply.procedure) and tracker.get_slot(FEEDBACK_SLOT) != reply.procedure
        if offer:
            dispatcher.utter_message(response="utter_ask_resolved")
            events.append(SlotSet(FEEDBACK_SLOT, reply.procedure))
        intent = message.get("intent") or {}
        record_safely(review_store, lambda: question_turn(
            tracker.sender_id, current_time(), str(intent.get("name") or ""), intent.get("confidence"),
            message.get("text") or "", reply.procedure, reply.resolved, offer,
            get_settings().REVIEW_LOW_CONFIDENCE))
        return events


class ActionFeedback(Action):
    """はい／いいえ: the answer to 「解決しましたか？」 when it was just asked, else 「ほかにご質問は」."""

    def name(self) -> Text:
        return "action_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Records はい/いいえ (review store) and thanks / apologises with the city contact."""
        asked = awaiting_feedback([dict(e) for e in tracker.events])
        if asked is None:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        resolved = ((tracker.latest_message or {}).get("intent") or {}).get("name") == "affirm"
        record_safely(review_store, lambda: feedback_turn(
            tracker.sender_id, current_time(), resolved, asked["procedure"], asked["question"]))
        dispatcher.utter_message(response="utter_feedback_yes" if resolved else "utter_feedback_no")
        return []


class ActionAnswerFaq(Action):
    """Answers from the city's FAQ (よくある質問): the entry a candidate button chose
    (``/ask_faq{"faq_id": "12"}``), else the best entry for the message, else 「分かりません」 + contact."""

    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        """Sends the reply of :mod:`bot.faq.answer`; sets no slot."""
        message = tracker.latest_message or {}
        faq_id = next(tracker.get_latest_entity_values("faq_id"), None)
        try:
            templates = Templates(domain.get("responses", {}))
            city = default_catalogue().city
            index = city_faq_index(city.id)
            reply = None
            if index is not None:
                reply = (faq_entry_reply(index, str(faq_id), templates) if faq_id is not None
                         else faq_reply(index, message.get("text") or "", templates, city))
            if reply is None and faq_id is None and (message.get("intent") or {}).get("name") == "ask_faq":
                # 「よくある質問を見たい」: ask what they want to know instead of 「分かりません」.
                reply = Reply(messages=[{"response": "utter_faq_prompt"}], resolved="faq_prompt")
            reply = reply or not_known_reply(templates, city)
        except Exception:
            logger.exception("action_answer_faq failed")
            dispatcher.utter_message(response="utter_action_error")
            return []
        for msg in reply.messages:
            dispatcher.utter_message(**msg)
        logger.info("answered from FAQ faq_id=%s resolved=%s", faq_id, reply.resolved)
        intent = message.get("intent") or {}
        record_safely(review_store, lambda: question_turn(
            tracker.sender_id, current_time(), str(intent.get("name") or ""), intent.get("confidence"),
            message.get("text") or "", f"faq:{faq_id}" if faq_id is not None and reply.resolved != "none" else None,
            reply.resolved, False, get_settings().REVIEW_LOW_CONFIDENCE))
        return []
