"""Retrieve FAQ entries for a citizen's message (FAQ検索): field-weighted BM25 over Sudachi terms.

Each entry is indexed as two fields, 質問 (question) and 回答 (answer). Terms of a text are the
Sudachi normalized forms (正規化表記) of its content words (split mode C, then A for the parts of
long compounds) plus character n-grams of the NFKC text that hold no hiragana (kanji, katakana,
Latin, digits), so 児童手当 meets 手当 and typos still share most n-grams. The query is first
expanded with a small synonym list kept as data (``synonyms.yml``: インフル → インフルエンザ, 国保 →
国民健康保険 …). The score of an entry is ``Σ_field weight × BM25(field)``.

``confidence`` (0-1) is the share of the query's information the entry's fields hold: the score
divided by the score an entry would get holding every query term in every field with maximum term
frequency (``Σ_field weight × Σ_term idf × (k1 + 1)``); terms the FAQ never uses count with the
highest idf, so a message about something the FAQ does not cover gets a low confidence.

Variants compared with ``python -m bot.faq evaluate --variant`` are the named :data:`VARIANTS`;
the default was chosen by those measurements (bot/faq/README.md).

Algorithm sources: Okapi BM25 (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework:
BM25 and Beyond") as implemented by the rank_bm25 package (BM25Okapi, k1=1.5, b=0.75, negative idf
floored at 0.25 × mean idf, and here at least :data:`MIN_IDF`); field weighting after BM25F's idea of per-field weights (ibid. §3.5)
as a weighted sum of per-field scores; Sudachi split modes and normalized forms (WorksApplications
SudachiPy).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import yaml
from rank_bm25 import BM25Okapi

from bot.faq.data import FaqEntry
from bot.nlu.japanese import fold, tokenize

SYNONYMS_FILE = Path(__file__).resolve().parent / "synonyms.yml"
_SKIP_POS = {"助詞", "助動詞", "補助記号", "空白", "記号"}
#: Smallest idf a term keeps. BM25Okapi gives terms found in half of the entries or more an idf of
#: 0 or below (and all terms of a 1-2 entry FAQ), which would make a small FAQ unsearchable.
MIN_IDF = 0.01


@dataclass(frozen=True)
class SearchConfig:
    """How entries are indexed and scored.

    Attributes:
        question_weight, answer_weight: field weights (0 leaves the field out).
        lemmas: Sudachi normalized forms of content words; ``split_a`` adds the mode-A split of
            long (mode-C) words.
        ngrams: character n-gram sizes over the no-hiragana parts (() = none).
        readings: add character trigrams of the content words' readings (読み, in hiragana), so
            kana-only messages (げんきょうとどけ) meet the kanji text.
        synonyms: expand the query with the synonym list.
        k1, b: BM25 parameters.
    """

    question_weight: float = 1.0
    answer_weight: float = 0.2
    lemmas: bool = True
    split_a: bool = True
    ngrams: Tuple[int, ...] = (2,)
    readings: bool = False
    synonyms: bool = True
    k1: float = 1.5
    b: float = 0.75


#: Named variants measured with the evaluate command (see bot/faq/README.md for the table).
VARIANTS: Dict[str, SearchConfig] = {
    "bm25-lemma": SearchConfig(question_weight=1.0, answer_weight=1.0, split_a=False, ngrams=(), synonyms=False),
    "bm25-lemma-fields": SearchConfig(split_a=False, ngrams=(), synonyms=False),
    "bm25-lemma-a-fields": SearchConfig(ngrams=(), synonyms=False),
    "bm25-bigram-fields": SearchConfig(lemmas=False, split_a=False, synonyms=False),
    "bm25-lemma-bigram": SearchConfig(question_weight=1.0, answer_weight=1.0, synonyms=False),
    "bm25-lemma-bigram-fields": SearchConfig(synonyms=False),
    "bm25-lemma-bigram-trigram-fields": SearchConfig(ngrams=(2, 3), synonyms=False),
    "bm25-lemma-bigram-fields-syn": SearchConfig(),
    "bm25-lemma-bigram-reading-fields-syn": SearchConfig(readings=True),
}
DEFAULT_VARIANT = "bm25-lemma-bigram-fields-syn"


def _is_hiragana(ch: str) -> bool:
    return "\u3041" <= ch <= "\u309f"


def _ngrams(text: str, sizes: Sequence[int]) -> List[str]:
    """Character n-grams of the NFKC, lower-cased ``text`` made only of letters/digits without
    hiragana (hiragana n-grams are mostly です・ます and particles)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    out: List[str] = []
    for n in sizes:
        for i in range(len(folded) - n + 1):
            gram = folded[i:i + n]
            if gram.isalnum() and not any(_is_hiragana(c) for c in gram):
                out.append(gram)
    return out


