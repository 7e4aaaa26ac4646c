"""NLU cross-validation report for staff (NLU 評価レポート): HTML page with PNG charts.

Input: an output folder of ``rasa test nlu --cross-validation`` (``make evaluate`` writes
``results/cv/config``), Rasa 3.6 file names:

- ``intent_report.json``: per intent {precision, recall, f1-score, support, confused_with} plus
  ``accuracy`` and ``weighted avg`` (scikit-learn classification report).
- ``intent_errors.json``: every misclassified example [{text, intent, intent_prediction: {name,
  confidence}}] over all folds.
- ``response_selection_report.json`` / ``response_selection_errors.json``: the same for the
  ResponseSelector keys ``ask_procedure/<id>`` (which procedure), with ``intent_response_key_target``
  and ``intent_response_key_prediction``.

Output (``out``): ``index.html`` (Japanese, self-contained apart from the PNGs next to it),
``intent_confusion.png`` (confusion matrix; cell = number of examples, colour = share of the row),
``intent_f1.png`` (F1 per intent), ``procedure_f1.png`` (F1 per procedure key), ``summary.json``
and ``history.csv`` (one line per report, to compare before/after a round of new examples).

The confusion matrix is rebuilt from the reports and error lists: the diagonal is ``support``
minus the errors of that label, off-diagonal cells count the errors (Rasa writes every error).
"""
from __future__ import annotations

import csv
import datetime as dt
import html
import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from bot.staff.charts import chart_style, japanese_font, new_figure, png_bytes

JST = dt.timezone(dt.timedelta(hours=9), "JST")
SUMMARY_KEYS = ("intent_accuracy", "intent_f1", "selector_accuracy", "selector_f1", "examples", "procedure_examples")
_NOT_LABELS = {"accuracy", "macro avg", "weighted avg", "micro avg"}


class ReportError(ValueError):
    """The cross-validation folder is missing or lacks ``intent_report.json`` (Japanese message)."""


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path} を読めません: {exc}") from exc


def labels_of(report: Mapping[str, Any]) -> List[str]:
    """The class labels of a Rasa/scikit-learn report (entries with ``support``), sorted."""
    return sorted(k for k, v in report.items() if k not in _NOT_LABELS and isinstance(v, dict) and "support" in v)


def confusion_matrix(report: Mapping[str, Any], errors: Sequence[Mapping[str, Any]],
                     target_key: str, prediction_key: str) -> Tuple[List[str], List[List[int]]]:
    """Rebuild the confusion matrix from a report and its error list.

    Args:
        report: ``*_report.json`` content.
        errors: ``*_errors.json`` content.
        target_key / prediction_key: field names of the true label and the prediction
            (``intent`` / ``intent_prediction`` for intents).
    Returns:
        (labels, matrix) where ``matrix[i][j]`` is the number of examples of ``labels[i]``
        predicted as ``labels[j]``; predicted labels absent from the report (e.g. a fallback)
        are appended to ``labels`` as extra columns and rows of zeros.
    """
    labels = labels_of(report)
    pairs = Counter()
    for error in errors:
        truth = str(error.get(target_key))
        prediction = error.get(prediction_key) or {}
        predicted = str(prediction.get("name") if isinstance(prediction, dict) else prediction)
        pairs[(truth, predicted)] += 1
    for truth, predicted in pairs:
        for label in (truth, predicted):
            if label not in labels:
                labels.append(label)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (truth, predicted), count in pairs.items():
        matrix[index[truth]][index[predicted]] += count
    for label in labels:
        support = int((report.get(label) or {}).get("support") or 0) if label in report else 0
        wrong = sum(c for (t, _), c in pairs.items() if t == label)
        matrix[index[label]][index[label]] = max(support - wrong, 0)
    return labels, matrix


