"""What the action server records for review (記録する内容), as plain functions.

Privacy (個人情報の保護): the sender is stored only as :func:`bot.privacy.log_id` (a hash), and the
citizen's text is stored only when staff need it to improve the bot, and then only after
:func:`bot.privacy.redact`:

- ``fallback``: the NLU fell back (intent ``nlu_fallback``) or nothing fitted (``resolved == "none"``);
- ``low_confidence``: the intent confidence was below ``Settings.REVIEW_LOW_CONFIDENCE``;
- ``feedback_no``: the citizen answered 「いいえ」 to 「解決しましたか？」 (the question they had
  asked is kept, not the 「いいえ」).

Recording must never break a reply: :func:`record_safely` logs a failure and returns.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from bot.privacy import log_id, redact
from bot.review.store import ReviewStore, Turn

logger = logging.getLogger(__name__)

#: Slot set by action_answer_procedure when it asked 「解決しましたか？」 (value: the procedure id).
FEEDBACK_SLOT = "feedback_procedure"


def review_reason(intent: str, confidence: Optional[float], resolved: str, low_confidence: float) -> Optional[str]:
    """Why the text of a question should be kept for review, or None.

    >>> review_reason("nlu_fallback", 0.3, "bm25", 0.6), review_reason("ask_fee", 0.5, "context", 0.6)
    ('fallback', 'low_confidence')
    >>> review_reason("ask_fee", 0.9, "context", 0.6) is None
    True
    """
    if intent == "nlu_fallback" or resolved == "none":
        return "fallback"
    if confidence is not None and confidence < low_confidence:
        return "low_confidence"
    return None


def question_turn(
    sender_id: str,
    now: dt.datetime,
    intent: str,
    confidence: Optional[float],
    text: str,
    target: Optional[str],
    resolved: str,
    feedback_offered: bool,
    low_confidence: float,
) -> Turn:
    """The record of one answered question.

    Args:
        sender_id: the conversation id as rasa sees it (hashed here, never stored).
        now: aware datetime (Asia/Tokyo), stored as ISO 8601.
        intent / confidence: the NLU result (confidence 0-1 or None).
        text: the citizen's message (stored redacted, and only when :func:`review_reason` says so).
        target: procedure id, life-event key or ``faq:<ID>``; None when nothing was answered.
        resolved: how it was found (``procedures.reply.Reply.resolved``); ``none`` = not found.
        feedback_offered: whether 「解決しましたか？」 was asked.
        low_confidence: threshold of :func:`review_reason`.
    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (Asia/Tokyo)")
    reason = review_reason(intent, confidence, resolved, low_confidence)
    return Turn(
        ts=now.isoformat(timespec="seconds"), sender=log_id(sender_id), kind="question", intent=intent or None,
        confidence=None if confidence is None else round(float(confidence), 4), target=target, resolved=resolved,
        answered=resolved != "none", feedback_offered=feedback_offered, reason=reason,
        text=redact(text) if reason else None,
    )


def feedback_turn(sender_id: str, now: dt.datetime, resolved: bool, target: Optional[str], question: str) -> Turn:
    """The record of a 「はい」 (``resolved``) or 「いいえ」 to 「解決しましたか？」 about ``target``;
    for 「いいえ」 the citizen's earlier ``question`` is kept, redacted. Raises ValueError on naive ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (Asia/Tokyo)")
    return Turn(
        ts=now.isoformat(timespec="seconds"), sender=log_id(sender_id), kind="feedback", target=target,
        feedback="yes" if resolved else "no", reason=None if resolved else "feedback_no",
        text=None if resolved else (redact(question) or None), answered=True,
    )


def awaiting_feedback(events: Sequence[Mapping[str, Any]]) -> Optional[Dict[str, Optional[str]]]:
    """Whether the bot's turn right before the latest user message asked 「解決しましたか？」.

    Args:
        events: tracker events as dicts (``tracker.events``), oldest first.
    Returns:
        ``{"procedure": <id>, "question": <the citizen's text answered in that turn>}`` when the
        previous bot turn set the slot :data:`FEEDBACK_SLOT` to a value, else None (a 「はい」 that
        answers something else, or a button pressed later, is not feedback).
    """
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if len(users) < 2:
        return None
    latest, previous = users[-1], users[-2]
    procedure = None
    for event in events[previous + 1:latest]:
        if event.get("event") == "slot" and event.get("name") == FEEDBACK_SLOT:
            procedure = event.get("value")
    if not procedure:
        return None
    return {"procedure": str(procedure), "question": str(events[previous].get("text") or "")}


def record_safely(store: Optional[Callable[[], Optional[ReviewStore]]], make_turn: Callable[[], Turn]) -> Optional[int]:
    """Build and store one record; on any failure log it (without personal data) and return None.

    Args:
        store: returns the store, or None when recording is disabled (``REVIEW_DB`` empty).
        make_turn: builds the :class:`Turn` (called inside the guard, so its errors are caught too).
    Returns:
        The new row id, or None (disabled or failed).
    """
    try:
        target = store() if store else None
        if target is None:
            return None
        return target.add(make_turn())
    except Exception as exc:  # recording must never break a reply
        logger.error("review record failed: %s: %s", type(exc).__name__, exc)
        return None

