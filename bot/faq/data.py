"""Load FAQ entries (よくある質問) from the city's spreadsheet and evaluation corpora.

- :func:`load_faq`: ``faq.csv`` / ``faq.xlsx`` with the header ID,質問,回答,カテゴリ,担当課,URL
  (format in :mod:`bot.faq`), checked row by row with errors in Japanese naming the row.
- :func:`load_corpus`: an evaluation corpus, either the issue's format ``{doc_id: "Question: ...\\n
  Answer: ..."}`` or the 子育てオープンデータ協議会「汎用FAQ」 JSON array ``[{faq_id, question, answer,
  ...}]``; :func:`corpus_entries` turns it into entries.

Spreadsheets are read with the standard ``csv`` module and openpyxl (read-only mode).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union
from urllib.parse import urlparse

#: Header of faq.csv / faq.xlsx, in this order (カテゴリ, 担当課, URL may be empty per row).
HEADER = ("ID", "質問", "回答", "カテゴリ", "担当課", "URL")
REQUIRED = ("ID", "質問", "回答")
#: File names looked for in a city folder, first found wins.
FAQ_FILES = ("faq.csv", "faq.xlsx")

_QA = re.compile(r"^\s*Question:\s*(?P<q>.*?)\s*\nAnswer:\s*(?P<a>.*)$", re.S)


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ entry (よくある質問1件).

    Attributes:
        id: the ID column as text (unique in its file).
        question: 質問, the sample question.
        answer: 回答, the answer text (may hold line breaks).
        category: カテゴリ ("" when empty).
        department: 担当課 ("" when empty).
        url: official page (http/https), "" when none.
    """

    id: str
    question: str
    answer: str
    category: str = ""
    department: str = ""
    url: str = ""


class FaqFormatError(ValueError):
    """The FAQ file cannot be used; ``problems`` lists every problem, each naming the file and row
    (row numbers as a spreadsheet shows them: the header is row 1)."""

    def __init__(self, problems: List[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # Excel gives 12.0 for an ID typed as 12
        value = int(value)
    return str(value).strip()


def _valid_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc) and not any(c.isspace() for c in url)


def _read_rows(path: Path) -> List[List[Any]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several kinds for a broken file
            raise FaqFormatError([f"{path.name}: Excel ファイルとして読めません（{type(exc).__name__}）"]) from exc
        try:
            return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [row for row in csv.reader(fh)]
    except UnicodeDecodeError as exc:
        raise FaqFormatError(
            [f"{path.name}: 文字コードが UTF-8 ではありません（Excel では「CSV UTF-8」で保存してください）"]
        ) from exc


def parse_rows(rows: Sequence[Sequence[Any]], source: str = "faq.csv") -> List[FaqEntry]:
    """Check and convert spreadsheet rows (header first) into entries.

    Args:
        rows: cell values, row 1 = the header (columns may be in any order; extra columns ignored).
        source: file name used in the messages.
    Returns:
        Entries in row order; fully empty rows are skipped.
    Raises:
        FaqFormatError: every problem found: missing header column, missing 質問/回答/ID, duplicate
            ID, URL that is not http(s).
    """
    if not rows:
        raise FaqFormatError([f"{source}: 空のファイルです（1行目に {','.join(HEADER)} の見出しが必要です）"])
    header = [_cell(c) for c in rows[0]]
    missing = [h for h in HEADER if h not in header]
    if missing:
        raise FaqFormatError(
            [f"{source} 1行目: 見出しに {'・'.join(missing)} がありません（必要な見出し: {','.join(HEADER)}）"]
        )
    col = {h: header.index(h) for h in HEADER}
    problems: List[str] = []
    entries: List[FaqEntry] = []
    seen: Dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        values = {h: _cell(row[i]) if i < len(row) else "" for h, i in col.items()}
        if not any(values.values()):
            continue
        where = f"{source} {number}行目"
        for name in REQUIRED:
            if not values[name]:
                problems.append(f"{where}: {name} が空です")
        fid = values["ID"]
        if fid and fid in seen:
            problems.append(f"{where}: ID {fid} が重複しています（{seen[fid]}行目と同じ）")
        elif fid:
            seen[fid] = number
        if values["URL"] and not _valid_url(values["URL"]):
            problems.append(f"{where}: URL「{values['URL']}」は http:// または https:// で始まるアドレスではありません")
        entries.append(
            FaqEntry(
                id=fid,
                question=values["質問"],
                answer=values["回答"],
                category=values["カテゴリ"],
                department=values["担当課"],
                url=values["URL"],
            )
        )
    if problems:
        raise FaqFormatError(problems)
    return entries


def load_faq(path: Union[str, Path]) -> List[FaqEntry]:
    """Load ``faq.csv`` (UTF-8) or ``faq.xlsx`` (first sheet).

    Raises:
        FileNotFoundError: no such file.
        FaqFormatError: the file is not usable (see :func:`parse_rows`), messages in Japanese.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FAQ ファイルがありません: {path}")
    return parse_rows(_read_rows(path), source=path.name)


def find_faq_file(city_dir: Union[str, Path]) -> Optional[Path]:
    """The FAQ file of a city folder (``faq.csv``, else ``faq.xlsx``), or None when it has none."""
    for name in FAQ_FILES:
        path = Path(city_dir) / name
        if path.is_file():
            return path
    return None


def kosodate_corpus(items: Iterable[Mapping[str, Any]]) -> Dict[str, str]:
    """Convert the 汎用FAQ JSON array ``[{faq_id, question, answer, ...}]`` (子育てオープンデータ協議会,
    CC BY 4.0) into ``{str(faq_id): "Question: <question>\\nAnswer: <answer>"}`` (text stripped)."""
    return {
        str(item["faq_id"]): f"Question: {str(item['question']).strip()}\nAnswer: {str(item['answer']).strip()}"
        for item in items
    }


def load_corpus(path: Union[str, Path]) -> Dict[str, str]:
    """Read an evaluation corpus: ``{doc_id: text}`` or the 汎用FAQ array (converted).

    Raises:
        ValueError: neither format (message names the file).
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, list):
        return kosodate_corpus(data)
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    raise ValueError(f"{path}: corpus must be {{doc_id: text}} or a JSON array of {{faq_id, question, answer}}")


def corpus_entries(corpus: Mapping[str, str]) -> List[FaqEntry]:
    """Entries from ``{doc_id: "Question: ...\\nAnswer: ..."}``; a text without that shape becomes
    the answer with an empty question (so any corpus can be indexed)."""
    entries = []
    for doc_id, text in corpus.items():
        match = _QA.match(text)
        if match:
            entries.append(FaqEntry(id=str(doc_id), question=match["q"], answer=match["a"].strip()))
        else:
            entries.append(FaqEntry(id=str(doc_id), question="", answer=text.strip()))
    return entries