def f1_scores(report: Mapping[str, Any]) -> List[Tuple[str, float, int]]:
    """(label, F1, support) per label, lowest F1 first."""
    rows = [(label, float(report[label].get("f1-score") or 0.0), int(report[label].get("support") or 0))
            for label in labels_of(report)]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def top_confusions(errors: Sequence[Mapping[str, Any]], target_key: str, prediction_key: str,
                   limit: int = 15) -> List[Tuple[str, str, int, List[str]]]:
    """Most frequent (true, predicted) pairs: (true, predicted, count, up to 3 example texts)."""
    counts: Counter = Counter()
    texts: Dict[Tuple[str, str], List[str]] = {}
    for error in errors:
        prediction = error.get(prediction_key) or {}
        pair = (str(error.get(target_key)), str(prediction.get("name") if isinstance(prediction, dict) else prediction))
        counts[pair] += 1
        texts.setdefault(pair, [])
        if len(texts[pair]) < 3:
            texts[pair].append(str(error.get("text", "")))
    return [(t, p, c, texts[(t, p)]) for (t, p), c in counts.most_common(limit)]


def _short(label: str, names: Mapping[str, str]) -> str:
    key = label.split("/", 1)[1] if label.startswith("ask_procedure/") else label
    if japanese_font() and key in names:
        return names[key]
    return key


def draw_confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> bytes:
    """PNG of the confusion matrix: rows = true intent, columns = predicted; colour = row share."""
    with chart_style():
        size = max(5.0, 0.45 * len(labels) + 2.5)
        fig = new_figure(size + 1, size)
        ax = fig.add_subplot()
        shares = [[(c / sum(row)) if sum(row) else 0.0 for c in row] for row in matrix]
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                            color="white" if shares[i][j] > 0.5 else "black")
        fig.colorbar(image, ax=ax, shrink=0.7, label="share of true label")
        return png_bytes(fig)


