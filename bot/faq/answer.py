"""Reply from the city's FAQ (よくある質問からの返答), for the Rasa actions.

Plain functions, tested on their own:
- :func:`faq_reply`: best entry for a message (answer + official URL) and up to 2 other candidates
  as buttons ``/ask_faq{"faq_id": "<ID>"}``, or None when the best entry's confidence is below
  :data:`THRESHOLD` (the caller then says it does not know and gives the city's contact);
- :func:`faq_entry_reply`: the entry a candidate button selected;
- :func:`not_known_reply`: 「分かりません」 with the city's contact;
- :func:`city_faq_index`: the city's index, built once per process (lazy, cached).

All wording comes from domain.yml responses (utter_faq_*); facts come only from the FAQ file.

Threshold: measured on the development FAQ (tests/data/faq, 661 entries) with the dev queries and
22 questions the FAQ does not cover (tests/data/faq/negatives.json): at confidence >= 0.15 no
uncovered question was answered and 7% of the dev queries whose best entry was right were refused
(at 0.10: 23% of uncovered questions answered). See bot/faq/README.md.
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional

from bot.faq.data import FaqEntry, find_faq_file, load_faq
from bot.faq.search import FaqIndex, Hit
from procedures.answer import Templates
from procedures.catalogue import CITIES_DIR, City
from procedures.reply import Reply

logger = logging.getLogger(__name__)

#: Confidence (0-1, see bot/faq/search.py) from which the best entry is given as the answer.
THRESHOLD = 0.15
#: Confidence from which another entry is offered as a candidate button.
CANDIDATE_MIN = 0.10
#: At most this many other candidates (buttons) under an answer.
MAX_OTHERS = 2
#: Button titles longer than this are cut (LINE quick replies show about 20 characters).
MAX_TITLE_CHARS = 40
#: ``Reply.resolved`` of an FAQ answer.
RESOLVED_FAQ = "faq"


def button_payload(entry_id: str) -> str:
    """Rasa payload selecting one entry: ``/ask_faq{"faq_id": "12"}``."""
    return "/ask_faq" + json.dumps({"faq_id": str(entry_id)}, ensure_ascii=False)


def _title(question: str) -> str:
    question = " ".join(question.split())
    return question if len(question) <= MAX_TITLE_CHARS else question[: MAX_TITLE_CHARS - 1] + "…"


def _answer_text(entry: FaqEntry, templates: Templates) -> str:
    lines = [templates.render("utter_faq_answer", question=entry.question, answer=entry.answer)]
    if entry.department:
        lines.append(templates.render("utter_faq_department", department=entry.department))
    if entry.url:
        lines.append(templates.render("utter_faq_link", url=entry.url))
    return "\n".join(lines)


def _answer_messages(entry: FaqEntry, others: List[FaqEntry], templates: Templates) -> List[Dict]:
    messages: List[Dict] = [{"text": _answer_text(entry, templates)}]
    if others:
        messages.append(
            {
                "text": templates.render("utter_faq_other_candidates"),
                "buttons": [{"title": _title(o.question), "payload": button_payload(o.id)} for o in others],
            }
        )
    return messages


def faq_reply(index: FaqIndex, text: str, templates: Templates, city: Optional[City] = None) -> Optional[Reply]:
    """Answer ``text`` from the FAQ, or None when nothing in it fits well enough.

    Args:
        index: the city's FAQ index.
        text: the citizen's message.
        templates: text fragments (domain.yml responses utter_faq_*).
        city: municipality profile (unused for an answer; kept so all reply functions look alike).
    Returns:
        Reply with resolved="faq": message 1 = the best entry's answer (with 担当課 and URL when
        the entry has them), message 2 (only when there are some) = up to :data:`MAX_OTHERS` other
        entries with confidence >= :data:`CANDIDATE_MIN` as buttons. None when the best confidence
        is below :data:`THRESHOLD`.
    Raises:
        TemplateError: a utter_faq_* fragment is missing in domain.yml.
    """
    hits: List[Hit] = index.search(text, k=MAX_OTHERS + 1)
    if not hits or hits[0].confidence < THRESHOLD:
        return None
    best = hits[0].entry
    others = [h.entry for h in hits[1:] if h.confidence >= CANDIDATE_MIN]
    return Reply(messages=_answer_messages(best, others, templates), resolved=RESOLVED_FAQ)


def faq_entry_reply(index: FaqIndex, entry_id: str, templates: Templates) -> Optional[Reply]:
    """The answer of the entry ``entry_id`` (chosen with a button), or None if there is no such entry."""
    entry = index.get(str(entry_id))
    if entry is None:
        return None
    return Reply(messages=_answer_messages(entry, [], templates), resolved=RESOLVED_FAQ)


def not_known_reply(templates: Templates, city: City) -> Reply:
    """「申し訳ありません、分かりません」 with the city's contact and website (utter_faq_not_found)."""
    text = templates.render("utter_faq_not_found", city_contact=city.contact_text, city_website=city.website)
    return Reply(messages=[{"text": text}], resolved="none")


@lru_cache(maxsize=8)
def city_faq_index(city_id: str, cities_dir: Path = CITIES_DIR) -> Optional[FaqIndex]:
    """The FAQ index of ``procedures/cities/<city_id>/faq.csv`` (or faq.xlsx), built on first use
    and kept for the process; None when the city has no FAQ file.

    Raises:
        FaqFormatError: the file is invalid (not cached: a fixed file is read on the next call).
    """
    path = find_faq_file(Path(cities_dir) / city_id)
    if path is None:
        return None
    index = FaqIndex(load_faq(path))
    logger.info("FAQ index built: %s (%d entries)", path, len(index))
    return index


def faq_or(reply: Reply, text: str, templates: Templates, city: City) -> Reply:
    """For the procedure action: when ``reply`` found nothing (resolved == "none"), the FAQ answer
    for ``text`` if one fits, else ``reply`` unchanged. A broken or missing FAQ is logged, never
    raised: the citizen still gets ``reply`` (apology + contact)."""
    if reply.resolved != "none" or not text.strip():
        return reply
    try:
        index = city_faq_index(city.id)
        found = faq_reply(index, text, templates, city) if index is not None else None
    except Exception:
        logger.exception("FAQ lookup failed for city %s", city.id)
        return reply
    return found or reply
