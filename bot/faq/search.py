"""Retrieve FAQ entries for a citizen's message (FAQ検索): field-weighted BM25 over Sudachi terms.

Each entry is indexed as two fields, 質問 (question) and 回答 (answer). Terms of a text are the
Sudachi normalized forms (正規化表記) of its content words (split mode C, then A for the parts of
long compounds) plus character n-grams of the NFKC text that hold no hiragana (kanji, katakana,
Latin, digits), so 児童手当 meets 手当 and typos still share most n-grams. The query is first
expanded with a small synonym list kept as data (``synonyms.yml``: インフル → インフルエンザ, 国保 →
国民健康保険 …). The score of an entry is ``Σ_field weight × BM25(field)``; the default then lets
the best 3 entries pass part of their score to the entries most similar to them, which reorders
places 4-10 only (:meth:`FaqIndex.search`; Recall@10 on the development set 0.733 → 0.791).

``confidence`` (0-1) is the share of the query's information the entry's fields hold: the score
divided by the score an entry would get holding every query term in every field with maximum term
frequency (``Σ_field weight × Σ_term idf × (k1 + 1)``, + δ for BM25+); terms the FAQ never uses count with the
highest idf, so a message about something the FAQ does not cover gets a low confidence.

Variants compared with ``python -m bot.faq evaluate --variant`` are the named :data:`VARIANTS`;
the default was chosen by those measurements (bot/faq/README.md). Measured and not chosen (dev
Recall@10 did not rise, or rose on dev and fell on test): pseudo-relevance feedback (RM3, alone
or fused with the original ranking by RRF), the answer's first sentence as a field or appended to
the question, BM25+ / BM25L, a separate b for the answer, and Sudachi synonym groups.

Scoring uses BM25Okapi's statistics (idf, lengths) with postings per term, so a query costs
time in the number of entries holding its terms (about 0.3-0.8 ms per query on 661 entries).

Algorithm sources: Okapi BM25 (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework:
BM25 and Beyond") with idf and lengths from the rank_bm25 package (BM25Okapi, k1=1.5, b=0.75,
negative idf floored at 0.25 × mean idf, and here at least :data:`MIN_IDF`) and the same term
formula as its ``get_scores`` computed over postings (:func:`_tf_part`); field weighting after BM25F's idea of per-field weights (ibid. §3.5)
as a weighted sum of per-field scores; Sudachi split modes and normalized forms
(WorksApplications SudachiPy); BM25+ and BM25L (Lv & Zhai 2011); RM3 (Lavrenko &
Croft 2001; Abdul-Jaleel et al. 2004), reciprocal rank fusion (Cormack et al. 2009) and score
regularization (Diaz 2005), see :meth:`FaqIndex.search`.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
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
        k1, b: BM25 parameters; ``answer_b`` (None = ``b``) is b for the answer fields only.
        model: term-frequency normalization: "okapi" (BM25), "plus" (BM25+, + ``delta`` × idf
            for every matched term) or "l" (BM25L, shifts the length-normalized tf by ``delta``);
            all three use BM25Okapi's idf (Lv & Zhai 2011, see :func:`_tf_part`).
        delta: δ of BM25+ / BM25L (Lv & Zhai's defaults: 1.0 and 0.5).
        lead_weight: weight of a third field holding the answer's first sentence (回答の1文目,
            :func:`lead_sentence`; 0 = no such field).
        lead_in_question: append the answer's first sentence to the question field (document
            expansion) instead.
        prf_docs, prf_terms, prf_weight: pseudo-relevance feedback (RM3, see
            :meth:`FaqIndex.search`): the number of top entries read (0 = off), the number of
            expansion terms kept, and λ, the expansion model's share of the final query (0-1).
        prf_fusion_k: 0 = rank by the feedback query's score; k > 0 = fuse the rankings of the
            original and the feedback query by reciprocal rank fusion with this k.
        neighbor_weight: α of score regularization over similar entries (0 = off; see
            :meth:`FaqIndex.search`): the share of an entry's final score that comes from the
            best entries it is similar to.
        neighbor_count: similar entries kept per entry (the k of the k-nearest-neighbour graph).
        neighbor_sources: how many of the best entries pass their score on to their neighbours.
        neighbor_answer_share: weight of the answer's TF-IDF vector (0-1; the question's: 1 - it)
            in the mix whose dot product says how similar two entries are (:func:`neighbor_graph`).
        neighbor_keep: the best entries before regularization that keep their places (3 = the
            answer and the :data:`bot.faq.answer.MAX_OTHERS` candidates the chat shows).
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
    answer_b: Optional[float] = None
    model: str = "okapi"
    delta: float = 1.0
    lead_weight: float = 0.0
    lead_in_question: bool = False
    prf_docs: int = 0
    prf_terms: int = 10
    prf_weight: float = 0.5
    prf_fusion_k: int = 0
    neighbor_weight: float = 0.0
    neighbor_count: int = 3
    neighbor_sources: int = 3
    neighbor_answer_share: float = 0.5
    neighbor_keep: int = 3


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
    # measured 2026-11 for issue 5 (Recall@10), none chosen (bot/faq/README.md):
    "bm25-lemma-bigram-fields-syn-rm3": SearchConfig(prf_docs=3, prf_terms=10, prf_weight=0.5),
    "bm25-lemma-bigram-fields-syn-rm3-rrf": SearchConfig(prf_docs=3, prf_terms=10, prf_weight=0.5, prf_fusion_k=10),
    "bm25-lemma-bigram-fields-syn-rm3-rrf60": SearchConfig(prf_docs=3, prf_terms=10, prf_weight=0.5, prf_fusion_k=60),
    "bm25-lemma-bigram-fields-syn-lead": SearchConfig(lead_weight=0.2),
    "bm25-lemma-bigram-fields-syn-qlead": SearchConfig(lead_in_question=True),
    "bm25plus-lemma-bigram-fields-syn": SearchConfig(model="plus", delta=1.0),
    "bm25l-lemma-bigram-fields-syn": SearchConfig(model="l", delta=0.5),
    "bm25-lemma-bigram-fields-syn-answer-b0.5": SearchConfig(answer_b=0.5),
    # chosen 2026-11-22: the best 3 entries pass 30 % of their score to their 3 most similar
    # entries, which may move up into places 4-10 (bot/faq/README.md)
    "bm25-lemma-bigram-fields-syn-nb": SearchConfig(neighbor_weight=0.3),
}
DEFAULT_VARIANT = "bm25-lemma-bigram-fields-syn-nb"


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


def lead_sentence(answer: str) -> str:
    """The answer's first sentence (回答の1文目): text up to the first 。 or line break, or "".

    >>> lead_sentence("窓口で申請します。郵送もできます。")
    '窓口で申請します。'
    """
    for line in answer.splitlines():
        line = line.strip()
        if line:
            end = line.find("。")
            return line if end < 0 else line[: end + 1]
    return ""


def _tf_part(tf: np.ndarray, norm: np.ndarray, config: SearchConfig) -> np.ndarray:
    """The term-frequency factor of one term's score (to be multiplied by its idf).

    ``tf`` = occurrences per entry, ``norm`` = 1 - b + b × length / average length.
    okapi: tf(k1+1) / (tf + k1·norm) (Robertson & Zaragoza 2009); plus: the same + δ where tf > 0
    (BM25+, Lv & Zhai 2011, "Lower-bounding term frequency normalization", CIKM); l: c = tf/norm,
    (k1+1)(c+δ) / (k1+c+δ) where tf > 0 (BM25L, Lv & Zhai 2011, "When documents are very long,
    BM25 fails!", SIGIR). rank_bm25's BM25Plus/BM25L are not used because they add δ to entries
    without the term (BM25Plus) and multiply by tf once more (BM25L).
    """
    k1 = config.k1
    if config.model == "l":
        c = tf / norm + config.delta
        return (k1 + 1) * c / (k1 + c)
    part = tf * (k1 + 1) / (tf + k1 * norm)
    return part + config.delta if config.model == "plus" else part


class _Field:
    """One indexed field: BM25Okapi statistics (idf, lengths) plus postings for fast scoring."""

    def __init__(self, weight: float, docs: List[List[str]], config: SearchConfig, b: float):
        self.weight = weight
        self.config = config
        self.bm25 = BM25Okapi(docs, k1=config.k1, b=b)
        for term, idf in self.bm25.idf.items():
            if idf < MIN_IDF:
                self.bm25.idf[term] = MIN_IDF
        self.max_idf = max(self.bm25.idf.values(), default=0.0)
        lengths = np.asarray(self.bm25.doc_len, dtype=float)
        self.norm = 1 - b + b * lengths / (self.bm25.avgdl or 1.0)
        postings: Dict[str, Tuple[List[int], List[int]]] = {}
        for i, freqs in enumerate(self.bm25.doc_freqs):
            for term, tf in freqs.items():
                ids, tfs = postings.setdefault(term, ([], []))
                ids.append(i)
                tfs.append(tf)
        self.postings = {t: (np.asarray(ids), np.asarray(tfs, dtype=float)) for t, (ids, tfs) in postings.items()}
        self.size = len(docs)
        # highest tf factor a term can get: okapi/l → k1+1 (as tf grows), plus → k1+1+δ
        self.max_tf_part = config.k1 + 1 + (config.delta if config.model == "plus" else 0.0)

    def scores(self, term: str) -> np.ndarray:
        """weight × BM25 score of every entry for one term (shape: entries)."""
        out = np.zeros(self.size)
        posting = self.postings.get(term)
        if posting is not None:
            ids, tfs = posting
            out[ids] = self.weight * self.bm25.idf[term] * _tf_part(tfs, self.norm[ids], self.config)
        return out

    def best(self, term: str) -> float:
        """Highest weighted score a term can give (terms this field never uses: the highest idf)."""
        return self.weight * self.max_tf_part * self.bm25.idf.get(term, self.max_idf)


def _rrf(runs: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Reciprocal rank fusion: Σ_run 1 / (k + rank) over the runs where the entry scores above 0
    (rank 1 = best; Cormack, Clarke & Büttcher 2009, "Reciprocal Rank Fusion outperforms
    Condorcet and individual rank learning methods", SIGIR; they use k = 60)."""
    fused = np.zeros(len(runs[0]))
    for scores in runs:
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(len(scores))
        ranks[order] = np.arange(1, len(scores) + 1)
        fused += np.where(scores > 0, 1.0 / (k + ranks), 0.0)
    return fused


def _tfidf(docs: Sequence[Sequence[str]]) -> List[Dict[str, float]]:
    """Unit-length TF-IDF vectors, (1 + ln tf) × ln(N / df) (SMART "ltc", Salton & Buckley 1988)."""
    counts = [Counter(d) for d in docs]
    df = Counter(t for c in counts for t in c)
    n = len(docs)
    vectors = []
    for c in counts:
        v = {t: (1 + np.log(tf)) * np.log(n / df[t]) for t, tf in c.items()}
        norm = float(np.sqrt(sum(w * w for w in v.values())))
        vectors.append({t: w / norm for t, w in v.items()} if norm > 0 else {})
    return vectors


def neighbor_graph(
    question_docs: Sequence[Sequence[str]], answer_docs: Sequence[Sequence[str]], count: int, answer_share: float
) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The ``count`` entries most similar to each entry (k-nearest-neighbour graph).

    Similarity: dot product of v = (1 - answer_share) × q + answer_share × a, where q and a are the
    unit TF-IDF vectors (:func:`_tfidf`) of the entry's question and answer terms in one
    vocabulary. Computed over postings (one ``np.bincount`` per entry), so memory stays linear
    in the index size (0.2 s for 661 entries, 1.9 s for 3,305 on a 2-core machine).

    Returns:
        Per entry: (neighbour positions, weights summing to 1), best first; entries sharing no
        term with any other get empty arrays.
    """
    n = len(question_docs)
    vectors: List[Dict[str, float]] = []
    for q, a in zip(_tfidf(question_docs), _tfidf(answer_docs)):
        v = {t: (1 - answer_share) * w for t, w in q.items()}
        for t, w in a.items():
            v[t] = v.get(t, 0.0) + answer_share * w
        vectors.append(v)
    postings: Dict[str, Tuple[List[int], List[float]]] = {}
    for i, v in enumerate(vectors):
        for t, w in v.items():
            ids, weights = postings.setdefault(t, ([], []))
            ids.append(i)
            weights.append(w)
    arrays = {t: (np.asarray(ids), np.asarray(ws)) for t, (ids, ws) in postings.items()}
    graph: List[Tuple[np.ndarray, np.ndarray]] = []
    for i, v in enumerate(vectors):
        if not v:
            graph.append((np.zeros(0, dtype=int), np.zeros(0)))
            continue
        ids = np.concatenate([arrays[t][0] for t in v])
        weights = np.concatenate([w * arrays[t][1] for t, w in v.items()])
        sims = np.bincount(ids, weights=weights, minlength=n)
        sims[i] = 0.0
        best = np.argsort(-sims, kind="stable")[:count]
        best = best[sims[best] > 0]
        total = float(sims[best].sum())
        graph.append((best, sims[best] / total) if total > 0 else (np.zeros(0, dtype=int), np.zeros(0)))
    return graph


class FaqIndex:
    """Search index over FAQ entries; build once per process (about 1 ms per entry, mostly Sudachi).

    Args:
        entries: the FAQ (ids must be unique).
        config: indexing and scoring (default: the chosen variant).
        synonyms: synonym groups for query expansion (default: bot/faq/synonyms.yml).
    Raises:
        ValueError: duplicate entry ids, or an unknown ``config.model``.
    """

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        config: Optional[SearchConfig] = None,
        synonyms: Optional[Sequence[Sequence[str]]] = None,
    ):
        self.config = config or VARIANTS[DEFAULT_VARIANT]
        if self.config.model not in ("okapi", "plus", "l"):
            raise ValueError(f"unknown BM25 model {self.config.model!r}; use okapi, plus or l")
        self.entries: Tuple[FaqEntry, ...] = tuple(entries)
        self._by_id = {e.id: e for e in self.entries}
        if len(self._by_id) != len(self.entries):
            raise ValueError("FAQ entry ids must be unique")
        self._synonyms = tuple(synonyms) if synonyms is not None else (load_synonyms() if self.config.synonyms else ())
        cfg = self.config
        leads = [lead_sentence(e.answer) for e in self.entries]
        questions = [e.question + ("\n" + lead if cfg.lead_in_question and lead else "") for e, lead in zip(self.entries, leads)]
        answer_b = cfg.b if cfg.answer_b is None else cfg.answer_b
        self._fields: List[_Field] = []
        #: question-field terms of each entry, counted (the feedback "documents" of RM3)
        self._feedback: List[Counter] = []
        analyzed: Dict[str, List[List[str]]] = {}
        for name, weight, texts, b in (
            ("question", cfg.question_weight, questions, cfg.b),
            ("answer", cfg.answer_weight, [e.answer for e in self.entries], answer_b),
            ("lead", cfg.lead_weight, leads, answer_b),
        ):
            docs = [analyze(t, cfg) for t in texts] if weight > 0 else []
            analyzed[name] = docs
            if name == "question" and cfg.prf_docs > 0:
                self._feedback = [Counter(d) for d in docs]
            if not docs or not any(docs):
                continue
            self._fields.append(_Field(weight, docs, cfg, b))
        #: per entry: (positions of its most similar entries, weights summing to 1), or [] when off
        self._neighbors: List[Tuple[np.ndarray, np.ndarray]] = []
        if cfg.neighbor_weight > 0 and self.entries:
            empty: List[List[str]] = [[] for _ in self.entries]
            self._neighbors = neighbor_graph(
                analyzed["question"] or empty, analyzed["answer"] or empty, cfg.neighbor_count, cfg.neighbor_answer_share
            )

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

    def _term_scores(self, term: str) -> np.ndarray:
        return sum(f.scores(term) for f in self._fields)

    def _feedback_terms(self, first: np.ndarray) -> Dict[str, float]:
        """RM1 relevance model over the question fields of the best ``prf_docs`` entries:
        P(w|R) = Σ_d P(w|d) × P(d|q), P(w|d) = tf / length, P(d|q) = the entry's share of the
        first-pass score; the ``prf_terms`` most likely terms, renormalized to sum to 1."""
        top = [i for i in np.argsort(-first, kind="stable")[: self.config.prf_docs] if first[i] > 0]
        total = float(sum(first[i] for i in top))
        model: Counter = Counter()
        for i in top:
            doc = self._feedback[i]
            length = sum(doc.values())
            if not length:
                continue
            share = float(first[i]) / total
            for term, tf in doc.items():
                model[term] += share * tf / length
        kept = model.most_common(self.config.prf_terms)
        norm = sum(p for _, p in kept)
        return {t: p / norm for t, p in kept} if norm > 0 else {}

    def search(self, text: str, k: int = 10) -> List[Hit]:
        """The ``k`` best entries for ``text``, best first (entries scoring 0 are left out).

        Scoring: Σ_field weight × BM25 over the query terms. With pseudo-relevance feedback
        (``config.prf_docs`` > 0) the query is then re-weighted as in RM3: each original term
        gets (1 - λ) / (number of terms), each of the ``prf_terms`` best terms of the relevance
        model (:meth:`_feedback_terms`) λ × P(w|R), and entries are scored again with those term
        weights (Lavrenko & Croft 2001, "Relevance-Based Language Models", SIGIR; RM3 =
        interpolation with the original query, Abdul-Jaleel et al. 2004, "UMass at TREC 2004";
        Anserini's defaults are 10 entries, 10 terms, λ = 0.5). ``confidence`` always comes from
        the original query's score, so feedback reorders entries but never makes the bot answer
        a message it would not have answered.

        With ``config.neighbor_weight`` α > 0 the scores are then regularized over the entries'
        similarity graph (:func:`neighbor_graph`): f' = (1 - α) f + α Wᵀ g, where g keeps f of
        the best ``neighbor_sources`` entries only and W's rows are each entry's neighbour
        weights (one step of Diaz 2005, "Regularizing ad hoc retrieval scores", CIKM, which
        spreads scores over a k-nearest-neighbour graph of the documents). Entries on the same
        topic as the best ones move up; FAQs hold many (児童手当の〇〇, 保育料の〇〇). The best
        ``neighbor_keep`` entries of f keep their places (the answer and the 2 candidates the chat
        shows): spreading alone pushed direct answers out of the top 3 (dev Hit@3 0.757 → 0.730).

        Returns:
            Hits with ``score`` (of the final query) and ``confidence`` (see module docstring);
            [] for an empty index or a text without any term.
        """
        terms = self.query_terms(text)
        if not terms or not self._fields:
            return []
        rows = {t: self._term_scores(t) for t in terms}
        first = sum(rows.values())
        best_possible = sum(f.best(t) for f in self._fields for t in terms)
        final = first
        if self.config.prf_docs > 0 and self._feedback and first.max() > 0:
            lam = self.config.prf_weight
            weights = {t: (1 - lam) / len(terms) for t in terms}
            for t, p in self._feedback_terms(first).items():
                weights[t] = weights.get(t, 0.0) + lam * p
                if t not in rows:
                    rows[t] = self._term_scores(t)
            final = sum(w * rows[t] for t, w in weights.items())
            if self.config.prf_fusion_k > 0:
                final = _rrf((first, final), self.config.prf_fusion_k)
        order = np.lexsort((-first, -final))
        if self._neighbors and final.max() > 0:
            kept = order[: self.config.neighbor_keep]
            kept = kept[final[kept] > 0]
            final = self._regularize(final)
            rest = np.lexsort((-first, -final))
            order = np.concatenate((kept, rest[~np.isin(rest, kept)]))
        return [
            Hit(self.entries[i], float(final[i]), min(1.0, float(first[i]) / best_possible) if best_possible > 0 else 0.0)
            for i in order[:k]
            if final[i] > 0
        ]

    def _regularize(self, scores: np.ndarray) -> np.ndarray:
        """(1 - α) × scores + α × what the best ``neighbor_sources`` entries pass to their
        neighbours (each its score × the neighbour's weight, :func:`neighbor_graph`)."""
        alpha = self.config.neighbor_weight
        spread = np.zeros(len(scores))
        for j in np.argsort(-scores, kind="stable")[: self.config.neighbor_sources]:
            ids, weights = self._neighbors[j]
            spread[ids] += scores[j] * weights
        return (1 - alpha) * scores + alpha * spread


def variant(name: str) -> SearchConfig:
    """The named variant's config. Raises KeyError listing the known names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


def with_weights(config: SearchConfig, question: float, answer: float) -> SearchConfig:
    """``config`` with other field weights (for tuning)."""
    return replace(config, question_weight=question, answer_weight=answer)
