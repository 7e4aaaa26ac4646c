"""Command line for the catalogue: ``python -m procedures validate|export-nlu|list``.

- validate: check every file of the city (schema, schedules, duplicate ids/aliases); exit 1 with
  one line per problem (file, 手続き id, 項目) when anything is wrong.
- export-nlu: write the NLU synonyms and lookup table for the ``procedure`` entity from the
  catalogue aliases, each procedure's name and aliases as training examples of its retrieval intent
  ``ask_procedure/<id>`` (marked ``metadata: {source: catalogue}``), and the responses of the
  retrieval intent (one per procedure and life event), to data/nlu/generated/procedures.yml, so NLU
  and catalogue cannot drift apart.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from procedures.catalogue import CATALOGUE_SOURCE, load_catalogue, load_life_events, validate_city

app = typer.Typer(add_completion=False, help="手続きカタログの検証と NLU データの生成")
CITY_OPTION = typer.Option(None, "--city", help="市区町村フォルダ名（既定: 環境変数 CITY または morioka）")
HEADER = (
    "# 自動生成ファイルです。編集しないでください。\n"
    "# Generated from procedures/cities/{city}/*.yml by `python -m procedures export-nlu`.\n"
)


def nlu_yaml(city_id: str) -> str:
    """The generated NLU YAML as text: synonyms id ← name and aliases, lookup table ``procedure``,
    one ``ask_procedure/<id>`` block per procedure whose examples are its name and aliases, each
    marked whole as a ``procedure`` entity (``- [住民票](procedure)``), and the retrieval responses.

    The alias examples teach the ResponseSelector each procedure's own words (5-fold
    cross-validation on the same folds, ``make evaluate``, 2026-11-22: selector accuracy 0.755 →
    0.859, procedure F1 0.847 → 0.853, channel F1 0.890 → 0.859, intent accuracy 0.894 both; see
    docs/staff/reports.md). They carry ``metadata: {source: catalogue}`` so that cross-validation
    (``bot.nlu.cv_folds``) trains on them but only tests hand-written examples.

    Raises:
        CatalogueError: the catalogue is invalid.
    """
    catalogue = load_catalogue(city_id)
    out = [HEADER.format(city=city_id), 'version: "3.1"\nnlu:\n']
    names = []
    for proc in catalogue:
        synonyms = [a for a in dict.fromkeys((proc.name, *proc.aliases)) if a != proc.id]
        names.extend(synonyms)
        out.append(f"- synonym: {proc.id}\n  examples: |\n")
        out.extend(f"    - {a}\n" for a in synonyms)
    out.append("- lookup: procedure\n  examples: |\n")
    out.extend(f"    - {a}\n" for a in dict.fromkeys(names))
    for proc in catalogue:
        out.append(f"- intent: ask_procedure/{proc.id}\n  metadata:\n    source: {CATALOGUE_SOURCE}\n"
                   "  examples: |\n")
        out.extend(f"    - [{a}](procedure)\n" for a in dict.fromkeys((proc.name, *proc.aliases)))
    # Responses of the retrieval intent ask_procedure/<id> (ResponseSelector): one per procedure and
    # per life event / topic. The bot does not utter them; actions read the selected key.
    out.append("responses:\n")
    for proc in catalogue:
        out.append(f"  utter_ask_procedure/{proc.id}:\n    - text: {json.dumps(proc.name, ensure_ascii=False)}\n")
    for key, event in load_life_events().items():
        out.append(f"  utter_ask_procedure/{key}:\n    - text: {json.dumps(event['label'], ensure_ascii=False)}\n")
    return "".join(out)


@app.command()
def validate(city: str = CITY_OPTION) -> None:
    """カタログ全体を検証します（問題があれば 1 行ずつ表示して終了コード 1）。"""
    city = city or os.environ.get("CITY", "morioka")
    problems = validate_city(city)
    if problems:
        for p in problems:
            typer.echo(f"エラー: {p}", err=True)
        typer.echo(f"{len(problems)} 件の問題があります（procedures/cities/{city}/）", err=True)
        raise typer.Exit(1)
    catalogue = load_catalogue(city)
    verified = sum(1 for p in catalogue if p.verified)
    typer.echo(f"OK: {catalogue.city.name} の手続き {len(catalogue)} 件（公式ページで確認済み {verified} 件）")


@app.command("export-nlu")
def export_nlu(
    out: Path = typer.Option(Path("data/nlu/generated/procedures.yml"), help="出力先"),
    city: str = CITY_OPTION,
    check: bool = typer.Option(False, "--check", help="書き込まず、出力先が最新かどうかだけ確かめる"),
) -> None:
    """カタログの呼び方（aliases）から NLU の同義語と照合表を生成します。"""
    city = city or os.environ.get("CITY", "morioka")
    text = nlu_yaml(city)
    if check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            typer.echo(f"{out} がカタログと一致しません。python -m procedures export-nlu を実行してください。", err=True)
            raise typer.Exit(1)
        typer.echo(f"OK: {out} はカタログと一致しています")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"{out} を書き出しました")


@app.command("list")
def list_procedures(city: str = CITY_OPTION) -> None:
    """手続きの一覧（id、名称、確認日）を表示します。"""
    for p in load_catalogue(city or os.environ.get("CITY", "morioka")):
        typer.echo(f"{p.id}\t{p.name}\t{p.checked or 'unverified'}")


if __name__ == "__main__":
    sys.exit(app())
