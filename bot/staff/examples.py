"""Example phrasings from a staff spreadsheet → Rasa NLU data (例文表の取り込み).

Spreadsheet (.xlsx first sheet, or UTF-8 CSV), header row with these columns:

==========  =========================================================================
意図         intent (``ask_fee`` …), procedure id (``juminhyo_copy``), procedure name or
             alias (住民票), or life-event label (出産). Also accepted header: 手続き.
例文         how a citizen might ask, e.g. 「住民票ってコンビニで取れる？」 (required).
担当者, メモ   optional, ignored by the conversion.
==========  =========================================================================

The whole spreadsheet is converted into ``data/nlu/staff_examples.yml`` (the file is rewritten
each time, so a row deleted from the spreadsheet disappears from the training data). Nothing is
written when any row has an error; errors name the spreadsheet row. An example that is already in
the training data under the same intent is skipped with a notice; one that exists under a different
intent is an error (the model could not learn both).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from bot.staff.nlu_data import (
    Example,
    TargetResolver,
    normalize_example,
    plain_text,
    read_examples,
    entity_surfaces,
    write_nlu_file,
)
from bot.staff.sheet import read_sheet

#: canonical column → accepted header texts (first one is shown in messages).
COLUMNS = {
    "intent": ["意図", "手続き", "意図・手続き", "手続きID", "intent"],
    "text": ["例文", "言い方", "example", "text"],
    "staff": ["担当者"],
    "memo": ["メモ", "備考"],
}
#: Default output file (Rasa reads every file under data/nlu; the Makefile retrains when it changes).
STAFF_EXAMPLES = Path("data/nlu/staff_examples.yml")
HEADER = (
    "職員の例文表から自動生成したファイルです。直接編集せず、例文表を直して\n"
    "python -m bot staff import-examples <例文表> を実行してください。\n"
    "Generated from the staff spreadsheet {source} by `python -m bot staff import-examples`."
)


@dataclass
class ImportResult:
    """Outcome of :func:`convert_examples`.

    Attributes:
        examples: (intent, text) pairs to write, in spreadsheet order.
        errors: Japanese messages naming the row; when non-empty nothing should be written.
        notices: rows skipped because the example already exists under the same intent.
    """

    examples: List[Tuple[str, str]] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    notices: List[str] = field(default_factory=list)


def convert_examples(sheet: Path, resolver: TargetResolver, existing: Sequence[Example]) -> ImportResult:
    """Check and convert the spreadsheet rows.

    Args:
        sheet: the staff spreadsheet (.xlsx / .csv).
        resolver: maps the 意図 cell to a Rasa intent.
        existing: examples of the other training files (not the file being regenerated).
    Returns:
        An :class:`ImportResult`.
    Raises:
        bot.staff.sheet.SheetError: unreadable file or missing 意図/例文 column.
    """
    result = ImportResult()
    known: Dict[str, Example] = {}
    for example in existing:
        known.setdefault(example.key, example)
    for row in read_sheet(sheet, COLUMNS, required=("intent", "text")):
        where = f"{sheet.name} {row.number}行目"
        text = plain_text(row.get("text"))
        if not text:
            result.errors.append(f"{where}: 例文が空です。")
            continue
        intent, reason = resolver.resolve(row.get("intent"))
        if intent is None:
            result.errors.append(f"{where}: {reason}")
            continue
        key = normalize_example(text)
        if not key:
            result.errors.append(f"{where}: 例文「{text}」に文字がありません（記号だけです）。")
            continue
        other = known.get(key)
        if other is not None and other.intent != intent:
            result.errors.append(
                f"{where}: 例文「{text}」（{intent}）は {other.source} に別の意図 {other.intent} として登録済みです。"
                "どちらかを直してください。"
            )
            continue
        if other is not None:
            result.notices.append(f"{where}: 例文「{text}」は {other.source} に同じ意図で登録済みなので省きます。")
            continue
        known[key] = Example(intent=intent, text=text, source=where)
        result.examples.append((intent, text))
    return result


def import_examples(sheet: Path, repo: Path, city: str, out: Path = STAFF_EXAMPLES) -> ImportResult:
    """Convert ``sheet`` and, when there is no error, rewrite ``repo/out``.

    Args:
        sheet: staff spreadsheet.
        repo: repository root (holds domain.yml, data/nlu, procedures/).
        city: city id whose catalogue names are accepted (Settings.CITY).
        out: output file, relative to ``repo`` unless absolute.
    Returns:
        The :class:`ImportResult` (the file is written only when ``errors`` is empty).
    Raises:
        bot.staff.sheet.SheetError: see :func:`convert_examples`.
    """
    target = out if out.is_absolute() else repo / out
    others = [p for p in sorted((repo / "data" / "nlu").rglob("*.yml")) if p.resolve() != target.resolve()]
    result = convert_examples(sheet, TargetResolver.from_repo(repo, city), read_examples(others, repo))
    if not result.errors:
        write_nlu_file(target, result.examples, HEADER.format(source=sheet.name), entity_surfaces(repo))
    return result
