"""Monthly report for staff (月次レポート): one self-contained HTML page with PNG charts.

Numbers for one calendar month in Japan time, from the review store (:mod:`bot.review.store`):

- 質問数 (questions): rows of kind ``question`` — messages handled by action_answer_procedure;
  per day and per hour of day (0-23 JST), as bar charts.
- よく聞かれた手続き (top procedures): the ``target`` of answered questions, most frequent first
  (FAQ answers found by search count together as ``faq``; an FAQ chosen by button as ``faq:<ID>``).
- 未回答率 (unanswered rate): questions with nothing found (``answered = 0``) / questions.
- 解決率 (resolution rate): はい / (はい + いいえ) to 「解決しましたか？」; also how often it was asked.
- 見直し待ち (to review): rows with a kept, redacted text not yet imported; the most frequent
  unanswered questions are listed (already redacted; HTML-escaped).

Charts are PNGs embedded as data URIs, so the page can be mailed or put on a shared drive as one file.
"""
from __future__ import annotations

import calendar
import datetime as dt
import html
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from matplotlib.ticker import MaxNLocator

from bot.review.store import ReviewStore, Turn
from bot.staff.charts import chart_style, data_uri, japanese_font, new_figure, png_bytes

JST_OFFSET = "+09:00"


def month_range(month: str) -> Tuple[str, str, int, int]:
    """(start, end, year, month) for ``YYYY-MM``: ISO 8601 JST bounds, end exclusive.

    Raises:
        ValueError: not ``YYYY-MM`` (Japanese message).
    """
    try:
        year, mon = (int(part) for part in month.split("-"))
        first = dt.date(year, mon, 1)
    except ValueError as exc:
        raise ValueError(f"月は YYYY-MM の形で指定してください（例: 2026-11）。「{month}」は読めません。") from exc
    following = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    return f"{first.isoformat()}T00:00:00{JST_OFFSET}", f"{following.isoformat()}T00:00:00{JST_OFFSET}", year, mon


def monthly_stats(turns: Sequence[Turn], year: int, month: int) -> Dict[str, Any]:
    """The report's numbers for records of one month (already filtered to that month).

    Returns:
        {"questions", "per_day": [(day 1.., count)], "per_hour": [24 counts], "top": [(target, count)],
        "unanswered", "unanswered_rate" (0-1 or None), "feedback_offered", "yes", "no",
        "resolution_rate" (0-1 or None), "to_review", "top_unanswered": [(text, count)]}.
    """
    questions = [t for t in turns if t.kind == "question"]
    feedback = [t for t in turns if t.kind == "feedback"]
    days = calendar.monthrange(year, month)[1]
    per_day = Counter(int(t.ts[8:10]) for t in questions)
    per_hour = Counter(int(t.ts[11:13]) for t in questions)
    unanswered = [t for t in questions if not t.answered]
    yes = sum(1 for t in feedback if t.feedback == "yes")
    no = sum(1 for t in feedback if t.feedback == "no")
    return {
        "questions": len(questions),
        "per_day": [(d, per_day.get(d, 0)) for d in range(1, days + 1)],
        "per_hour": [per_hour.get(h, 0) for h in range(24)],
        "top": Counter(t.target or ("faq" if t.resolved == "faq" else None) for t in questions
                       if t.answered and (t.target or t.resolved == "faq")).most_common(10),
        "unanswered": len(unanswered),
        "unanswered_rate": len(unanswered) / len(questions) if questions else None,
        "feedback_offered": sum(1 for t in questions if t.feedback_offered),
        "yes": yes,
        "no": no,
        "resolution_rate": yes / (yes + no) if yes + no else None,
        "to_review": sum(1 for t in turns if t.text and not t.imported_at),
        "top_unanswered": Counter(t.text for t in unanswered if t.text).most_common(10),
    }


