"""Find the procedure a citizen means (手続きの特定) from NLU entities and the message text.

Order of evidence, strongest first:
0. the NLU ResponseSelector's choice for the retrieval intent ``ask_procedure/<id>`` (trained on the
   example phrasings in data/nlu/), used where it agrees with the evidence below or where the text
   names no procedure itself;
1. an NLU ``procedure`` entity that names a catalogue id or alias exactly;
2. catalogue aliases found in the text (folded for width, case and kana; the longest match wins where
   matches overlap), also on the Sudachi reading so kana-only text (いんかんしょうめい) matches;
3. a life event or topic keyword (引っ越す, 出産 …, procedures/life_events.yml) → the life event's
   list of procedures, a choice of sub-events (引越し: 市内・市外へ・市外から), or a topic's candidates;
4. fuzzy matching of aliases against the entity or the text (rapidfuzz partial ratio), for typos;
5. the procedure of the conversation so far (the ``procedure`` slot), for follow-up questions.
Where 1-3 leave several candidates, BM25 over each procedure's name, aliases and summary (terms:
Sudachi normalized lemmas and character bigrams) picks one when it leads clearly; otherwise the
citizen is asked back. With no evidence from 1-3, BM25 over the whole catalogue is tried before 4.

Algorithm sources: Sudachi normalized forms and readings (bot/nlu/japanese.py); rapidfuzz
``fuzz.partial_ratio`` (normalized Indel similarity of the best-aligned substring, 0-100); Okapi
BM25 (Robertson & Zaragoza 2009) as implemented by the rank_bm25 package.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process

from bot.nlu.japanese import fold, lemmas, reading
from procedures.catalogue import Catalogue, Procedure, load_life_events

#: Shortest alias (characters) considered for substring and fuzzy matching.
MIN_ALIAS_CHARS = 2
#: Shortest reading (hiragana characters) matched as a substring; shorter ones collide too often.
MIN_READING_CHARS = 4
#: Fuzzy similarity (0-1) from which an alias counts as a candidate, and from which the best one
#: is taken alone when it leads the next by ``FUZZY_MARGIN``.
FUZZY_MIN_READING_CHARS = 5
FUZZY_CANDIDATE = 0.75
FUZZY_ALONE = 0.8
FUZZY_MARGIN = 0.1
MAX_CANDIDATES = 3
#: BM25: the best procedure is taken alone when the runner-up scores at most this share of it.
BM25_LEAD = 0.6
#: BM25 score (sum over query terms) below which a procedure is no evidence at all.
BM25_MIN = 10.0
#: ResponseSelector confidence (0-1) from which its procedure is taken when the text itself names
#: none, and from which it overrides a life-event list it is not on.
SELECTOR_MIN = 0.5
SELECTOR_STRONG = 0.8


def _is_hiragana(ch: str) -> bool:
    return "\u3041" <= ch <= "\u309f"


def terms(text: str) -> List[str]:
    """BM25 terms of ``text``: Sudachi normalized content lemmas plus the character bigrams of the
    NFKC text that hold no hiragana (kanji, katakana, Latin, digits: 住民, 民票, コン …; hiragana
    bigrams are mostly です・ます and particles, which carry no topic)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    bigrams = [folded[i:i + 2] for i in range(len(folded) - 1)]
    return lemmas(text) + [b for b in bigrams if b.isalnum() and not any(_is_hiragana(c) for c in b)]


@dataclass(frozen=True)
class Match:
    """A procedure found for a message, with ``score`` in 0-1 and ``how`` it was found."""

    procedure: Procedure
    score: float
    how: str


@dataclass(frozen=True)
class Identification:
    """Outcome of :func:`ProcedureIndex.identify`.

    ``procedure`` is set when one procedure is meant; otherwise ``candidates`` (at most 3) are to be
    offered as choices; both empty means nothing fits. ``how``: entity, alias, reading, life_event,
    fuzzy, context or none. ``topic`` is the life-event label when candidates came from one.
    ``life_event`` is a life-event key (procedures/life_events.yml) whose procedures are to be
    listed; ``choices`` are sub-event keys to ask back with (e.g. the three kinds of 引越し).
    """

    procedure: Optional[Procedure] = None
    candidates: Tuple[Procedure, ...] = ()
    how: str = "none"
    topic: str = ""
    life_event: str = ""
    choices: Tuple[str, ...] = ()


