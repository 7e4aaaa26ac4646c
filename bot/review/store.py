"""SQLite store of review records (振り返り用の記録).

One table ``turns``; one row per event:

=================  ==========================================================================
id                 integer, increasing (the ID column of the review CSV)
ts                 time of the event, ISO 8601 in Japan time (``2026-11-21T22:05:00+09:00``)
sender             pseudonymous conversation id (:func:`bot.privacy.log_id`, 12 hex characters)
kind               ``question`` (a message answered by action_answer_procedure) or ``feedback``
                   (はい／いいえ to 「解決しましたか？」)
intent             NLU intent (``ask_procedure``, ``nlu_fallback`` …)
confidence         NLU intent confidence 0-1 (None when unknown)
target             what was answered: procedure id, life-event key or ``faq:<ID>``; None if nothing
resolved           how it was found (``entity``, ``selector``, ``bm25``, ``faq`` …; ``none``)
answered           1 when the citizen got an answer (not 「見つかりませんでした」), else 0
feedback_offered   1 when 「解決しましたか？」 was asked after this answer
feedback           ``yes`` / ``no`` for kind ``feedback``
reason             why ``text`` is kept: ``fallback``, ``low_confidence`` or ``feedback_no``
text               the citizen's message with personal data redacted (None unless ``reason``)
imported_at        when ``review import`` used the row (ISO 8601), else None
=================  ==========================================================================

Writes (:meth:`ReviewStore.add`, once per answered message) reuse one connection per thread and
file (WAL journal, ``synchronous=NORMAL``, 5 s busy timeout): opening a connection, running the
schema and closing it — which in WAL mode also checkpoints and deletes the WAL file — took more
than half of the action server's CPU in the py-spy profile of ``make bench``. The connection is
reopened when the file was removed or replaced (``python -m bot purge``, tests). Reads and staff
commands open short connections. WAL lets the action server and a staff command use the file at
the same time; ``synchronous=NORMAL`` keeps every commit through a process crash (only an OS crash
may lose the last ones): https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous
"""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import closing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, List, Optional

SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    intent TEXT,
    confidence REAL,
    target TEXT,
    resolved TEXT,
    answered INTEGER NOT NULL DEFAULT 0,
    feedback_offered INTEGER NOT NULL DEFAULT 0,
    feedback TEXT,
    reason TEXT,
    text TEXT,
    imported_at TEXT
);
CREATE INDEX IF NOT EXISTS turns_ts ON turns (ts);
"""


@dataclass
class Turn:
    """One review record (see the module docstring for the columns); ``id`` is None until stored."""

    ts: str
    sender: str
    kind: str
    intent: Optional[str] = None
    confidence: Optional[float] = None
    target: Optional[str] = None
    resolved: Optional[str] = None
    answered: bool = False
    feedback_offered: bool = False
    feedback: Optional[str] = None
    reason: Optional[str] = None
    text: Optional[str] = None
    imported_at: Optional[str] = None
    id: Optional[int] = None


_COLUMNS = [f.name for f in fields(Turn) if f.name != "id"]
_INSERT = f"INSERT INTO turns ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"

#: Per-thread cache of write connections: ``_writers.by_path`` = {resolved path: (connection, (st_dev, st_ino))}.
_writers = threading.local()


def _writer_cache() -> dict:
    """This thread's {resolved path: (connection, file identity)}."""
    if not hasattr(_writers, "by_path"):
        _writers.by_path = {}
    return _writers.by_path


def _file_identity(path: Path) -> Optional[tuple]:
    """(device, inode) of ``path``, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


class ReviewStore:
    """The review records in one SQLite file.

    Args:
        path: database file; its folder is created on the first write.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=5.0)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        return connection

    def _writer(self) -> sqlite3.Connection:
        """This thread's cached write connection to the file, (re)opened when needed."""
        cache = _writer_cache()
        key = str(self.path.resolve())
        cached = cache.get(key)
        if cached is not None and cached[1] == _file_identity(self.path) and cached[1] is not None:
            return cached[0]
        if cached is not None:
            cache.pop(key)
            cached[0].close()
        connection = self._connect()
        connection.execute("PRAGMA synchronous=NORMAL")
        cache[key] = (connection, _file_identity(self.path))
        return connection

    def add(self, turn: Turn) -> int:
        """Insert ``turn``; returns its id. Raises sqlite3.Error when the file cannot be written."""
        values = asdict(turn)
        row = [int(values[c]) if isinstance(values[c], bool) else values[c] for c in _COLUMNS]
        connection = self._writer()
        try:
            with connection:
                return int(connection.execute(_INSERT, row).lastrowid)
        except sqlite3.Error:
            # drop the connection so that the next call starts afresh (file moved, disk full …)
            _writer_cache().pop(str(self.path.resolve()), None)
            connection.close()
            raise

    def turns(self, since: Optional[str] = None, until: Optional[str] = None,
              with_text_only: bool = False) -> List[Turn]:
        """Records with ``since <= ts < until`` (ISO strings compared as text; JST offsets are equal),
        oldest first; ``with_text_only`` keeps those with a kept (redacted) text."""
        if not self.path.is_file():
            return []
        where, args = [], []
        if since:
            where.append("ts >= ?")
            args.append(since)
        if until:
            where.append("ts < ?")
            args.append(until)
        if with_text_only:
            where.append("text IS NOT NULL")
        sql = "SELECT * FROM turns" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        with closing(self._connect()) as connection:
            rows = connection.execute(sql, args).fetchall()
        return [Turn(**{k: (bool(row[k]) if k in ("answered", "feedback_offered") else row[k]) for k in row.keys()})
                for row in rows]

    def get(self, turn_id: int) -> Optional[Turn]:
        """The record with this id, or None."""
        if not self.path.is_file():
            return None
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
        if row is None:
            return None
        return Turn(**{k: (bool(row[k]) if k in ("answered", "feedback_offered") else row[k]) for k in row.keys()})

    def mark_imported(self, ids: Iterable[int], when: str) -> None:
        """Set ``imported_at = when`` for these ids (unknown ids are ignored)."""
        ids = list(ids)
        if not ids or not self.path.is_file():
            return
        with closing(self._connect()) as connection, connection:
            connection.executemany("UPDATE turns SET imported_at = ? WHERE id = ?", [(when, i) for i in ids])
