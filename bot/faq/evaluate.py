"""Evaluate FAQ retrieval on any FAQ set (FAQ検索の評価).

Inputs (the issue's format): corpus ``{doc_id: "Question: ...\\nAnswer: ..."}`` (or the 汎用FAQ array),
queries ``{query_id: text}``, qrels ``{query_id: {doc_id: grade}}`` with grade 2 = answers the
query, 1 = related.

Metrics (standard IR definitions, e.g. Manning, Raghavan & Schütze, "Introduction to Information
Retrieval", ch. 8):
- Hit@k (k = 1, 3, 5, 10): share of queries with a grade-2 document whose top k hold one;
- MRR: mean over the same queries of 1 / rank of the first grade-2 document (0 if not in the top 10);
- Recall@10: mean over queries with a document of grade >= 1 of the share of those documents in
  the top 10;
- p50_ms / p95_ms: median and 95th percentile of the wall time per query (milliseconds, search
  only; the index is built before timing).
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

from bot.faq.data import corpus_entries, load_corpus
from bot.faq.search import FaqIndex, SearchConfig

DEPTH = 10
HIT_KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Metrics:
    """Evaluation result: shares in 0-1, latencies in ms, ``queries`` = number of queries run."""

    hit1: float
    hit3: float
    hit5: float
    hit10: float
    mrr: float
    recall10: float
    p50_ms: float
    p95_ms: float
    queries: int

    def as_json(self) -> Dict[str, Union[float, int]]:
        """The issue's JSON keys: hit@1, hit@3, hit@5, hit@10, mrr, recall@10, p50_ms, p95_ms, queries."""
        d = asdict(self)
        return {
            "hit@1": round(d["hit1"], 4),
            "hit@3": round(d["hit3"], 4),
            "hit@5": round(d["hit5"], 4),
            "hit@10": round(d["hit10"], 4),
            "mrr": round(d["mrr"], 4),
            "recall@10": round(d["recall10"], 4),
            "p50_ms": round(d["p50_ms"], 2),
            "p95_ms": round(d["p95_ms"], 2),
            "queries": d["queries"],
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks (0.0 for [])."""
    if not values:
        return 0.0
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def score_rankings(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], times_ms: Sequence[float]
) -> Metrics:
    """Metrics of ranked doc ids per query against the judgments (see module docstring)."""
    hits = {k: 0 for k in HIT_KS}
    rr_sum = 0.0
    answered = 0
    recall_sum = 0.0
    related = 0
    for qid, ranked in rankings.items():
        judged = {str(d): int(g) for d, g in (qrels.get(qid) or {}).items()}
        top = list(ranked)[:DEPTH]
        if any(g >= 2 for g in judged.values()):
            answered += 1
            first = next((i for i, d in enumerate(top, start=1) if judged.get(d, 0) >= 2), None)
            if first:
                rr_sum += 1.0 / first
                for k in HIT_KS:
                    hits[k] += first <= k
        relevant = {d for d, g in judged.items() if g >= 1}
        if relevant:
            related += 1
            recall_sum += len(relevant & set(top)) / len(relevant)
    share = (lambda n: n / answered) if answered else (lambda n: 0.0)
    return Metrics(
        hit1=share(hits[1]),
        hit3=share(hits[3]),
        hit5=share(hits[5]),
        hit10=share(hits[10]),
        mrr=share(rr_sum),
        recall10=recall_sum / related if related else 0.0,
        p50_ms=percentile(times_ms, 50),
        p95_ms=percentile(times_ms, 95),
        queries=len(rankings),
    )


def run(index: FaqIndex, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]) -> Metrics:
    """Answer every query with ``index`` (top 10) and score the rankings."""
    index.search("ウォームアップ")  # first call loads the Sudachi tokenizer; keep it out of the timing
    rankings: Dict[str, List[str]] = {}
    times: List[float] = []
    for qid, text in queries.items():
        start = time.perf_counter()
        hits = index.search(text, k=DEPTH)
        times.append((time.perf_counter() - start) * 1000)
        rankings[qid] = [h.entry.id for h in hits]
    return score_rankings(rankings, qrels, times)


def evaluate_files(
    corpus: Union[str, Path], queries: Union[str, Path], qrels: Union[str, Path], config: Optional[SearchConfig] = None
) -> Metrics:
    """Index ``corpus``, run ``queries`` and score against ``qrels`` (file paths, JSON).

    Raises:
        ValueError: a file is not in the expected format; OSError: unreadable file.
    """
    docs = load_corpus(corpus)
    query_map = json.loads(Path(queries).read_text(encoding="utf-8"))
    qrel_map = json.loads(Path(qrels).read_text(encoding="utf-8"))
    if not isinstance(query_map, dict) or not isinstance(qrel_map, dict):
        raise ValueError("queries must be {query_id: text} and qrels {query_id: {doc_id: grade}}")
    index = FaqIndex(corpus_entries(docs), config)
    return run(index, {str(k): str(v) for k, v in query_map.items()}, qrel_map)