def _bar(xs: Sequence[Any], ys: Sequence[int], xlabel: str, width: float = 9) -> bytes:
    with chart_style():
        fig = new_figure(width, 3)
        ax = fig.add_subplot()
        ax.bar([str(x) for x in xs], ys, color="#2e86c1")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("questions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(axis="x", labelsize=7)
        return png_bytes(fig)


def _barh(labels: Sequence[str], values: Sequence[int]) -> bytes:
    with chart_style():
        fig = new_figure(8, max(2.0, 0.35 * len(labels) + 1))
        ax = fig.add_subplot()
        ax.barh(range(len(labels)), values, color="#2e86c1")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("questions")
        return png_bytes(fig)


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def write_monthly_report(store: ReviewStore, month: str, out: Path, names: Optional[Mapping[str, str]] = None,
                         city_name: str = "") -> Dict[str, Any]:
    """Write the HTML report of ``month`` (``YYYY-MM``) to ``out``.

    Args:
        store: the review store.
        month: e.g. ``2026-11`` (Japan time).
        out: HTML file (parent folders created).
        names: procedure id / life-event key → name, for the top list.
        city_name: shown in the title (e.g. 盛岡市).
    Returns:
        The numbers of :func:`monthly_stats` plus ``month``.
    Raises:
        ValueError: bad ``month``.
    """
    names = dict(names or {})
    start, end, year, mon = month_range(month)
    stats = monthly_stats(store.turns(since=start, until=end), year, mon)
    stats["month"] = month
    esc = html.escape

    def name(target: str) -> str:
        if target == "faq":
            return "FAQ（よくある質問）からの回答"
        if target.startswith("faq:"):
            return f"FAQ {target[4:]}"
        return names.get(target, target)

    charts: List[str] = []
    if stats["questions"]:
        day_png = _bar([d for d, _ in stats["per_day"]], [c for _, c in stats["per_day"]], "day")
        hour_png = _bar(list(range(24)), stats["per_hour"], "hour (JST)")
        charts = [
            "<h2>日ごとの質問数</h2>", f'<img alt="日ごとの質問数" src="{data_uri(day_png)}">',
            "<h2>時間帯ごとの質問数（日本時間）</h2>",
            "<p>窓口や電話の受付時間外の質問は、チャットボットがなければその場では聞けなかった質問です。</p>",
            f'<img alt="時間帯ごとの質問数" src="{data_uri(hour_png)}">',
        ]
        if stats["top"]:
            labels = [name(t) if japanese_font() else t for t, _ in stats["top"]]
            top_png = _barh(labels, [c for _, c in stats["top"]])
            charts += ["<h2>よく聞かれた手続き</h2>", f'<img alt="よく聞かれた手続き" src="{data_uri(top_png)}">']
    title = f"{city_name}手続き案内チャットボット 月次レポート {year}年{mon}月"
    parts = [
        "<!doctype html>", '<html lang="ja"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "td.num{text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<table>",
        f"<tr><th>質問数</th><td class=num>{stats['questions']}</td></tr>",
        f"<tr><th>未回答率（答えが見つからなかった割合）</th><td class=num>{_pct(stats['unanswered_rate'])}"
        f"（{stats['unanswered']}件）</td></tr>",
        f"<tr><th>解決率（「解決しましたか？」に「はい」の割合）</th><td class=num>{_pct(stats['resolution_rate'])}"
        f"（はい {stats['yes']}件・いいえ {stats['no']}件／質問した回数 {stats['feedback_offered']}回）</td></tr>",
        f"<tr><th>見直し待ちの質問（python -m bot review export）</th><td class=num>{stats['to_review']}件</td></tr>",
        "</table>",
    ]
    if not stats["questions"]:
        parts.append("<p>この月の記録はありません。</p>")
    parts += charts
    if stats["top"]:
        parts.append("<table><tr><th>手続き</th><th>件数</th></tr>")
        parts += [f"<tr><td>{esc(name(t))}</td><td class=num>{c}</td></tr>" for t, c in stats["top"]]
        parts.append("</table>")
    if stats["top_unanswered"]:
        parts += ["<h2>答えられなかった質問（多い順。個人情報は伏せ字）</h2>", "<table><tr><th>質問</th><th>件数</th></tr>"]
        parts += [f"<tr><td>{esc(text)}</td><td class=num>{c}</td></tr>" for text, c in stats["top_unanswered"]]
        parts.append("</table>")
    parts += ["<p>改善のしかたは docs/staff/reports.md を見てください。</p>", "</body></html>"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return stats
