"""Is a channel open now? (今、受付しているか) — opening-hours arithmetic for catalogue schedules.

A :class:`procedures.catalogue.Schedule` (from ``city.yml`` ``schedules`` or a channel's own
``hours``) says when a channel takes requests, in Japan Standard Time (JST, UTC+09:00, no
daylight saving time):

- ``always``: open 24 hours a day, every day (オンライン申請、郵送).
- ``weekly``: ``{"mon": "08:30-17:15", ...}``, one "HH:MM-HH:MM" window per weekday (mon..sun);
  a weekday that is not listed is closed. The end may be ``24:00``; an end earlier than (or equal
  to) the start means the window runs past midnight into the next day.
- ``closed_on_holidays``: closed on Japanese national holidays (国民の祝日), including substitute
  holidays (振替休日) and citizens' holidays (国民の休日).
- ``closed_new_year``: closed over the New Year break (年末年始), 12/29 to 1/3 inclusive.

A window is dropped when the day it *starts* on is closed (holiday or New Year).

Holiday data: the ``holidays`` package (python-holidays, https://pypi.org/project/holidays/,
pinned in requirements*.txt), country ``JP``. It follows the Act on National Holidays
(国民の祝日に関する法律), computes equinox days and substitute holidays; the list for a year can
still change by law, so keep the package up to date.

Plain Python (stdlib + holidays), importable from both virtual environments.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import FrozenSet, List, Mapping, Optional, Tuple

import holidays

from procedures.catalogue import Schedule

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    #: Japan Standard Time (Asia/Tokyo). Japan has no DST, so a fixed +09:00 is the fallback when
    #: the system has no time-zone database.
    JST: dt.tzinfo = ZoneInfo("Asia/Tokyo")
except ZoneInfoNotFoundError:  # pragma: no cover - only on systems without tzdata
    JST = dt.timezone(dt.timedelta(hours=9), "JST")

#: Weekday keys of ``Schedule.weekly``, Monday first (``date.weekday()`` order).
DAYS: Tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How far ahead :func:`status` looks for the next opening (and for the end of the current one).
HORIZON = dt.timedelta(days=14)


@dataclass(frozen=True)
class Status:
    """Whether a schedule is open at a given moment.

    Attributes:
        open_now: True when requests are taken at that moment (``always`` schedules: always True).
        closes_at: when the current opening ends (aware datetime in JST). None when closed now,
            when the schedule is ``always`` open, or when it stays open past :data:`HORIZON`.
        next_open: start of the next opening that begins *after* the moment (aware datetime in
            JST, ``isoformat()`` gives "+09:00"): when closed now, when it opens again; when open
            now, when it opens again after ``closes_at``. None when the schedule is ``always``
            open or when nothing opens within :data:`HORIZON` (14 days).
        always: the schedule is open 24 hours a day, every day.
    """

    open_now: bool
    closes_at: Optional[dt.datetime]
    next_open: Optional[dt.datetime]
    always: bool = False


@lru_cache(maxsize=16)
def _jp_holidays(year: int) -> FrozenSet[dt.date]:
    return frozenset(holidays.country_holidays("JP", years=year).keys())


def is_holiday(day: dt.date) -> bool:
    """True when ``day`` is a Japanese national holiday (祝日・振替休日・国民の休日), per python-holidays JP."""
    return day in _jp_holidays(day.year)


def is_new_year_break(day: dt.date) -> bool:
    """True from 12/29 to 1/3 inclusive (年末年始)."""
    return (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)


def is_closed_day(schedule: Schedule, day: dt.date) -> bool:
    """True when ``schedule`` is closed all of ``day`` because of a holiday or the New Year break."""
    return (schedule.closed_on_holidays and is_holiday(day)) or (
        schedule.closed_new_year and is_new_year_break(day)
    )


def _minutes(text: str, *, end: bool) -> int:
    hh, mm = text.split(":")
    h, m = int(hh), int(mm)
    limit = 24 * 60 if end else 24 * 60 - 1
    if not (0 <= m < 60) or not (0 <= h * 60 + m <= limit):
        raise ValueError(f"not a time of day: {text!r}")
    return h * 60 + m


def parse_window(text: str) -> Tuple[int, int]:
    """Parse "HH:MM-HH:MM" into (start, length) in minutes; start from midnight JST.

    The end may be "24:00"; an end at or before the start runs into the next day
    ("22:00-02:00" → (1320, 240)).

    Raises:
        ValueError: not "HH:MM-HH:MM", or a time out of range (e.g. "25:00").
    """
    try:
        start_text, end_text = text.strip().split("-")
        start = _minutes(start_text, end=False)
        end = _minutes(end_text, end=True)
    except ValueError as exc:
        raise ValueError(f"opening hours must be 'HH:MM-HH:MM' (JST), got {text!r}") from exc
    length = end - start if end > start else end + 24 * 60 - start
    return start, length


def _weekly(weekly: Mapping[str, str]) -> List[Optional[Tuple[int, int]]]:
    unknown = sorted(set(weekly) - set(DAYS))
    if unknown:
        raise ValueError(f"unknown weekday key(s) {unknown}; expected {', '.join(DAYS)}")
    return [parse_window(weekly[d]) if weekly.get(d) else None for d in DAYS]


def _openings(schedule: Schedule, start: dt.date, days: int) -> List[Tuple[dt.datetime, dt.datetime]]:
    """Opening periods of the windows starting on ``start`` .. ``start + days``, merged where they touch."""
    windows = _weekly(schedule.weekly)
    periods: List[Tuple[dt.datetime, dt.datetime]] = []
    for offset in range(days + 1):
        day = start + dt.timedelta(days=offset)
        window = windows[day.weekday()]
        if window is None or is_closed_day(schedule, day):
            continue
        begin = dt.datetime.combine(day, dt.time(), tzinfo=JST) + dt.timedelta(minutes=window[0])
        periods.append((begin, begin + dt.timedelta(minutes=window[1])))
    merged: List[Tuple[dt.datetime, dt.datetime]] = []
    for begin, end in sorted(periods):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def require_aware(now: dt.datetime) -> dt.datetime:
    """Return ``now`` unchanged if it is an aware datetime.

    Raises:
        ValueError: ``now`` is naive (no time zone): the time of day would be ambiguous.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (e.g. datetime.now(ZoneInfo('Asia/Tokyo')))")
    return now


