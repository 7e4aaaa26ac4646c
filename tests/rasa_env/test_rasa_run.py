"""bot/rasa_run.py: the speed fixes must keep rasa's behaviour (validation, tracker persistence)."""
import asyncio
import sqlite3

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.pool import QueuePool

from bot import rasa_run

DOMAIN = Domain.from_yaml("""
version: "3.1"
slots:
  procedure:
    type: text
    mappings: [{type: custom}]
""")


@pytest.fixture(scope="module", autouse=True)
def fixes():
    rasa_run.install_cached_action_validation()
    rasa_run.install_sqlite_wal()
    rasa_run.install_sqlite_pool()


def test_valid_action_response_accepted_invalid_rejected_with_rasa_message():
    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [], "responses": [{"text": "はい"}]})
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": "not a list", "responses": []})


def test_sqlite_tracker_store_reuses_connections_and_persists(tmp_path):
    db = tmp_path / "trackers.db"
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(db))
    assert isinstance(store.engine.pool, QueuePool)
    tracker = DialogueStateTracker.from_events("citizen-1", [
        ActionExecuted("action_listen"), UserUttered("住民票"), SlotSet("procedure", "juminhyo")], slots=DOMAIN.slots)
    asyncio.run(store.save(tracker))
    # another process (a second replica, the purge command) sees the commit at once
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT count(*) FROM events WHERE sender_id = 'citizen-1'").fetchone()[0] == 3
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a fresh store (rasa restarted) continues from the persisted tracker
    again = asyncio.run(SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(db)).retrieve("citizen-1"))
    assert again.get_slot("procedure") == "juminhyo"


def test_postgres_and_in_memory_urls_keep_rasa_settings():
    from rasa.core import tracker_store
    pg = tracker_store.create_engine_kwargs("postgresql://u:p@localhost/rasa")
    assert "poolclass" not in pg and "pool_size" in pg
    assert tracker_store.create_engine_kwargs("sqlite://") == {}
