"""Reading staff spreadsheets (表計算の表): UTF-8 CSV or Excel .xlsx with Japanese headers.

The first row holds the column names; every later row is one record. Headers are matched after
Unicode NFKC and removing spaces, so 「例 文」「例文」「ﾒﾓ」 all work. Row numbers in messages are the
spreadsheet's own (the header is row 1), so staff can find the row in Excel.

Libraries: the standard ``csv`` module (UTF-8 with or without BOM, as Excel writes "CSV UTF-8") and
openpyxl for .xlsx (first worksheet, cell values only).
"""
from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Sequence


class SheetError(ValueError):
    """The spreadsheet cannot be read or lacks a required column (message in Japanese)."""


@dataclass(frozen=True)
class SheetRow:
    """One data row: ``number`` is the spreadsheet row number (header = 1), ``values`` maps the
    canonical column name (see :func:`read_sheet`'s ``columns``) to the cell text (stripped, '' when
    empty)."""

    number: int
    values: Dict[str, str]

    def get(self, column: str) -> str:
        """The cell text of ``column`` ('' when the column is absent or the cell is empty)."""
        return self.values.get(column, "")


def normalize_header(name: str) -> str:
    """Header text folded for matching: NFKC, no spaces, lower case (``' 例 文 '`` → ``'例文'``)."""
    return "".join(unicodedata.normalize("NFKC", str(name or "")).split()).lower()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _raw_rows(path: Path) -> List[List[str]]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            from openpyxl import load_workbook

            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several types for broken files
            raise SheetError(f"{path}: Excel ファイルを読めません（{type(exc).__name__}: {exc}）") from exc
        try:
            sheet = workbook.worksheets[0]
            return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    if suffix in (".csv", ".txt"):
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                return [[_cell(v) for v in row] for row in csv.reader(handle)]
        except UnicodeDecodeError as exc:
            raise SheetError(
                f"{path}: 文字コードが UTF-8 ではありません。Excel では「CSV UTF-8（コンマ区切り）」で保存してください。"
            ) from exc
    raise SheetError(f"{path}: 対応していない形式です。.xlsx か .csv（UTF-8）を指定してください。")


def read_sheet(path: Path, columns: Mapping[str, Sequence[str]], required: Sequence[str]) -> List[SheetRow]:
    """Read a spreadsheet into rows keyed by canonical column names.

    Args:
        path: ``.xlsx`` (first sheet) or ``.csv`` (UTF-8, BOM optional).
        columns: canonical name → accepted header texts, e.g. ``{"text": ["例文", "example"]}``.
        required: canonical names that must have a column.
    Returns:
        The non-empty data rows in order (rows whose cells are all empty are skipped).
    Raises:
        SheetError: missing file, unreadable file, wrong encoding, or a required column is missing.
    """
    if not path.is_file():
        raise SheetError(f"{path}: ファイルが見つかりません。")
    rows = _raw_rows(path)
    if not rows:
        raise SheetError(f"{path}: 空のファイルです。1行目に見出し（{'、'.join(columns[r][0] for r in required)}）が必要です。")
    accepted = {normalize_header(alias): key for key, aliases in columns.items() for alias in aliases}
    index: Dict[str, int] = {}
    for position, header in enumerate(rows[0]):
        key = accepted.get(normalize_header(header))
        if key and key not in index:
            index[key] = position
    missing = [columns[key][0] for key in required if key not in index]
    if missing:
        raise SheetError(
            f"{path}: 1行目に見出し「{'」「'.join(missing)}」がありません（見つかった見出し: {'、'.join(h for h in rows[0] if h) or 'なし'}）。"
        )
    out: List[SheetRow] = []
    for number, row in enumerate(rows[1:], start=2):
        values = {key: (row[pos] if pos < len(row) else "") for key, pos in index.items()}
        if any(values.values()):
            out.append(SheetRow(number=number, values=values))
    return out
