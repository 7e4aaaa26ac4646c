"""Review CSV round trip (振り返り表の書き出しと取り込み).

``export_csv`` writes the questions the bot could not answer well (fallbacks, low-confidence
answers, 「いいえ」 to 「解決しましたか？」) as a CSV that Excel opens directly (UTF-8 with BOM).
Staff fill in one of the last columns per row; ``import_csv`` then adds:

- a procedure id / procedure name (住民票), a life-event key or an intent (``ask_fee``) in
  「正しい手続きID / FAQ ID / 意図」 → the question becomes a training example in
  ``data/nlu/staff_review.yml`` (``ask_procedure/<id>`` for procedures);
- an existing FAQ ID there → the question becomes another FAQ row with that entry's answer
  (ID ``<FAQ ID>-R<review ID>``), so FAQ retrieval finds it in citizens' words;
- an answer in 「新しいFAQの回答」 → a new FAQ row (ID ``R<review ID>``) with the question as 質問
  (and 「新しいFAQのURL」 as URL) appended to ``procedures/cities/<city>/faq.csv``
  (format: :mod:`bot.faq`, header ``ID,質問,回答,カテゴリ,担当課,URL``).

Rows without a label are left for later. A row is never imported twice: the store remembers
imported rows (``imported_at``) and, independently of the store, an example already in the training
data or an FAQ ID/question already in faq.csv is skipped. When any row has an error nothing is
written, and every error names the CSV row.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from bot.review.store import ReviewStore, Turn
from bot.staff.nlu_data import (
    Example,
    TargetResolver,
    entity_surfaces,
    normalize_example,
    read_examples,
    write_nlu_file,
)
from bot.staff.sheet import read_sheet

#: CSV columns in order: (canonical key, header). The last three are for staff to fill in.
EXPORT_COLUMNS: List[Tuple[str, str]] = [
    ("id", "ID"),
    ("when", "日時"),
    ("question", "質問（個人情報は伏せ字）"),
    ("reason", "理由"),
    ("decision", "ボットの判断"),
    ("confidence", "確信度"),
    ("label", "正しい手続きID / FAQ ID / 意図"),
    ("faq_answer", "新しいFAQの回答"),
    ("faq_url", "新しいFAQのURL"),
    ("memo", "メモ"),
]
#: Headers accepted on import (staff may shorten them).
IMPORT_COLUMNS: Dict[str, List[str]] = {
    "id": ["ID"],
    "question": ["質問（個人情報は伏せ字）", "質問"],
    "label": ["正しい手続きID / FAQ ID / 意図", "正しい手続きID/FAQ ID/意図", "正しい手続きID", "ラベル"],
    "faq_answer": ["新しいFAQの回答", "FAQの回答"],
    "faq_url": ["新しいFAQのURL", "FAQのURL"],
    "memo": ["メモ"],
}
REASONS = {"fallback": "答えが見つからなかった", "low_confidence": "確信度が低い", "feedback_no": "「解決しなかった」と回答"}
STAFF_REVIEW = Path("data/nlu/staff_review.yml")
FAQ_HEADER = ["ID", "質問", "回答", "カテゴリ", "担当課", "URL"]
REVIEW_HEADER = (
    "市民の質問の振り返り（python -m bot review import）で追加した例文です。\n"
    "取り込みのたびに書き直されます。例文を消すときは、この行より下の該当行を消してください。\n"
    "Examples added by `python -m bot review import` from staff-labelled review rows."
)


def _decision(turn: Turn) -> str:
    if turn.kind == "feedback":
        return f"{turn.target or '-'} を案内 → 「いいえ」"
    found = turn.target or "見つからず"
    return f"{turn.intent or '-'} → {found}（{turn.resolved or '-'}）"


def export_csv(store: ReviewStore, out: Path, since: Optional[dt.date] = None, include_imported: bool = False) -> int:
    """Write the rows to label as CSV (UTF-8 with BOM, Excel-friendly).

    Args:
        store: the review store.
        out: CSV file to write (parent folders created).
        since: only records on or after this date (JST).
        include_imported: also rows already imported.
    Returns:
        The number of rows written.
    """
    turns = store.turns(since=since.isoformat() if since else None, with_text_only=True)
    rows = [t for t in turns if include_imported or not t.imported_at]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([header for _, header in EXPORT_COLUMNS])
        for turn in rows:
            writer.writerow([
                turn.id, turn.ts[:16].replace("T", " "), turn.text or "", REASONS.get(turn.reason or "", turn.reason or ""),
                _decision(turn), "" if turn.confidence is None else f"{turn.confidence:.2f}", "", "", "", "",
            ])
    return len(rows)


@dataclass
class ImportResult:
    """Outcome of :func:`import_csv`: counts, Japanese ``errors`` (nothing written when non-empty)
    and ``notices`` (rows skipped because already imported or already present)."""

    examples: List[Tuple[str, str]] = field(default_factory=list)
    faq_rows: List[List[str]] = field(default_factory=list)
    unlabelled: int = 0
    errors: List[str] = field(default_factory=list)
    notices: List[str] = field(default_factory=list)
    done_ids: List[int] = field(default_factory=list)


def read_faq(path: Path) -> List[Dict[str, str]]:
    """Rows of ``faq.csv`` as dicts keyed by the header (``[]`` when the file does not exist)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{k: (v or "") for k, v in row.items() if k} for row in csv.DictReader(handle)]


