"""Retention (保存期間): delete conversation data older than ``RETENTION_DAYS`` days.

``python -m bot purge [--days N] [--dry-run] [--tracker-db PATH]`` (run it daily, e.g. from cron).

What is deleted:

- rasa's tracker store (SQLite, table ``events`` of rasa's ``SQLTrackerStore``: ``id``,
  ``sender_id``, ``type_name``, ``timestamp`` (UNIX seconds), ``intent_name``, ``action_name``,
  ``data`` JSON; see rasa/core/tracker_store.py ``SQLEvent``):
  * every event of a conversation whose newest event is older than the cutoff (the whole
    conversation goes);
  * in conversations still active, the events older than the cutoff that also lie before the
    conversation's latest ``session_started`` event. rasa loads a tracker only from its last
    session start (``SQLTrackerStore.retrieve``), so the conversation in progress is never cut.
- the review store (``REVIEW_DB``, table ``turns`` of :mod:`bot.review.store`, ``ts`` ISO 8601
  in Japan time): rows with ``ts`` older than the cutoff. Skipped when the file does not exist.

Deletion uses ``PRAGMA secure_delete`` so the deleted text is overwritten in the file, not just
unlinked (https://www.sqlite.org/pragma.html#pragma_secure_delete).

The tracker store file comes from ``endpoints.yml`` (``tracker_store: {type: SQL, dialect:
sqlite, db: trackers.db}``, relative to the repository root) unless given. A PostgreSQL tracker
store (scale-out) is not handled here: docs/operations.md has the equivalent SQL.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from procedures.hours import JST

#: Seconds per day.
DAY_S = 86400

_INACTIVE = "sender_id NOT IN (SELECT sender_id FROM events WHERE timestamp >= :cutoff)"
_BEFORE_LAST_SESSION = (
    "timestamp < (SELECT MAX(s.timestamp) FROM events AS s"
    " WHERE s.sender_id = events.sender_id AND s.type_name = 'session_started')"
)
_OLD_EVENTS = f"FROM events WHERE timestamp < :cutoff AND ({_INACTIVE} OR {_BEFORE_LAST_SESSION})"


class PurgeError(RuntimeError):
    """The tracker store is not a SQLite file this command can purge, or a file is unreadable."""


@dataclass(frozen=True)
class PurgeResult:
    """What was (or, with ``dry_run``, would be) deleted.

    Attributes:
        cutoff: the cutoff time (JST); older data is deleted.
        tracker_events: events deleted from the tracker store.
        tracker_conversations: conversations (sender ids) deleted entirely.
        review_rows: review-store rows deleted (0 when there is no review store).
        dry_run: nothing was deleted, only counted.
    """

    cutoff: datetime
    tracker_events: int
    tracker_conversations: int
    review_rows: int
    dry_run: bool


def tracker_db_from_endpoints(endpoints: Path, root: Path) -> Path:
    """The SQLite tracker-store file named in ``endpoints`` (relative paths against ``root``).

    Raises:
        PurgeError: the file is unreadable or the tracker store is not ``SQL`` + ``sqlite``.
    """
    try:
        config = yaml.safe_load(endpoints.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PurgeError(f"{endpoints} を読めません / cannot read: {exc}") from exc
    store = config.get("tracker_store") or {}
    if str(store.get("type", "")).lower() != "sql" or str(store.get("dialect", "")).lower() != "sqlite":
        raise PurgeError(
            f"{endpoints} の tracker_store は SQLite ではありません（{store.get('dialect') or store.get('type')}）。"
            " docs/operations.md の SQL で削除してください / the tracker store is not SQLite"
        )
    db = Path(str(store.get("db") or "rasa.db"))
    return db if db.is_absolute() else root / db


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA secure_delete = ON")
    return connection


def purge_tracker_store(db: Path, cutoff_ts: float, dry_run: bool = False) -> tuple[int, int]:
    """Delete old events from rasa's SQLite tracker store (rules in the module docstring).

    Args:
        db: the SQLite file (must exist and hold rasa's ``events`` table).
        cutoff_ts: UNIX time, seconds; events with an older ``timestamp`` may go.
        dry_run: only count.
    Returns:
        (events deleted, conversations deleted entirely).
    Raises:
        PurgeError: the file does not exist or has no ``events`` table.
    """
    if not db.is_file():
        raise PurgeError(f"トラッカーストアがありません / no tracker store: {db}")
    params = {"cutoff": cutoff_ts}
    with closing(_connect(db)) as connection, connection:
        try:
            events = connection.execute(f"SELECT COUNT(*) {_OLD_EVENTS}", params).fetchone()[0]
        except sqlite3.OperationalError as exc:
            raise PurgeError(f"{db} は rasa のトラッカーストアではありません / not a rasa tracker store: {exc}") from exc
        conversations = connection.execute(
            f"SELECT COUNT(DISTINCT sender_id) FROM events WHERE {_INACTIVE}", params
        ).fetchone()[0]
        if not dry_run:
            connection.execute(f"DELETE {_OLD_EVENTS}", params)
    return int(events), int(conversations)


def purge_review_store(db: Path, cutoff: datetime, dry_run: bool = False) -> int:
    """Delete review records (table ``turns``) with ``ts`` before ``cutoff``; 0 if ``db`` is missing.

    ``ts`` is ISO 8601 in Japan time (``2026-11-21T22:05:00+09:00``), so comparing the strings
    with the JST cutoff in the same format orders them correctly.
    """
    if not db.is_file():
        return 0
    cutoff_iso = cutoff.astimezone(JST).isoformat(timespec="seconds")
    with closing(_connect(db)) as connection, connection:
        try:
            rows = connection.execute("SELECT COUNT(*) FROM turns WHERE ts < ?", (cutoff_iso,)).fetchone()[0]
        except sqlite3.OperationalError:
            return 0  # no turns table yet
        if not dry_run:
            connection.execute("DELETE FROM turns WHERE ts < ?", (cutoff_iso,))
    return int(rows)


def purge(
    days: int,
    tracker_db: Path,
    review_db: Path | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> PurgeResult:
    """Delete tracker events and review records older than ``days`` days.

    Args:
        days: retention in days (>= 1).
        tracker_db: rasa's SQLite tracker store.
        review_db: the review store, or None.
        dry_run: only count.
        now: UNIX time used as "now" (tests); default the current time.
    Raises:
        ValueError: ``days`` < 1. PurgeError: see :func:`purge_tracker_store`.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    current = time.time() if now is None else now
    cutoff_ts = current - days * DAY_S
    cutoff = datetime.fromtimestamp(cutoff_ts, JST)
    events, conversations = purge_tracker_store(tracker_db, cutoff_ts, dry_run)
    review_rows = purge_review_store(review_db, cutoff, dry_run) if review_db else 0
    return PurgeResult(cutoff, events, conversations, review_rows, dry_run)

