"""Retention purge (保存期間を過ぎた記録の削除): ``python -m bot purge``.

The tracker store is a real one: written and read back by rasa's own ``SQLTrackerStore`` in the
rasa venv (a subprocess, ~15 s), so the test also proves that rasa still loads a conversation
after old events were deleted from it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import get_settings
from bot.purge import DAY_S, PurgeError, purge, tracker_db_from_endpoints
from bot.review.store import ReviewStore, Turn

ROOT = Path(__file__).resolve().parents[1]
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
NOW = time.time()
OLD_SECRET = "古い会話の本文です-old-secret"

#: Runs in the rasa venv: ``create DB SPEC_JSON`` writes trackers, ``read DB SENDER`` prints one.
RASA_SCRIPT = r"""
import asyncio, json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

domain = Domain.from_yaml("slots:\n  procedure:\n    type: text\n    mappings:\n    - type: custom\n")
store = SQLTrackerStore(domain, dialect="sqlite", db=sys.argv[2])

def event(kind, ts, value):
    if kind == "session":
        return [ActionExecuted("action_session_start", timestamp=ts), SessionStarted(timestamp=ts),
                ActionExecuted("action_listen", timestamp=ts)]
    if kind == "user":
        return [UserUttered(value, {"name": "ask_procedure", "confidence": 0.9}, timestamp=ts)]
    return [SlotSet("procedure", value, timestamp=ts)]

async def main():
    if sys.argv[1] == "create":
        for sender, events in json.loads(sys.argv[3]).items():
            tracker = DialogueStateTracker(sender, domain.slots)
            for kind, ts, value in events:
                for e in event(kind, ts, value):
                    tracker.update(e)
            await store.save(tracker)
    else:
        tracker = await store.retrieve(sys.argv[3])
        if tracker is None:
            print(json.dumps({"procedure": None, "events": 0, "texts": []}))
            return
        print(json.dumps({"procedure": tracker.get_slot("procedure"), "events": len(tracker.events),
                          "texts": [e.text for e in tracker.events if isinstance(e, UserUttered)]},
                         ensure_ascii=False))

asyncio.run(main())
"""


def days_ago(days: float) -> float:
    return NOW - days * DAY_S


#: Conversations: (kind, UNIX time, value) per event.
CONVERSATIONS = {
    # everything 200 days old → deleted entirely
    "old": [("session", days_ago(200), None), ("user", days_ago(200), OLD_SECRET),
            ("slot", days_ago(200), "juminhyo_copy")],
    # an old session and a new one → the old session goes, the new one stays
    "returning": [("session", days_ago(120), None), ("user", days_ago(120), OLD_SECRET),
                  ("slot", days_ago(120), "koseki_certificate"),
                  ("session", days_ago(1), None), ("user", days_ago(1), "印鑑証明の手数料は？"),
                  ("slot", days_ago(1), "inkan_certificate")],
    # one session that began before the cutoff and is still going → nothing deleted
    "long_session": [("session", days_ago(95), None), ("user", days_ago(95), "住民票が欲しい"),
                     ("slot", days_ago(95), "juminhyo_copy"), ("user", days_ago(2), "手数料は？")],
    "recent": [("session", days_ago(10), None), ("user", days_ago(10), "犬の登録"),
               ("slot", days_ago(10), "dog_registration")],
}


def rasa(*args: str) -> str:
    if not RASA_PYTHON.is_file():
        pytest.fail(".venv-rasa がありません（make setup）")
    done = subprocess.run([str(RASA_PYTHON), "-c", RASA_SCRIPT, *args], capture_output=True, text=True,
                          timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tracker store written by rasa's SQLTrackerStore (created once per module)."""
    db = tmp_path_factory.mktemp("trackers") / "trackers.db"
    rasa("create", str(db), json.dumps(CONVERSATIONS, ensure_ascii=False))
    return db


@pytest.fixture
def tracker_db(template_db: Path, tmp_path: Path) -> Path:
    db = tmp_path / "trackers.db"
    shutil.copy(template_db, db)
    return db


