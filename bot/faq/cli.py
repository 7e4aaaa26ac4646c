"""Command line for the FAQ: ``python -m bot.faq evaluate|ask|convert``.

- evaluate: index a corpus, answer every query, print Hit@1/3/5/10, MRR, Recall@10 and p50/p95 ms
  per query (:mod:`bot.faq.evaluate`); with ``--json`` the last line is one JSON object.
- ask: for staff, show what the bot would answer from a city's faq.csv (best entry, confidence,
  other candidates) without starting the bot.
- convert: turn the 汎用FAQ JSON array into the evaluation corpus format.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from bot.faq.data import FaqFormatError, find_faq_file, kosodate_corpus, load_faq
from bot.faq.search import DEFAULT_VARIANT, VARIANTS, FaqIndex, variant

app = typer.Typer(
    help="よくある質問（FAQ）: evaluate（検索の評価）/ ask（FAQ から答えを探す）/ convert（汎用FAQ の変換）",
    no_args_is_help=True,
    add_completion=False,
)
CITIES_DIR = Path(__file__).resolve().parents[2] / "procedures" / "cities"


@app.command(help="FAQ 検索を評価します（Hit@1/3/5/10, MRR, Recall@10, 1件あたりの ms）。")
def evaluate(
    corpus: Annotated[Path, typer.Option(help="{doc_id: \"Question: ...\\nAnswer: ...\"} の JSON（汎用FAQ の配列も可）")],
    queries: Annotated[Path, typer.Option(help="{query_id: 質問文} の JSON")],
    qrels: Annotated[Path, typer.Option(help="{query_id: {doc_id: 2 または 1}} の JSON")],
    variant_name: Annotated[
        str, typer.Option("--variant", help=f"検索方式（{', '.join(VARIANTS)}）")
    ] = DEFAULT_VARIANT,
    as_json: Annotated[bool, typer.Option("--json", help="最後の行に結果を JSON で出す")] = False,
) -> None:
    """Evaluate retrieval; exit 2 on unreadable or malformed input files."""
    from bot.faq.evaluate import evaluate_files

    try:
        config = variant(variant_name)
        metrics = evaluate_files(corpus, queries, qrels, config)
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"評価できません: {exc}", err=True)
        raise typer.Exit(2)
    m = metrics.as_json()
    typer.echo(f"variant   {variant_name}")
    typer.echo(f"queries   {m['queries']}")
    for key in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "recall@10"):
        typer.echo(f"{key:<9} {m[key]:.3f}")
    typer.echo(f"p50_ms    {m['p50_ms']:.2f}")
    typer.echo(f"p95_ms    {m['p95_ms']:.2f}")
    if as_json:
        typer.echo(json.dumps(m, ensure_ascii=False))


@app.command(help="市区町村の FAQ から答えを探して表示します（例: python -m bot.faq ask \"粗大ごみの出し方\"）。")
def ask(
    text: Annotated[str, typer.Argument(help="質問文")],
    city: Annotated[Optional[str], typer.Option(help="市区町村フォルダ名（既定: 環境変数 CITY または morioka）")] = None,
    faq: Annotated[Optional[Path], typer.Option(help="FAQ ファイル（既定: procedures/cities/<city>/faq.csv）")] = None,
    top: Annotated[int, typer.Option(help="表示する件数")] = 3,
) -> None:
    """Print the best entries with confidence; exit 1 when the FAQ file is missing or invalid."""
    from bot.faq.answer import THRESHOLD

    path = faq or find_faq_file(CITIES_DIR / (city or os.environ.get("CITY", "morioka")))
    try:
        if path is None:
            raise FileNotFoundError("FAQ ファイル（faq.csv / faq.xlsx）がありません")
        index = FaqIndex(load_faq(path))
    except (FileNotFoundError, FaqFormatError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1)
    hits = index.search(text, k=top)
    if not hits or hits[0].confidence < THRESHOLD:
        typer.echo(f"（しきい値 {THRESHOLD} 未満: ボットは「分かりません」と答え、問い合わせ先を案内します）")
    for hit in hits:
        typer.echo(f"[{hit.entry.id}] 確からしさ {hit.confidence:.2f}  {hit.entry.question}")
        typer.echo("    " + hit.entry.answer.replace("\n", "\n    "))
        if hit.entry.url:
            typer.echo(f"    {hit.entry.url}")


@app.command(help="汎用FAQ の JSON 配列を評価用の {doc_id: \"Question: ...\\nAnswer: ...\"} に変換します。")
def convert(
    source: Annotated[Path, typer.Argument(help="汎用FAQ の corpus.json（配列）")],
    out: Annotated[Path, typer.Option(help="出力先")],
) -> None:
    """Write the converted corpus (UTF-8, one JSON object, sorted by numeric id)."""
    items = json.loads(source.read_text(encoding="utf-8"))
    corpus = kosodate_corpus(sorted(items, key=lambda x: int(x["faq_id"])))
    out.write_text(json.dumps(corpus, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    typer.echo(f"{len(corpus)} entries → {out}")
