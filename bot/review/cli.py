"""``python -m bot review export|import|report``: learning from citizens' questions (職員向け).

Exit codes: 0 done; 1 errors in the data (each printed with its row) or unreadable files.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from bot.config import get_settings

app = typer.Typer(
    help="市民の質問の振り返り: export（ラベル付け用 CSV）/ import（ラベルを学習データ・FAQ に追加）/ report（月次レポート）",
    no_args_is_help=True,
    add_completion=False,
)

JST = dt.timezone(dt.timedelta(hours=9), "JST")
DbOption = Annotated[Optional[Path], typer.Option("--db", help="記録のファイル（既定: 設定 REVIEW_DB = var/review.db）")]


def _store(db: Optional[Path]):
    from bot.review.store import ReviewStore

    path = db or get_settings().review_db_path
    if path is None:
        typer.echo("記録は無効です（REVIEW_DB が空）。--db で記録のファイルを指定してください。", err=True)
        raise typer.Exit(1)
    return ReviewStore(path)


def _date(value: Optional[str]) -> Optional[dt.date]:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        typer.echo(f"日付は YYYY-MM-DD の形で指定してください（「{value}」は読めません）。", err=True)
        raise typer.Exit(2)


@app.command(help="答えられなかった質問・確信度の低い質問・「いいえ」の質問を、職員がラベルを付ける CSV（Excel で開けます）に書き出します。")
def export(
    out: Annotated[Path, typer.Option("--out", help="書き出す CSV")] = Path("review.csv"),
    since: Annotated[Optional[str], typer.Option("--since", help="この日（YYYY-MM-DD、日本時間）以降の記録だけ")] = None,
    include_imported: Annotated[bool, typer.Option("--all", help="取り込み済みの行も書き出す")] = False,
    db: DbOption = None,
) -> None:
    """Write the CSV for labelling and print how many rows it has."""
    from bot.review.exchange import export_csv

    count = export_csv(_store(db), out, since=_date(since), include_imported=include_imported)
    typer.echo(f"{count}件を {out} に書き出しました。「正しい手続きID / FAQ ID / 意図」か「新しいFAQの回答」を記入して、"
               f"python -m bot review import {out} で取り込んでください。")


@app.command("import", help="ラベルを付けた CSV を取り込み、例文を data/nlu/staff_review.yml に、FAQ を faq.csv に追加します。")
def import_command(
    csv_file: Annotated[Path, typer.Argument(help="ラベルを記入した CSV")],
    db: DbOption = None,
    faq: Annotated[Optional[Path], typer.Option("--faq", help="追加先の FAQ（既定: procedures/cities/<CITY>/faq.csv）")] = None,
) -> None:
    """Import labelled rows; exit 1 (nothing written) when any row has an error."""
    from bot.review.exchange import import_csv
    from bot.staff.sheet import SheetError

    settings = get_settings()
    store = _store(db) if (db or settings.review_db_path) else None
    try:
        result = import_csv(csv_file, settings.REPO_ROOT, settings.CITY, store, dt.datetime.now(JST), faq_file=faq)
    except SheetError as exc:
        typer.echo(f"エラー: {exc}", err=True)
        raise typer.Exit(1)
    from bot.staff.cli import echo_outcome

    echo_outcome(result.notices, result.errors, "何も取り込んでいません。CSV を直してもう一度実行してください。")
    typer.echo(f"例文 {len(result.examples)}件、FAQ {len(result.faq_rows)}件を追加しました（ラベルなし {result.unlabelled}件は次回に回します）。")
    if result.examples or result.faq_rows:
        typer.echo("make validate で検査し、make run（または make model）で再学習してください。")


@app.command(help="月次レポート（質問数・時間帯・よく聞かれた手続き・未回答率・解決率）を HTML で作ります。")
def report(
    month: Annotated[str, typer.Option("--month", help="対象の月（YYYY-MM、日本時間）")],
    out: Annotated[Optional[Path], typer.Option("--out", help="HTML の出力先（既定: results/report/<月>.html）")] = None,
    db: DbOption = None,
) -> None:
    """Write the monthly HTML report and print its path and headline numbers."""
    from bot.review.report import write_monthly_report
    from bot.staff.nlu_report import procedure_names

    settings = get_settings()
    target = out or Path("results/report") / f"{month}.html"
    try:
        from procedures.catalogue import load_city

        city_name = load_city(settings.CITY).name
    except Exception:  # the title works without the city name
        city_name = ""
    try:
        stats = write_monthly_report(_store(db), month, target, procedure_names(settings.REPO_ROOT, settings.CITY), city_name)
    except ValueError as exc:
        typer.echo(f"エラー: {exc}", err=True)
        raise typer.Exit(2)
    rate = "-" if stats["resolution_rate"] is None else f"{stats['resolution_rate']:.1%}"
    unanswered = "-" if stats["unanswered_rate"] is None else f"{stats['unanswered_rate']:.1%}"
    typer.echo(f"{month}: 質問 {stats['questions']}件、未回答率 {unanswered}、解決率 {rate}")
    typer.echo(f"月次レポート: {target.resolve()}")