def events_by_sender(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id").fetchall())


def test_rasa_layout_is_what_purge_expects(template_db: Path) -> None:
    with sqlite3.connect(template_db) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(events)")]
    assert {"sender_id", "type_name", "timestamp", "data"} <= set(columns)
    assert set(events_by_sender(template_db)) == set(CONVERSATIONS)


def test_purge_deletes_old_conversations_and_old_sessions_only(tracker_db: Path) -> None:
    before = events_by_sender(tracker_db)
    result = purge(90, tracker_db, now=NOW)
    after = events_by_sender(tracker_db)
    assert "old" not in after
    assert after["recent"] == before["recent"]
    assert after["long_session"] == before["long_session"], "a session in progress is never cut"
    assert 0 < after["returning"] < before["returning"]
    assert result.tracker_conversations == 1
    assert result.tracker_events == before["old"] + before["returning"] - after["returning"]
    assert not result.dry_run


def test_rasa_still_loads_a_purged_conversation(tracker_db: Path) -> None:
    purge(90, tracker_db, now=NOW)
    loaded = json.loads(rasa("read", str(tracker_db), "returning"))
    assert loaded["procedure"] == "inkan_certificate"
    assert loaded["texts"] == ["印鑑証明の手数料は？"]
    gone = json.loads(rasa("read", str(tracker_db), "old"))
    assert gone["events"] == 0 and gone["procedure"] is None


def test_deleted_text_is_overwritten_in_the_file(tracker_db: Path) -> None:
    assert b"old-secret" in tracker_db.read_bytes()
    purge(90, tracker_db, now=NOW)
    raw = tracker_db.read_bytes()
    assert b"old-secret" not in raw  # secure_delete: not just unlinked pages


def test_dry_run_counts_without_deleting(tracker_db: Path) -> None:
    before = events_by_sender(tracker_db)
    dry = purge(90, tracker_db, dry_run=True, now=NOW)
    assert events_by_sender(tracker_db) == before
    real = purge(90, tracker_db, now=NOW)
    assert (dry.tracker_events, dry.tracker_conversations) == (real.tracker_events, real.tracker_conversations)
    assert dry.dry_run and dry.tracker_events > 0


def test_longer_retention_keeps_more(tracker_db: Path) -> None:
    assert purge(365, tracker_db, now=NOW).tracker_events == 0
    assert purge(150, tracker_db, now=NOW).tracker_conversations == 1  # only "old" (200 days)
    assert "returning" in events_by_sender(tracker_db)


def test_review_store_rows_older_than_retention_are_deleted(tracker_db: Path, tmp_path: Path) -> None:
    review = ReviewStore(tmp_path / "review.db")
    review.add(Turn(ts="2020-01-01T10:00:00+09:00", sender="abc", kind="question", text="[電話番号]の件"))
    review.add(Turn(ts=time.strftime("%Y-%m-%dT%H:%M:%S+09:00", time.gmtime(NOW + 9 * 3600)),
                    sender="def", kind="question", text="新しい質問"))
    result = purge(90, tracker_db, review_db=tmp_path / "review.db", now=NOW)
    assert result.review_rows == 1
    assert [t.text for t in review.turns()] == ["新しい質問"]


def test_missing_review_store_is_fine(tracker_db: Path, tmp_path: Path) -> None:
    assert purge(90, tracker_db, review_db=tmp_path / "none.db", now=NOW).review_rows == 0


def test_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PurgeError, match="no tracker store"):
        purge(90, tmp_path / "missing.db")
    not_rasa = tmp_path / "other.db"
    sqlite3.connect(not_rasa).close()
    with pytest.raises(PurgeError, match="not a rasa tracker store"):
        purge(90, not_rasa)
    with pytest.raises(ValueError):
        purge(0, not_rasa)


def test_tracker_db_comes_from_endpoints(tmp_path: Path) -> None:
    assert tracker_db_from_endpoints(ROOT / "endpoints.yml", ROOT).name == "trackers.db"
    postgres = tmp_path / "endpoints.yml"
    postgres.write_text("tracker_store:\n  type: SQL\n  dialect: postgresql\n  db: rasa\n", encoding="utf-8")
    with pytest.raises(PurgeError, match="SQLite"):
        tracker_db_from_endpoints(postgres, tmp_path)


def test_cli_purge_prints_counts(tracker_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEW_DB", str(tmp_path / "review.db"))
    monkeypatch.setenv("RETENTION_DAYS", "90")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        dry = runner.invoke(app, ["purge", "--dry-run", "--tracker-db", str(tracker_db)])
        assert dry.exit_code == 0, dry.output
        assert "--dry-run" in dry.output and "会話ごと削除 1 件" in dry.output
        assert "old" in events_by_sender(tracker_db)
        done = runner.invoke(app, ["purge", "--days", "90", "--tracker-db", str(tracker_db)])
        assert done.exit_code == 0 and "削除しました" in done.output
        assert "old" not in events_by_sender(tracker_db)
        missing = runner.invoke(app, ["purge", "--tracker-db", str(tmp_path / "none.db")])
        assert missing.exit_code == 1
    finally:
        get_settings.cache_clear()