def analyze(text: str, config: SearchConfig) -> List[str]:
    """Index terms of ``text`` under ``config`` (lemmas prefixed ``w:``, n-grams ``c:`` so the
    two kinds never collide)."""
    out: List[str] = []
    if config.lemmas:
        for m in tokenize(text, "C"):
            if m.pos in _SKIP_POS:
                continue
            out.append("w:" + fold(m.normalized))
            if config.split_a and len(m.surface) > 2:
                parts = [p for p in tokenize(m.surface, "A") if p.pos not in _SKIP_POS]
                if len(parts) > 1:
                    out.extend("w:" + fold(p.normalized) for p in parts)
    out.extend("c:" + g for g in _ngrams(text, config.ngrams))
    if config.readings:
        for m in tokenize(text, "C"):
            if m.pos in _SKIP_POS:
                continue
            kana = fold(m.reading)
            out.extend("r:" + kana[i:i + 3] for i in range(len(kana) - 2))
    return out


@lru_cache(maxsize=4)
def load_synonyms(path: Path = SYNONYMS_FILE) -> Tuple[Tuple[str, ...], ...]:
    """Synonym groups from a YAML list of lists (each group: words meaning the same thing for FAQ
    search, e.g. [インフル, インフルエンザ]). Raises ValueError on another shape."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    if not isinstance(data, list) or not all(isinstance(g, list) and len(g) >= 2 for g in data):
        raise ValueError(f"{path}: expected a list of lists of at least 2 words")
    return tuple(tuple(str(w) for w in group) for group in data)


def expand(text: str, groups: Sequence[Sequence[str]]) -> str:
    """``text`` followed by the other members of every synonym group one of whose words it
    contains (compared after :func:`bot.nlu.japanese.fold`)."""
    folded = fold(text)
    extra: List[str] = []
    for group in groups:
        if any(fold(w) in folded for w in group):
            extra.extend(w for w in group if fold(w) not in folded)
    return text if not extra else text + " " + " ".join(extra)


@dataclass(frozen=True)
class Hit:
    """One retrieved entry: ``score`` (weighted BM25, unbounded) and ``confidence`` (0-1)."""

    entry: FaqEntry
    score: float
    confidence: float


@dataclass
class _Field:
    weight: float
    bm25: Optional[BM25Okapi]
    max_idf: float = 0.0


class FaqIndex:
    """Search index over FAQ entries; build once per process (about 2 ms per entry).

    Args:
        entries: the FAQ (ids must be unique).
        config: indexing and scoring (default: the chosen variant).
        synonyms: synonym groups for query expansion (default: bot/faq/synonyms.yml).
    Raises:
        ValueError: duplicate entry ids.
    """

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        config: Optional[SearchConfig] = None,
        synonyms: Optional[Sequence[Sequence[str]]] = None,
    ):
        self.config = config or VARIANTS[DEFAULT_VARIANT]
        self.entries: Tuple[FaqEntry, ...] = tuple(entries)
        self._by_id = {e.id: e for e in self.entries}
        if len(self._by_id) != len(self.entries):
            raise ValueError("FAQ entry ids must be unique")
        self._synonyms = tuple(synonyms) if synonyms is not None else (load_synonyms() if self.config.synonyms else ())
        self._fields: List[_Field] = []
        for weight, texts in (
            (self.config.question_weight, [e.question for e in self.entries]),
            (self.config.answer_weight, [e.answer for e in self.entries]),
        ):
            docs = [analyze(t, self.config) for t in texts] if weight > 0 else []
            if not docs or not any(docs):
                continue
            bm25 = BM25Okapi(docs, k1=self.config.k1, b=self.config.b)
            for term, idf in bm25.idf.items():
                if idf < MIN_IDF:
                    bm25.idf[term] = MIN_IDF
            self._fields.append(_Field(weight, bm25, max(bm25.idf.values(), default=0.0)))

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, entry_id: str) -> Optional[FaqEntry]:
        """The entry with this id, or None."""
        return self._by_id.get(str(entry_id))

    def query_terms(self, text: str) -> List[str]:
        """Distinct terms of the (synonym-expanded) query, in order."""
        if self.config.synonyms and self._synonyms:
            text = expand(text, self._synonyms)
        return list(dict.fromkeys(analyze(text, self.config)))

    def search(self, text: str, k: int = 10) -> List[Hit]:
        """The ``k`` best entries for ``text``, best first (entries scoring 0 are left out).

        Returns:
            Hits with ``score`` and ``confidence`` (see module docstring); [] for an empty index
            or a text without any term.
        """
        terms = self.query_terms(text)
        if not terms or not self._fields:
            return []
        total = None
        best_possible = 0.0
        for f in self._fields:
            scores = f.bm25.get_scores(terms) * f.weight
            total = scores if total is None else total + scores
            best_possible += f.weight * (self.config.k1 + 1) * sum(f.bm25.idf.get(t, f.max_idf) for t in terms)
        order = total.argsort()[::-1][:k]
        return [
            Hit(self.entries[i], float(total[i]), min(1.0, float(total[i]) / best_possible) if best_possible > 0 else 0.0)
            for i in order
            if total[i] > 0
        ]


def variant(name: str) -> SearchConfig:
    """The named variant's config. Raises KeyError listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


def with_weights(config: SearchConfig, question: float, answer: float) -> SearchConfig:
    """``config`` with other field weights (for tuning)."""
    return replace(config, question_weight=question, answer_weight=answer)