@dataclass
class _Spans:
    items: List[Tuple[int, int, str]] = field(default_factory=list)

    def add_longest(self, hits: Iterable[Tuple[int, int, str]]) -> None:
        """Keep hits (start, end, id) not contained in a longer kept hit."""
        for start, end, pid in sorted(hits, key=lambda h: h[0] - h[1]):
            if not any(s <= start and end <= e for s, e, _ in self.items):
                self.items.append((start, end, pid))

    def ids(self) -> List[str]:
        seen: List[str] = []
        for _, _, pid in sorted(self.items):
            if pid not in seen:
                seen.append(pid)
        return seen


def _find_all(needle: str, haystack: str) -> Iterable[Tuple[int, int]]:
    start = haystack.find(needle)
    while start >= 0:
        yield start, start + len(needle)
        start = haystack.find(needle, start + 1)


class ProcedureIndex:
    """Alias, reading and fuzzy index over a :class:`Catalogue`. Build once per process (~ms per entry).

    Args:
        catalogue: the city's catalogue.
        life_events: mapping as in procedures/life_events.yml (default: that file).
    """

    def __init__(self, catalogue: Catalogue, life_events: Optional[Dict[str, dict]] = None):
        self.catalogue = catalogue
        self._alias: Dict[str, str] = {}
        self._reading: Dict[str, str] = {}
        for proc in catalogue:
            self._alias[fold(proc.id)] = proc.id
            for name in (proc.name, *proc.aliases):
                key = fold(name)
                if len(key) >= MIN_ALIAS_CHARS:
                    self._alias.setdefault(key, proc.id)
                kana = reading(name)
                if len(kana) >= MIN_READING_CHARS:
                    self._reading.setdefault(kana, proc.id)
        #: Aliases long enough for fuzzy matching (``fuzzy``), and their keys in the same order.
        self._fuzzy_aliases = [(key, pid) for key, pid in self._alias.items() if len(key) >= 3]
        self._fuzzy_keys = [key for key, _ in self._fuzzy_aliases]
        self._ids = [p.id for p in catalogue]
        docs = []
        for proc in catalogue:
            # Kana-only aliases (てんきょ) are left to the reading index: Sudachi splits them into
            # unrelated words (てんき → 天気) that would pollute the BM25 terms.
            written = [a for a in proc.aliases if not all(_is_hiragana(ch) or ch == "ー" for ch in fold(a))]
            text = " ".join([proc.name, proc.name, *written, proc.summary])
            docs.append(terms(text))
        self._bm25 = BM25Okapi(docs)
        self.life_events = load_life_events() if life_events is None else life_events
        self._events: Dict[str, Tuple[str, List[str], List[str]]] = {}
        for key, event in self.life_events.items():
            ids = [pid for pid in event.get("procedures", []) if catalogue.get(pid)]
            keys = [fold(k) for k in event.get("keywords", [])]
            if ids or event.get("tags") or event.get("choices"):
                self._events[key] = (event.get("label", ""), keys, ids)

    # -- exact -------------------------------------------------------------------------------------
    def resolve(self, name: str) -> Optional[Procedure]:
        """The procedure whose id, name or alias is exactly ``name`` (folded; reading too), or None."""
        key = fold(name or "")
        pid = self._alias.get(key) or self._reading.get(key) or self._reading.get(reading(name or ""))
        return self.catalogue.get(pid) if pid else None

    # -- search ------------------------------------------------------------------------------------
    def alias_matches(self, text: str) -> List[Match]:
        """Procedures whose aliases occur in ``text`` (longest non-overlapping hits), in text order."""
        spans = _Spans()
        folded = fold(text)
        spans.add_longest(
            (s, e, pid) for key, pid in self._alias.items() for s, e in _find_all(key, folded)
        )
        ids = spans.ids()
        how = "alias"
        if not ids:
            kana = reading(text)
            spans = _Spans()
            spans.add_longest(
                (s, e, pid) for key, pid in self._reading.items() for s, e in _find_all(key, kana)
            )
            ids, how = spans.ids(), "reading"
        return [Match(self.catalogue.get(pid), 1.0, how) for pid in ids]

    def life_event(self, text: str) -> Optional[str]:
        """Key of the first life event or topic whose keyword is in ``text``, or None."""
        folded = fold(text)
        words = set(lemmas(text))
        for key, (_, keys, _) in self._events.items():
            if any(k in folded or k in words for k in keys):
                return key
        return None

    def event_procedures(self, key: str) -> List[Procedure]:
        """Procedures of a life event, in the order of their deadline (``deadline_days``, unknown
        last; on a tie the event's ``procedures`` first, then catalogue order): those tagged with
        the event's ``tags`` in the catalogue, or, for a topic, its ``procedures`` list. [] for an
        unknown key."""
        event = self.life_events.get(key) or {}
        tags = set(event.get("tags") or ())
        first = list(event.get("procedures") or ())
        if tags:
            procs = [p for p in self.catalogue if tags & set(p.life_events)]
            # Deadline first; on the same deadline, the event's main procedures (its `procedures`).
            return sorted(procs, key=lambda p: (p.deadline_days is None, p.deadline_days or 0,
                                                first.index(p.id) if p.id in first else len(first)))
        return [self.catalogue.get(pid) for pid in event.get("procedures", []) if self.catalogue.get(pid)]

    def _event_result(self, key: str, how: str) -> Identification:
        """Ask back with sub-events, list a life event's procedures, or offer a topic's candidates."""
        event = self.life_events[key]
        label = event.get("label", "")
        if event.get("choices"):
            return Identification(choices=tuple(event["choices"]), how=how, topic=label)
        if event.get("tags"):
            return Identification(life_event=key, how=how, topic=label)
        procs = self.event_procedures(key)
        return Identification(candidates=tuple(procs[:MAX_CANDIDATES]), how=how, topic=label)

    def fuzzy(self, text: str) -> List[Match]:
        """Procedures ranked by the best fuzzy alias similarity (0-1) with ``text``; only >= 0.75."""
        folded = fold(text)
        kana = reading(text)
        best: Dict[str, float] = {}
        # One rapidfuzz ``cdist`` call per index scores every key in C (same partial_ratio values,
        # float64). ``score_cutoff``: a key below FUZZY_CANDIDATE cannot be returned (the length
        # penalty only lowers a score), so rapidfuzz may skip it early (scored 0). Same result as
        # one ``fuzz.partial_ratio`` per key, 4.3 → 2.4 ms per call on average (measured over the
        # questions in tests/data/procedure_questions.yml).
        cutoff = FUZZY_CANDIDATE * 100
        scores = process.cdist([folded], self._fuzzy_keys, scorer=fuzz.partial_ratio, dtype=np.float64,
                               score_cutoff=cutoff)[0]
        for (key, pid), raw in zip(self._fuzzy_aliases, scores.tolist()):
            score = raw / 100.0
            # Penalise aliases much longer than the text: partial_ratio aligns the shorter string.
            if len(key) > len(folded):
                score *= len(folded) / len(key)
            best[pid] = max(best.get(pid, 0.0), score)
        # Short readings (てんきょ) align with ordinary words (てんき) too easily.
        readings = [(key, pid) for key, pid in self._reading.items() if FUZZY_MIN_READING_CHARS <= len(key) <= len(kana)]
        if readings:
            scores = process.cdist([kana], [key for key, _ in readings], scorer=fuzz.partial_ratio, dtype=np.float64,
                               score_cutoff=cutoff)[0]
            for (_, pid), raw in zip(readings, scores.tolist()):
                best[pid] = max(best.get(pid, 0.0), raw / 100.0)
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        return [Match(self.catalogue.get(pid), s, "fuzzy") for pid, s in ranked if s >= FUZZY_CANDIDATE]

    def rank(self, text: str, among: Optional[Sequence[Procedure]] = None) -> List[Match]:
        """Procedures by BM25 score of ``text`` (best first), all or only ``among``; score 0 dropped."""
        scores = self._bm25.get_scores(terms(text))
        allowed = {p.id for p in among} if among is not None else None
        ranked = sorted(
            ((pid, float(sc)) for pid, sc in zip(self._ids, scores) if allowed is None or pid in allowed),
            key=lambda kv: -kv[1],
        )
        return [Match(self.catalogue.get(pid), sc, "bm25") for pid, sc in ranked if sc > 0]

    def search(self, query: str, limit: int = 20) -> List[Procedure]:
        """Free-text search (``GET /api/procedures?q=``): alias hits first, then BM25, then fuzzy.

        Returns at most ``limit`` procedures, best first, without duplicates ([] when nothing fits).
        """
        found: List[Procedure] = []
        ranked = [m for m in self.rank(query) if m.score >= BM25_MIN / 2]
        for m in [*self.alias_matches(query), *ranked, *self.fuzzy(query)]:
            if m.procedure.id not in {p.id for p in found}:
                found.append(m.procedure)
        return found[:limit]

    def _pick(self, text: str, candidates: Sequence[Procedure], how: str, topic: str = "") -> Identification:
        """One of ``candidates`` when BM25 on ``text`` makes it lead clearly; else ask back with them."""
        if len(candidates) == 1:
            return Identification(procedure=candidates[0], how=how, topic=topic)
        ranked = self.rank(text, candidates)
        if ranked and ranked[0].score >= BM25_MIN:
            second = ranked[1].score if len(ranked) > 1 else 0.0
            if second <= BM25_LEAD * ranked[0].score:
                return Identification(procedure=ranked[0].procedure, how=f"{how}+bm25", topic=topic)
        ranked_ids = {m.procedure.id for m in ranked}
        order = [m.procedure for m in ranked] + [p for p in candidates if p.id not in ranked_ids]
        return Identification(candidates=tuple(order[:MAX_CANDIDATES]), how=how, topic=topic)

    def identify(
        self,
        text: str,
        entity_values: Sequence[str] = (),
        current: Optional[str] = None,
        predicted: Optional[Tuple[str, float]] = None,
        life_event: Optional[str] = None,
    ) -> Identification:
        """Decide which procedure a message is about (see the module docstring for the order).

        Args:
            text: the citizen's message as written.
            entity_values: values of NLU ``procedure`` entities (catalogue ids after synonym mapping,
                or the raw text).
            current: the procedure id of the conversation so far (slot), used when nothing else fits.
            predicted: (key, confidence 0-1) of the ResponseSelector for ``ask_procedure/<key>``;
                key is a procedure id or a life-event id of procedures/life_events.yml.
            life_event: a life-event key chosen explicitly (button payload entity ``life_event``).
        Returns:
            An :class:`Identification`.
        """
        if life_event in self._events:
            return self._event_result(life_event, "life_event")
        key, confidence = predicted if predicted else ("", 0.0)
        chosen = self.catalogue.get(key) if confidence >= SELECTOR_MIN else None
        evidence: List[Procedure] = []
        unresolved = False
        for value in entity_values:
            proc = self.resolve(value)
            unresolved = unresolved or proc is None
            if proc and proc not in evidence:
                evidence.append(proc)
        matches = self.alias_matches(text)
        for m in matches:
            if m.procedure not in evidence:
                evidence.append(m.procedure)
        if evidence:
            how = "entity" if entity_values and not unresolved else (matches[0].how if matches else "entity")
            if chosen and (chosen in evidence or (unresolved and confidence >= SELECTOR_STRONG)):
                return Identification(procedure=chosen, how=f"{how}+selector")
            return self._pick(text, evidence, how)

        if key in self._events and confidence >= SELECTOR_MIN:
            # The selector says the citizen names only a life event or topic.
            return self._event_result(key, "selector")
        event = self.life_event(text)
        event_procs = self.event_procedures(event) if event else []
        if chosen and (not event or chosen in event_procs or confidence >= SELECTOR_STRONG):
            return Identification(procedure=chosen, how="selector")
        if event:
            found = self._pick(text, event_procs, "life_event") if event_procs else Identification()
            return found if found.procedure else self._event_result(event, "life_event")

        ranked = self.rank(text)
        if ranked and ranked[0].score >= BM25_MIN:
            second = ranked[1].score if len(ranked) > 1 else 0.0
            if second <= BM25_LEAD * ranked[0].score:
                return Identification(procedure=ranked[0].procedure, how="bm25")

        fuzzy: List[Match] = []
        for source in [v for v in entity_values if len(v) >= 3] + [text]:
            fuzzy = self.fuzzy(source)
            if fuzzy:
                break
        if fuzzy:
            top = fuzzy[0]
            second = fuzzy[1].score if len(fuzzy) > 1 else 0.0
            if top.score >= FUZZY_ALONE and top.score - second >= FUZZY_MARGIN:
                return Identification(procedure=top.procedure, how="fuzzy")
        # A follow-up (「手数料は？」) keeps the procedure of the conversation before weak guesses.
        if current and self.catalogue.get(current):
            return Identification(procedure=self.catalogue.get(current), how="context")
        if fuzzy:
            return Identification(candidates=tuple(m.procedure for m in fuzzy[:MAX_CANDIDATES]), how="fuzzy")
        if ranked and ranked[0].score >= BM25_MIN:
            return Identification(candidates=tuple(m.procedure for m in ranked[:MAX_CANDIDATES]), how="bm25")
        return Identification()
