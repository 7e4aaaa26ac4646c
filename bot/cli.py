"""Command line: ``python -m bot ask|serve|stack|purge``, staff tools ``python -m bot staff|review ...``."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Annotated, Any, Optional

import httpx
import typer

from bot.config import get_settings

app = typer.Typer(
    help="手続き案内チャットボット: ask（質問する）/ serve（ゲートウェイ）/ stack（全体を起動）",
    no_args_is_help=True,
    add_completion=False,
)

NOT_RUNNING = "ボットが起動していません。make run で起動してください。"

# 職員向けコマンド: python -m bot staff ...（例文表・検査・NLU レポート）、python -m bot review ...（市民の質問の振り返り）
from bot.review.cli import app as review_app  # noqa: E402
from bot.staff.cli import app as staff_app  # noqa: E402

app.add_typer(staff_app, name="staff")
app.add_typer(review_app, name="review")


def print_messages(messages: list[dict[str, Any]]) -> None:
    """Print each message's text, then its buttons as ``  [1] title`` lines."""
    for message in messages:
        if message.get("text"):
            typer.echo(message["text"])
        for number, button in enumerate(message.get("buttons") or [], start=1):
            typer.echo(f"  [{number}] {button.get('title', '')}")


@app.command(help="起動中のボットに質問して答えを表示します（例: python -m bot ask \"住民票をコンビニで取れますか\"）。")
def ask(
    text: Annotated[str, typer.Argument(help="質問文（例: 住民票をコンビニで取れますか）")],
    url: Annotated[
        Optional[str], typer.Option("--url", help="ゲートウェイの URL（既定: http://127.0.0.1:GATEWAY_PORT）")
    ] = None,
    sender: Annotated[Optional[str], typer.Option("--sender", help="会話 ID（既定: cli-<ランダム>）")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="/api/chat の応答 JSON をそのまま表示")] = False,
) -> None:
    """Send one question to the running gateway (POST {url}/api/chat) and print the answer.

    Exit codes: 0 answered; 1 gateway not running / timed out / rejected the request.
    """
    settings = get_settings()
    base = (url or f"http://127.0.0.1:{settings.GATEWAY_PORT}").rstrip("/")
    endpoint = base if base.endswith("/api/chat") else f"{base}/api/chat"
    payload = {"sender_id": sender or f"cli-{secrets.token_hex(4)}", "text": text}
    try:
        response = httpx.post(endpoint, json=payload, timeout=settings.RASA_TIMEOUT_S + 5)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        typer.echo(NOT_RUNNING, err=True)
        raise typer.Exit(1)
    except httpx.HTTPError as exc:
        typer.echo(f"ボットから応答がありません / no answer from {endpoint}: {type(exc).__name__}", err=True)
        raise typer.Exit(1)
    if response.status_code != 200:
        try:
            detail: Any = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if isinstance(detail, list):
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        typer.echo(f"エラー (HTTP {response.status_code}): {detail}", err=True)
        raise typer.Exit(1)
    body = response.json()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        print_messages(body.get("messages") or [])


@app.command(help="ゲートウェイだけを起動します（rasa とアクションサーバーは別に起動しておくこと）。")
def serve(
    host: Annotated[Optional[str], typer.Option(help="待ち受けアドレス（既定: GATEWAY_HOST）")] = None,
    port: Annotated[Optional[int], typer.Option(help="ポート（既定: GATEWAY_PORT）")] = None,
) -> None:
    """Run only the gateway with uvicorn (rasa and the action server must already run)."""
    import uvicorn

    settings = get_settings()
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.LOG_LEVEL.upper() != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per rasa call otherwise
    uvicorn.run(
        "bot.main:create_app",
        factory=True,
        host=host or settings.GATEWAY_HOST,
        port=port or settings.GATEWAY_PORT,
        log_level=settings.LOG_LEVEL.lower(),
    )


@app.command(help="アクションサーバー・rasa・ゲートウェイをまとめて起動します（make run）。Ctrl-C で停止。")
def stack(
    model: Annotated[
        Optional[Path], typer.Option(help="学習済みモデル（既定: models/current.tar.gz）")
    ] = None,
) -> None:
    """Start action server, rasa and gateway (make run); Ctrl-C stops everything."""
    from bot.stack import serve_stack

    raise typer.Exit(serve_stack(model=model))


@app.command(help="保存期間（RETENTION_DAYS 日、既定 90）を過ぎた会話の記録を削除します（cron で毎日実行）。")
def purge(
    days: Annotated[Optional[int], typer.Option(help="保存期間（日）。既定: RETENTION_DAYS", min=1)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="削除せずに件数だけ表示")] = False,
    tracker_db: Annotated[
        Optional[Path], typer.Option(help="rasa のトラッカーストア（SQLite）。既定: endpoints.yml の db")
    ] = None,
) -> None:
    """Delete tracker-store events and review records older than the retention (bot/purge.py).

    Exit codes: 0 done (counts printed); 1 the tracker store is missing or not SQLite.
    """
    from bot.purge import PurgeError, purge as run_purge, tracker_db_from_endpoints

    settings = get_settings()
    try:
        db = tracker_db or tracker_db_from_endpoints(settings.REPO_ROOT / "endpoints.yml", settings.REPO_ROOT)
        result = run_purge(days or settings.RETENTION_DAYS, db, settings.review_db_path, dry_run)
    except PurgeError as exc:
        typer.echo(f"削除できません / purge failed: {exc}", err=True)
        raise typer.Exit(1)
    verb = "削除対象（--dry-run: 削除していません）" if dry_run else "削除しました"
    typer.echo(f"{result.cutoff:%Y-%m-%d %H:%M} (JST) より前の記録を{verb}:")
    typer.echo(f"  トラッカーストア {db}: イベント {result.tracker_events} 件"
               f"（うち会話ごと削除 {result.tracker_conversations} 件）")
    typer.echo(f"  振り返り記録 {settings.review_db_path or '（なし）'}: {result.review_rows} 件")
