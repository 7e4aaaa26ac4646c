"""The action answers with what can be done now: the clock (actions.current_time) is replaced by a
fixed time, as in tests/test_actions.py (CollectingDispatcher and a saved tracker)."""
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions
from actions.actions import ActionAnswerProcedure
from procedures.hours import JST

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ROOT / "tests" / "data" / "trackers"
SATURDAY_22 = dt.datetime(2026, 11, 14, 22, 0, tzinfo=JST)


@pytest.fixture(scope="module")
def domain():
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


async def run(name, domain):
    tracker = Tracker.from_dict(json.loads((TRACKERS / f"{name}.json").read_text(encoding="utf-8")))
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerProcedure().run(dispatcher, tracker, domain)
    return dispatcher.messages, events


async def test_card_carries_open_now_and_next_open_at_injected_time(domain, monkeypatch):
    monkeypatch.setattr(actions, "current_time", lambda: SATURDAY_22)
    messages, _ = await run("juminhyo_convenience_store", domain)
    text = messages[0]["text"]
    assert "【現在 11月14日(土) 22:00】コンビニは23:00まで利用できます。" in text
    assert "窓口は受付時間外です（次は11月16日(月) 8:30から）。" in text
    channels = messages[0]["custom"]["procedure"]["channels"]
    assert channels["convenience_store"]["open_now"] is True
    assert channels["convenience_store"]["next_open"] is None
    assert channels["counter"]["open_now"] is False
    assert channels["counter"]["next_open"] == "2026-11-16T08:30:00+09:00"
    assert channels["mail"]["open_now"] is True and channels["mail"]["next_open"] is None
    assert channels["counter"]["hours"].startswith("平日")  # existing keys are kept


async def test_follow_up_fee_answer_stays_short_but_card_is_time_aware(domain, monkeypatch):
    monkeypatch.setattr(actions, "current_time", lambda: SATURDAY_22)
    messages, _ = await run("followup_fee_after_juminhyo", domain)
    assert "【現在" not in messages[0]["text"]
    assert messages[0]["custom"]["procedure"]["channels"]["counter"]["open_now"] is False


def test_the_clock_is_japan_time():
    now = actions.current_time()
    assert now.utcoffset() == dt.timedelta(hours=9)
