"""NLU and end-to-end measurements that print numbers (benchmarks, not tests).

Commands (run from the repository root with the project venv; rasa runs in .venv-rasa):

- ``python -m bot.nlu.evaluate cross-validate configs/sudachi.yml configs/ginza.yml``:
  5-fold cross-validation of each pipeline with ``rasa test nlu --cross-validation``, each example
  always in the same fold (:mod:`bot.nlu.cv_folds`); prints intent
  accuracy / weighted F1 and ``procedure`` entity F1 (DIETClassifier) for each, and the wall time.
- ``python -m bot.nlu.evaluate heldout``: intent accuracy and entity F1 of the trained model on
  tests/data/nlu_heldout.yml (examples not in the training data).
- ``python -m bot.nlu.evaluate questions --url http://127.0.0.1:8000``: asks every question of
  tests/data/procedure_questions.yml through the running gateway's /api/chat and prints the share
  whose procedure was identified correctly (card id, or the candidate buttons for ambiguous ones)
  and the p50/p95 latency in ms of single requests.

Only the standard library and httpx are used here, so the module imports in either venv.
Sources: Rasa 3.6 ``rasa test nlu`` report files (intent_report.json, <extractor>_report.json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RASA = REPO / ".venv-rasa" / "bin" / "rasa"


def _report(out: Path) -> Dict[str, Any]:
    """Numbers from a ``rasa test nlu`` output folder.

    Returns {"intent_accuracy", "intent_f1" (weighted), "selector_accuracy" (which procedure,
    ResponseSelector over ask_procedure/<id>), "procedure_f1", "channel_f1"}; values are None when
    the report lacks them.
    """
    intents = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    result: Dict[str, Any] = {
        "intent_accuracy": intents.get("accuracy"),
        "intent_f1": intents.get("weighted avg", {}).get("f1-score"),
        "selector_accuracy": None,
        "procedure_f1": None,
        "channel_f1": None,
    }
    selector = out / "response_selection_report.json"
    if selector.is_file():
        result["selector_accuracy"] = json.loads(selector.read_text(encoding="utf-8")).get("accuracy")
    diet = out / "DIETClassifier_report.json"
    if diet.is_file():
        entities = json.loads(diet.read_text(encoding="utf-8"))
        for name in ("procedure", "channel"):
            if name in entities:
                result[f"{name}_f1"] = entities[name].get("f1-score")
    return result


def _run(cmd: Sequence[str]) -> float:
    """Run a command from the repo root; return wall seconds. Raises CalledProcessError on failure."""
    start = time.perf_counter()
    subprocess.run(list(cmd), cwd=REPO, check=True)
    return time.perf_counter() - start


def cross_validate(configs: Sequence[Path], folds: int, rasa: Path, nlu: Path) -> List[Dict[str, Any]]:
    """k-fold cross-validation of each config; returns one dict of numbers per config.

    ``rasa`` is the rasa executable of the rasa venv; rasa runs through :mod:`bot.nlu.cv_folds`
    with that venv's python, so every example is tested in the same fold in every run and for every
    config, also after examples were added.
    """
    rows = []
    python = Path(rasa).with_name("python")
    for config in configs:
        out = REPO / "results" / "cv" / config.stem
        seconds = _run([str(python), "-m", "bot.nlu.cv_folds", "test", "nlu", "--nlu", str(nlu),
                        "--config", str(config),
                        "--cross-validation", "--folds", str(folds), "--out", str(out)])
        rows.append({"config": config.stem, "folds": folds, "seconds": round(seconds, 1), **_report(out)})
    return rows


def heldout(model: Path, data: Path, rasa: Path) -> Dict[str, Any]:
    """Intent accuracy and entity F1 of ``model`` on the held-out examples in ``data``."""
    out = REPO / "results" / "heldout"
    _run([str(rasa), "test", "nlu", "--nlu", str(data), "--model", str(model), "--out", str(out)])
    return {"data": str(data), **_report(out)}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation (statistics.quantiles, inclusive)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def ask_questions(url: str, path: Path) -> Dict[str, Any]:
    """Ask each question in ``path`` through ``url``/api/chat in its own conversation.

    A question counts as correct when the answer's procedure card has the expected id, or, for an
    ambiguous question (procedure: null), when the buttons offer every expected candidate
    (procedure ids, or life-event keys under ``life_events``).
    Returns {"questions", "correct", "accuracy", "p50_ms", "p95_ms", "misses": [...]}.
    """
    import httpx
    import yaml

    questions = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    latencies: List[float] = []
    misses = []
    correct = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for q in questions:
            start = time.perf_counter()
            resp = client.post("/api/chat", json={"sender_id": f"eval-{uuid.uuid4().hex[:12]}", "text": q["text"]})
            latencies.append((time.perf_counter() - start) * 1000)
            resp.raise_for_status()
            messages = resp.json()["messages"]
            got = _procedure_of(messages)
            if q.get("procedure"):
                ok = got.get("id") == q["procedure"]
            else:
                expected = set(q.get("candidates", [])) | set(q.get("life_events", []))
                ok = bool(expected) and expected <= set(got.get("candidates", []))
            correct += ok
            if not ok:
                misses.append({"text": q["text"], "expected": q.get("procedure") or q.get("candidates"), "got": got})
    return {
        "questions": len(questions),
        "correct": correct,
        "accuracy": round(correct / len(questions), 3),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "misses": misses,
    }


def _procedure_of(messages: List[Dict[str, Any]]) -> Dict[str, Any]:
    """{"id": card id} or {"candidates": [procedure ids / life-event keys from button payloads]}."""
    for m in messages:
        card = m.get("custom") or {}
        if card.get("type") == "procedure":
            return {"id": card["procedure"]["id"]}
    ids = []
    for m in messages:
        for b in m.get("buttons") or []:
            payload = b.get("payload", "")
            if "{" in payload:
                entities = json.loads(payload[payload.index("{"):])
                ids.append(entities.get("procedure") or entities.get("life_event"))
    return {"candidates": ids} if ids else {}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point; prints a table and, last, one JSON line. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bot.nlu.evaluate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cv = sub.add_parser("cross-validate", help="k-fold cross-validation of NLU configs")
    cv.add_argument("configs", nargs="+", type=Path)
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--rasa", type=Path, default=DEFAULT_RASA)
    cv.add_argument("--nlu", type=Path, default=Path("data/nlu"))
    ho = sub.add_parser("heldout", help="accuracy on held-out NLU examples")
    ho.add_argument("--model", type=Path, default=Path("models/current.tar.gz"))
    ho.add_argument("--data", type=Path, default=Path("tests/data/nlu_heldout.yml"))
    ho.add_argument("--rasa", type=Path, default=DEFAULT_RASA)
    qs = sub.add_parser("questions", help="procedure identification through the running gateway")
    qs.add_argument("--url", default="http://127.0.0.1:8000")
    qs.add_argument("--data", type=Path, default=Path("tests/data/procedure_questions.yml"))
    args = parser.parse_args(argv)

    if args.command == "cross-validate":
        rows = cross_validate(args.configs, args.folds, args.rasa, args.nlu)
        print(f"{'config':<10} {'intent acc':>10} {'intent F1':>10} {'selector acc':>12} {'procedure F1':>13} "
              f"{'channel F1':>11} {'seconds':>8}")
        for r in rows:
            print(f"{r['config']:<10} {_fmt(r['intent_accuracy']):>10} {_fmt(r['intent_f1']):>10} "
                  f"{_fmt(r['selector_accuracy']):>12} {_fmt(r['procedure_f1']):>13} {_fmt(r['channel_f1']):>11} "
                  f"{r['seconds']:>8}")
        print(json.dumps(rows, ensure_ascii=False))
    elif args.command == "heldout":
        r = heldout(args.model, args.data, args.rasa)
        print(f"held-out: intent accuracy {_fmt(r['intent_accuracy'])}, selector accuracy "
              f"{_fmt(r['selector_accuracy'])}, procedure F1 {_fmt(r['procedure_f1'])}")
        print(json.dumps(r, ensure_ascii=False))
    else:
        r = ask_questions(args.url, args.data)
        for miss in r["misses"]:
            print(f"miss: {miss['text']} expected={miss['expected']} got={miss['got']}")
        print(f"procedure identified: {r['correct']}/{r['questions']} = {r['accuracy']:.1%}; "
              f"/api/chat p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms")
        print(json.dumps({k: v for k, v in r.items() if k != "misses"}, ensure_ascii=False))
    return 0


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