def append_faq(path: Path, rows: List[List[str]]) -> None:
    """Append rows (ID, 質問, 回答, カテゴリ, 担当課, URL) to ``faq.csv``, creating it with the header."""
    if not rows:
        return
    new = not path.is_file() or path.stat().st_size == 0
    text = "" if new else path.read_text(encoding="utf-8-sig")
    newline = "\r\n" if "\r\n" in text else "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="") as handle:
        if text and not text.endswith(("\n", "\r")):
            handle.write(newline)
        writer = csv.writer(handle, lineterminator=newline)
        if new:
            writer.writerow(FAQ_HEADER)
        writer.writerows(rows)


def _add_faq_row(result: ImportResult, faq_by_id: Dict[str, Any], faq_questions: Set[str], review_id: int,
                 row: List[str], notice: str) -> None:
    """Queue one new FAQ row ``[ID, 質問, 回答, カテゴリ, 担当課, URL]`` unless its ID or its question
    (normalized) is already in the FAQ, in which case ``notice`` is reported; the review row is done
    either way."""
    if row[0] in faq_by_id or normalize_example(row[1]) in faq_questions:
        result.notices.append(notice)
    else:
        result.faq_rows.append(row)
        faq_by_id[row[0]] = {"ID": row[0]}
        faq_questions.add(normalize_example(row[1]))
    result.done_ids.append(review_id)