def status(schedule: Schedule, now: dt.datetime) -> Status:
    """Whether ``schedule`` is open at ``now``, when it closes and when it opens next.

    Args:
        schedule: the channel's opening hours (times in JST).
        now: an aware datetime (any time zone; it is converted to JST). Tests pass a fixed time.
    Returns:
        A :class:`Status`; its datetimes are in JST (Asia/Tokyo, +09:00). Openings are half-open
        intervals: open at 08:30:00, closed again at 17:15:00.
    Raises:
        ValueError: ``now`` is naive, or ``schedule.weekly`` has an unknown weekday key or a window
            that is not "HH:MM-HH:MM".
    """
    now = require_aware(now)
    if schedule.always:
        return Status(open_now=True, closes_at=None, next_open=None, always=True)
    now = now.astimezone(JST)
    # From yesterday (a window may run past midnight) to the horizon.
    periods = _openings(schedule, now.date() - dt.timedelta(days=1), HORIZON.days + 1)
    limit = now + HORIZON
    current = next(((b, e) for b, e in periods if b <= now < e), None)
    upcoming = next((b for b, _ in periods if now < b <= limit), None)
    if current:
        closes_at = current[1] if current[1] <= limit else None
        return Status(open_now=True, closes_at=closes_at, next_open=upcoming)
    return Status(open_now=False, closes_at=None, next_open=upcoming)
