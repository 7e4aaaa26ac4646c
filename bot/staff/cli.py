"""``python -m bot staff ...``: staff commands (職員向けコマンド), messages in Japanese.

Exit codes: 0 done; 1 the data has errors (each printed with its file/row); 2 bad arguments.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bot.config import get_settings

app = typer.Typer(
    help="職員向け: 例文表の取り込み（import-examples）・学習データの検査（check）・NLU レポート（nlu-report）",
    no_args_is_help=True,
    add_completion=False,
)


def echo_outcome(notices: list, errors: list, unchanged: str) -> None:
    """Print notices, then errors (stderr) and exit 1 when there are any: ``N件のエラーがあるため、<unchanged>``.

    Raises:
        typer.Exit: code 1 when ``errors`` is not empty.
    """
    for notice in notices:
        typer.echo(f"お知らせ: {notice}")
    if errors:
        for error in errors:
            typer.echo(f"エラー: {error}", err=True)
        typer.echo(f"{len(errors)}件のエラーがあるため、{unchanged}", err=True)
        raise typer.Exit(1)


@app.command("import-examples", help="例文表（.xlsx / UTF-8 の .csv、見出し: 意図, 例文）を学習データ data/nlu/staff_examples.yml に変換します。")
def import_examples_command(
    sheet: Annotated[Path, typer.Argument(help="例文表のファイル（.xlsx または .csv）")],
    out: Annotated[Path, typer.Option("--out", help="書き出す学習データ")] = Path("data/nlu/staff_examples.yml"),
) -> None:
    """Convert the staff spreadsheet; print errors per row (exit 1, nothing written) or a summary."""
    from bot.staff.examples import import_examples
    from bot.staff.sheet import SheetError

    settings = get_settings()
    try:
        result = import_examples(sheet, settings.REPO_ROOT, settings.CITY, out)
    except SheetError as exc:
        typer.echo(f"エラー: {exc}", err=True)
        raise typer.Exit(1)
    echo_outcome(result.notices, result.errors, "学習データは書き換えていません。例文表を直してもう一度実行してください。")
    intents = len({intent for intent, _ in result.examples})
    typer.echo(f"{len(result.examples)}件の例文（{intents}種類の意図・手続き）を {out} に書き出しました。"
               "make validate で検査し、make run（または make model）で再学習してください。")


@app.command(help="data/nlu のすべての学習データで、例文の重複（同じ意図に2回）と矛盾（別々の意図に同じ例文）を調べます。")
def check(
    strict: Annotated[bool, typer.Option("--strict", help="重複（警告）もエラーにする")] = False,
) -> None:
    """Print every conflict (error) and duplicate (warning); exit 1 on conflicts (or any with --strict)."""
    from bot.staff.nlu_data import check_examples, nlu_files, read_examples

    repo = get_settings().REPO_ROOT
    try:
        findings = check_examples(read_examples(nlu_files(repo), repo))
    except ValueError as exc:
        typer.echo(f"エラー: {exc}", err=True)
        raise typer.Exit(1)
    errors = [f for f in findings if f.level == "error" or strict]
    for finding in findings:
        typer.echo(f"{'エラー' if finding in errors else '警告'}: {finding.message}", err=finding in errors)
    if errors:
        typer.echo(f"例文の矛盾・重複が{len(errors)}件あります。上のファイルを直してください。", err=True)
        raise typer.Exit(1)
    typer.echo(f"例文の検査: OK（矛盾なし、重複の警告 {len(findings)}件）")


@app.command("nlu-report", help="交差検証の結果フォルダ（rasa test nlu --cross-validation の出力）から HTML レポートを作ります。")
def nlu_report_command(
    cv_dir: Annotated[Path, typer.Argument(help="交差検証の結果（例: results/cv/config）")],
    out: Annotated[Path, typer.Option("--out", help="レポートのフォルダ")] = Path("results/evaluate"),
    title: Annotated[Optional[str], typer.Option("--title", help="見出し")] = None,
) -> None:
    """Write ``out/index.html`` and its PNGs; print the path."""
    from bot.staff.nlu_report import ReportError, procedure_names, write_report

    settings = get_settings()
    try:
        summary = write_report(cv_dir, out, title=title, names=procedure_names(settings.REPO_ROOT, settings.CITY))
    except ReportError as exc:
        typer.echo(f"エラー: {exc}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"意図の正解率 {summary['intent_accuracy']:.3f}（重み付き F1 {summary['intent_f1']:.3f}）、"
        + (f"手続きの正解率 {summary['selector_accuracy']:.3f}" if summary.get("selector_accuracy") is not None else "手続きの結果なし")
    )
    typer.echo(f"NLU レポート: {(out / 'index.html').resolve()}")