def draw_f1(rows: Sequence[Tuple[str, float, int]], names: Mapping[str, str], xlabel: str = "F1") -> bytes:
    """PNG horizontal bar chart of F1 per label (lowest at the top, red below 0.7)."""
    with chart_style():
        fig = new_figure(8, max(2.5, 0.22 * len(rows) + 1.2))
        ax = fig.add_subplot()
        shown = list(rows)
        ax.barh(range(len(shown)), [r[1] for r in shown],
                color=["#c0392b" if r[1] < 0.7 else "#2e86c1" for r in shown])
        short = [_short(r[0], names) for r in shown]
        repeated = {s for s in short if short.count(s) > 1}
        short = [f"{s} ({r[0].split('/')[-1]})" if s in repeated else s for s, r in zip(short, shown)]
        ax.set_yticks(range(len(shown)), short, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(xlabel)
        ax.axvline(0.7, color="grey", linestyle=":", linewidth=1)
        for i, r in enumerate(shown):
            ax.text(min(r[1] + 0.01, 0.93), i, f"{r[1]:.2f}", va="center", fontsize=6)
        return png_bytes(fig)


def summarize(intent_report: Mapping[str, Any], selector_report: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The headline numbers: intent accuracy / weighted F1, selector accuracy / weighted F1, counts."""
    out: Dict[str, Any] = {
        "intent_accuracy": intent_report.get("accuracy"),
        "intent_f1": (intent_report.get("weighted avg") or {}).get("f1-score"),
        "selector_accuracy": None,
        "selector_f1": None,
        "examples": sum(int(intent_report[l].get("support") or 0) for l in labels_of(intent_report)),
        "procedure_examples": None,
    }
    if selector_report:
        out["selector_accuracy"] = selector_report.get("accuracy")
        out["selector_f1"] = (selector_report.get("weighted avg") or {}).get("f1-score")
        out["procedure_examples"] = sum(int(selector_report[l].get("support") or 0) for l in labels_of(selector_report))
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _history(path: Path, summary: Mapping[str, Any], source: str) -> List[Dict[str, str]]:
    rows: List[Dict[str, str]] = []
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    rows.append({"date": summary["generated"], "source": source, **{k: _fmt(summary.get(k)) for k in SUMMARY_KEYS}})
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["date", "source", *SUMMARY_KEYS])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def write_report(cv_dir: Path, out: Path, title: Optional[str] = None,
                 names: Optional[Mapping[str, str]] = None, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Write the report for one cross-validation folder.

    Args:
        cv_dir: folder with ``intent_report.json`` (required) and the other files (optional).
        out: report folder (created); ``index.html`` and PNGs are overwritten, ``history.csv`` grows.
        title: page heading (default 「NLU 評価レポート」).
        names: procedure id / life-event key → Japanese name, for chart labels and tables.
        now: report time (aware datetime), default the current time in JST.
    Returns:
        The summary dict (:func:`summarize` plus ``generated`` ISO time and ``source``).
    Raises:
        ReportError: ``cv_dir`` or its ``intent_report.json`` is missing or unreadable.
    """
    names = dict(names or {})
    if not (cv_dir / "intent_report.json").is_file():
        raise ReportError(f"{cv_dir}/intent_report.json がありません。先に make evaluate（交差検証）を実行してください。")
    intent_report = _load(cv_dir / "intent_report.json")
    intent_errors = _load(cv_dir / "intent_errors.json") if (cv_dir / "intent_errors.json").is_file() else []
    selector_report = _load(cv_dir / "response_selection_report.json") if (cv_dir / "response_selection_report.json").is_file() else None
    selector_errors = _load(cv_dir / "response_selection_errors.json") if (cv_dir / "response_selection_errors.json").is_file() else []

    out.mkdir(parents=True, exist_ok=True)
    labels, matrix = confusion_matrix(intent_report, intent_errors, "intent", "intent_prediction")
    (out / "intent_confusion.png").write_bytes(draw_confusion(labels, matrix))
    intent_f1 = f1_scores(intent_report)
    (out / "intent_f1.png").write_bytes(draw_f1(intent_f1, names, "F1 (intent)"))
    selector_f1: List[Tuple[str, float, int]] = []
    if selector_report:
        selector_f1 = f1_scores(selector_report)
        (out / "procedure_f1.png").write_bytes(draw_f1(selector_f1, names, "F1 (procedure)"))
    elif (out / "procedure_f1.png").exists():
        (out / "procedure_f1.png").unlink()

    summary = summarize(intent_report, selector_report)
    summary["generated"] = (now or dt.datetime.now(JST)).isoformat(timespec="seconds")
    summary["source"] = str(cv_dir)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    history = _history(out / "history.csv", summary, str(cv_dir))

    def name_of(label: str) -> str:
        key = label.split("/", 1)[1] if label.startswith("ask_procedure/") else label
        return f"{names[key]}（{key}）" if key in names else key

    esc = html.escape
    parts = [
        "<!doctype html>", '<html lang="ja"><head><meta charset="utf-8">',
        f"<title>{esc(title or 'NLU 評価レポート')}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "td.num{text-align:right}.low{color:#c0392b;font-weight:bold}img{max-width:100%}</style></head><body>",
        f"<h1>{esc(title or 'NLU 評価レポート')}</h1>",
        f"<p>交差検証の結果（{esc(str(cv_dir))}）から {esc(summary['generated'])} に作成しました。"
        "学習データを何回かに分け、学習に使わなかった例文をどれだけ正しく理解できたかを示します。</p>",
        "<h2>まとめ</h2><table>",
        f"<tr><th>意図の正解率</th><td class=num>{_fmt(summary['intent_accuracy'])}</td></tr>",
        f"<tr><th>意図の F1（重み付き平均）</th><td class=num>{_fmt(summary['intent_f1'])}</td></tr>",
        f"<tr><th>手続きの正解率（どの手続きか）</th><td class=num>{_fmt(summary['selector_accuracy'])}</td></tr>",
        f"<tr><th>手続きの F1（重み付き平均）</th><td class=num>{_fmt(summary['selector_f1'])}</td></tr>",
        f"<tr><th>例文の数（意図 / 手続き）</th><td class=num>{_fmt(summary['examples'])} / {_fmt(summary['procedure_examples'])}</td></tr>",
        "</table>",
        "<h2>これまでの結果（例文を足す前と後の比較）</h2><table><tr><th>作成日時</th><th>意図の正解率</th>"
        "<th>意図の F1</th><th>手続きの正解率</th><th>手続きの F1</th><th>例文の数</th></tr>",
    ]
    for row in history[-10:]:
        parts.append(f"<tr><td>{esc(row.get('date', ''))}</td>" + "".join(
            f"<td class=num>{esc(row.get(k, '') or '-')}</td>"
            for k in ("intent_accuracy", "intent_f1", "selector_accuracy", "selector_f1", "examples")) + "</tr>")
    parts += [
        "</table>",
        "<h2>意図の混同行列</h2><p>行が正しい意図、列がボットの判断です。対角線の外の数が、取り違えた例文の数です。</p>",
        '<img src="intent_confusion.png" alt="意図の混同行列">',
        "<h2>意図ごとの F1</h2><p>1 に近いほど正確です。0.7 未満（赤）の意図は例文を足すと改善が見込めます。</p>",
        '<img src="intent_f1.png" alt="意図ごとの F1">',
        "<table><tr><th>意図</th><th>F1</th><th>例文の数</th></tr>",
    ]
    parts += [f"<tr><td>{esc(l)}</td><td class=\"num{' low' if f < 0.7 else ''}\">{f:.3f}</td><td class=num>{s}</td></tr>"
              for l, f, s in intent_f1]
    parts.append("</table>")
    if selector_report:
        parts += [
            "<h2>手続きごとの F1（どの手続きかの判断）</h2>",
            '<img src="procedure_f1.png" alt="手続きごとの F1">',
            "<h3>F1 の低い手続き（下位15件）</h3><table><tr><th>手続き</th><th>F1</th><th>例文の数</th></tr>",
        ]
        parts += [f"<tr><td>{esc(name_of(l))}</td><td class=\"num{' low' if f < 0.7 else ''}\">{f:.3f}</td><td class=num>{s}</td></tr>"
                  for l, f, s in selector_f1[:15]]
        parts += ["</table>", "<h3>よく取り違える手続き</h3><table><tr><th>正しい手続き</th><th>ボットの判断</th><th>件数</th><th>例文</th></tr>"]
        for truth, predicted, count, texts in top_confusions(selector_errors, "intent_response_key_target", "intent_response_key_prediction"):
            parts.append(f"<tr><td>{esc(name_of(truth))}</td><td>{esc(name_of(predicted))}</td><td class=num>{count}</td>"
                         f"<td>{esc(' / '.join(texts))}</td></tr>")
        parts.append("</table>")
    parts += ["<h3>よく取り違える意図</h3><table><tr><th>正しい意図</th><th>ボットの判断</th><th>件数</th><th>例文</th></tr>"]
    for truth, predicted, count, texts in top_confusions(intent_errors, "intent", "intent_prediction"):
        parts.append(f"<tr><td>{esc(truth)}</td><td>{esc(predicted)}</td><td class=num>{count}</td><td>{esc(' / '.join(texts))}</td></tr>")
    parts += ["</table>", "<p>例文の足し方は docs/staff/add-examples.md を見てください。</p>", "</body></html>"]
    (out / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")
    return summary


def procedure_names(repo: Path, city: str) -> Dict[str, str]:
    """Procedure id → name from the city's catalogue, and life-event key → label ({} on any error)."""
    try:
        from procedures.catalogue import load_catalogue, load_life_events

        names = {p.id: p.name for p in load_catalogue(city, repo / "procedures" / "cities")}
        for key, event in load_life_events(repo / "procedures" / "life_events.yml").items():
            names.setdefault(key, str(event.get("label") or key))
        return names
    except Exception:  # names are a nicety; the report works with ids
        return {}