def plan_import(
    csv_path: Path,
    resolver: TargetResolver,
    existing: List[Example],
    faq: List[Dict[str, str]],
    store: Optional[ReviewStore] = None,
) -> ImportResult:
    """Check every labelled row and decide what to add (nothing is written here).

    Args:
        csv_path: the labelled CSV (or .xlsx saved from it).
        resolver: maps the label to an intent / procedure.
        existing: every training example now in data/nlu (for duplicates and conflicts).
        faq: the current FAQ rows (:func:`read_faq`).
        store: the review store, to skip rows already imported (optional).
    Raises:
        bot.staff.sheet.SheetError: unreadable file or missing ID / label column.
    """
    result = ImportResult()
    known: Dict[str, Example] = {}
    for example in existing:
        known.setdefault(example.key, example)
    faq_by_id = {row.get("ID", "").strip(): row for row in faq if row.get("ID", "").strip()}
    faq_questions = {normalize_example(row.get("質問", "")) for row in faq}
    for row in read_sheet(csv_path, IMPORT_COLUMNS, required=("id", "question", "label")):
        where = f"{csv_path.name} {row.number}行目"
        label, answer = row.get("label"), row.get("faq_answer")
        if not label and not answer:
            result.unlabelled += 1
            continue
        try:
            review_id = int(row.get("id"))
        except ValueError:
            result.errors.append(f"{where}: ID「{row.get('id')}」が数字ではありません（書き出したときの ID のままにしてください）。")
            continue
        question = row.get("question")
        if not question:
            result.errors.append(f"{where}: 質問が空です。")
            continue
        stored = store.get(review_id) if store else None
        if stored is not None and stored.imported_at:
            result.notices.append(f"{where}: ID {review_id} は {stored.imported_at[:10]} に取り込み済みなので省きます。")
            continue
        if answer:
            if label:
                result.errors.append(f"{where}: 「正しい手続きID / FAQ ID / 意図」と「新しいFAQの回答」の両方に書かれています。どちらか一方にしてください。")
                continue
            url = row.get("faq_url")
            if url and not url.startswith(("http://", "https://")):
                result.errors.append(f"{where}: 新しいFAQのURL「{url}」は http:// か https:// で始めてください。")
                continue
            faq_id = f"R{review_id}"
            _add_faq_row(result, faq_by_id, faq_questions, review_id, [faq_id, question, answer, "", "", url],
                         f"{where}: この質問は FAQ に登録済み（ID {faq_id} など）なので省きます。")
            continue
        intent, reason = resolver.resolve(label)
        if intent is None:
            entry = faq_by_id.get(label.strip())
            if entry is None:
                result.errors.append(f"{where}: 「{label}」は手続き id・手続き名・FAQ の ID・意図のどれでもありません。{reason}")
                continue
            row_values = [f"{label.strip()}-R{review_id}", question, entry.get("回答", ""), entry.get("カテゴリ", ""),
                          entry.get("担当課", ""), entry.get("URL", "")]
            _add_faq_row(result, faq_by_id, faq_questions, review_id, row_values,
                         f"{where}: この質問は FAQ に登録済みなので省きます。")
            continue
        key = normalize_example(question)
        other = known.get(key)
        if other is not None and other.intent != intent:
            result.errors.append(f"{where}: 質問「{question}」は {other.source} に別の意図 {other.intent} として登録済みです"
                                 f"（今回の指定: {intent}）。どちらかを直してください。")
            continue
        if other is not None:
            result.notices.append(f"{where}: 質問「{question}」は {other.source} に同じ意図で登録済みなので省きます。")
            result.done_ids.append(review_id)
            continue
        if not key:
            result.errors.append(f"{where}: 質問「{question}」に文字がありません。")
            continue
        known[key] = Example(intent=intent, text=question, source=where)
        result.examples.append((intent, question))
        result.done_ids.append(review_id)
    return result


def import_csv(
    csv_path: Path,
    repo: Path,
    city: str,
    store: Optional[ReviewStore],
    now: dt.datetime,
    examples_file: Path = STAFF_REVIEW,
    faq_file: Optional[Path] = None,
) -> ImportResult:
    """Import the labelled CSV: examples into ``examples_file``, FAQ rows into ``faq_file``.

    Args:
        csv_path: the CSV staff filled in.
        repo: repository root.
        city: city id (catalogue names, default FAQ file ``procedures/cities/<city>/faq.csv``).
        store: review store to skip / mark imported rows (None: rely on content checks only).
        now: import time (aware), stored as ``imported_at``.
        examples_file / faq_file: outputs (relative paths are under ``repo``).
    Returns:
        The :class:`ImportResult`; files and the store are changed only when ``errors`` is empty.
    Raises:
        bot.staff.sheet.SheetError: unreadable CSV or missing columns.
    """
    examples_path = examples_file if examples_file.is_absolute() else repo / examples_file
    faq_path = faq_file or repo / "procedures" / "cities" / city / "faq.csv"
    if not faq_path.is_absolute():
        faq_path = repo / faq_path
    files = set((repo / "data" / "nlu").rglob("*.yml"))
    if examples_path.is_file():
        files.add(examples_path)
    existing = read_examples(sorted(files), repo)
    result = plan_import(csv_path, TargetResolver.from_repo(repo, city), existing, read_faq(faq_path), store)
    if result.faq_rows and not faq_path.is_file() and faq_path.with_suffix(".xlsx").is_file():
        result.errors.append(f"{faq_path.with_suffix('.xlsx')} には追記できません。FAQ を faq.csv（UTF-8）で保存するか、"
                             "--faq で追記先の CSV を指定してください。")
    if result.errors:
        return result
    if result.examples:
        kept = [(e.intent, e.text) for e in read_examples([examples_path], repo)] if examples_path.is_file() else []
        write_nlu_file(examples_path, kept + result.examples, REVIEW_HEADER, entity_surfaces(repo))
    append_faq(faq_path, result.faq_rows)
    if store is not None:
        store.mark_imported(result.done_ids, now.isoformat(timespec="seconds"))
    return result
